"""The command registry: each command module registers its subcommand with
:func:`register`; :func:`build_parser` makes the ``holysse`` argument parser
from them (in registration order, which is the order of ``holysse --help``).
"""

from __future__ import annotations

import argparse
from typing import Callable

from .. import __version__

__all__ = ["register", "build_parser", "command", "Run"]

#: A command: parsed arguments in, exit status out.
Run = Callable[[argparse.Namespace], int]
AddArguments = Callable[[argparse.ArgumentParser], None]

_COMMANDS: dict[str, tuple[str, AddArguments, Run]] = {}


def register(name: str, help: str, add_arguments: AddArguments) -> Callable[[Run], Run]:
    """Decorator adding a subcommand whose function returns the exit status."""

    def decorate(run: Run) -> Run:
        _COMMANDS[name] = (help, add_arguments, run)
        return run

    return decorate


def command(name: str) -> Run:
    """The function of the subcommand ``name``."""
    return _COMMANDS[name][2]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="holysse", description="Resilient LLM streaming over SSE.")
    parser.add_argument("--version", action="version", version=f"holysse {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log to stderr (-vv for wire detail)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_arguments, _) in _COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text))
    return parser
