"""The ``holysse`` command line: :func:`main`.

The commands live in :mod:`holysse.commands` (one module each, registered in
:mod:`holysse.commands.registry`); what they write, and in which words, in
:mod:`holysse.commands.console`.

Exit status: 0 on success, 1 when the stream (or check, or bench) failed,
2 when the command line or the configuration is wrong (a bad option, a
missing key: :class:`~holysse.exceptions.UsageError`), 130 on Ctrl-C.
"""

from __future__ import annotations

import logging
import sys
from typing import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    from .commands import build_parser, command
    from .commands.console import add_stderr_logger, error_line
    from .exceptions import HolySSEError, UsageError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        add_stderr_logger(logging.DEBUG if args.verbose > 1 else logging.INFO)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return command(args.command)(args)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except UsageError as exc:
        print(error_line(exc), file=sys.stderr)
        return 2
    except HolySSEError as exc:
        print(error_line(exc), file=sys.stderr)
        return 1
