"""The ``holysse`` subcommands, one module each: ``demo``, ``chat``,
``check``, ``bench``, ``serve``.

:func:`holysse.cli.main` imports this package; each module registers its
command with :func:`~holysse.commands.registry.register` (the import order is
the order of ``holysse --help``). :mod:`~holysse.commands.console` holds what
they write. These modules use holysse's public API, and they (with
:mod:`holysse.cli`) are the only code that prints.
"""

from __future__ import annotations

from . import demo  # noqa: I001 - the order of the commands in --help
from . import chat
from . import check
from . import bench
from . import serve
from .registry import build_parser, command

__all__ = ["demo", "chat", "check", "bench", "serve", "build_parser", "command"]
