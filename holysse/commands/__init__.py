"""The subcommands beyond ``demo``: ``chat``, ``check``, ``bench``, ``serve``.

:func:`holysse.cli.main` imports this package; each module registers its
command with :func:`holysse.cli.register` (the import order is the order of
``holysse --help``). Like :mod:`holysse.cli`, these modules use holysse's
public API, and they are the only other place that prints.
"""

from __future__ import annotations

from . import chat  # noqa: I001 - the order of the commands in --help
from . import check
from . import bench
from . import serve

__all__ = ["chat", "check", "bench", "serve"]
