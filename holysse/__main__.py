"""``python -m holysse`` runs the command line (:mod:`holysse.cli`)."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
