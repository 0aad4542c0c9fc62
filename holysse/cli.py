"""The ``holysse`` command line; the only module that prints.

``holysse demo`` streams an answer from an embedded fake server that cuts the
connection in several ways, and shows that the text received is the answer.
Answer text goes to stdout, status lines to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Callable, Sequence, TextIO

from . import __version__
from .client import Client
from .events import Event, Reconnecting, Reset, Resumed
from .exceptions import HolySSEError
from .retry import RetryPolicy
from .transport import Timeout

__all__ = ["main", "build_parser", "register", "Console", "show_event"]

#: Extra subcommands: name -> (help, add_arguments, run). Filled by modules
#: that add commands (see :func:`register`).
_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def register(
    name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None]
) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Decorator adding a subcommand whose function returns the exit status."""

    def decorate(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        _COMMANDS[name] = (help, add_arguments, run)
        return run

    return decorate


class Console:
    """Where the CLI writes: answer text to ``out``, status to ``err``
    (dim when ``err`` is a terminal and ``NO_COLOR`` is unset).

    A status line always starts on a line of its own, even when the answer
    text stopped mid-line (both usually share one terminal)."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.color = self.err.isatty() and not os.environ.get("NO_COLOR")
        self._shared = _same_file(self.out, self.err)  # one terminal (or 2>&1): lines interleave
        self._mid_line = False  # the answer text on ``out`` stopped mid-line
        self._open = False  # a status line on ``err`` waits for its end

    def text(self, text: str) -> None:
        if not text:
            return
        self._close_status()
        self.out.write(text)
        self.out.flush()
        self._mid_line = not text.endswith("\n")

    def end_text(self) -> None:
        """End the answer's last line (so a file of answers ends lines)."""
        if self._mid_line:
            self.text("\n")

    def status(self, line: str, *, keep_open: bool = False) -> None:
        """Write ``line`` on a line of its own; ``keep_open``: leave the line
        open for :meth:`continue_status`."""
        self._close_status()
        self.out.flush()
        if self._mid_line and self._shared:
            self.err.write("\n")
            self._mid_line = False
        self._write(line + ("" if keep_open else "\n"))
        self._open = keep_open

    def continue_status(self, more: str) -> None:
        """Finish the open status line with ``more`` (a line of its own if none is open)."""
        if not self._open:
            self.status(more.strip())
            return
        self._open = False
        self._write(more + "\n")

    def _close_status(self) -> None:
        if self._open:
            self._open = False
            self.err.write("\n")
            self.err.flush()

    def _write(self, piece: str) -> None:
        self.err.write(f"\x1b[2m{piece}\x1b[0m" if self.color else piece)
        self.err.flush()


def _same_file(one: TextIO, other: TextIO) -> bool:
    """Whether two streams write to the same terminal, pipe or file."""
    try:
        return os.path.samestat(os.fstat(one.fileno()), os.fstat(other.fileno()))
    except (AttributeError, OSError, ValueError):  # no file descriptor (io.StringIO, say)
        return False


def show_event(console: Console, event: Event) -> bool:
    """Write the status line of a reconnect step: one line per reconnect,
    ``↻ cut: … reconnecting …``, finished by ``→ resumed by …`` when it
    worked. ``False`` for events that are not reconnect steps."""
    if isinstance(event, Reconnecting):
        console.status(f"↻ cut: {event.reason} — reconnecting in {event.delay:.2f}s (attempt {event.attempt})",
                       keep_open=True)
    elif isinstance(event, Resumed):
        resent = f", {event.resent_chars} characters re-sent and dropped" if event.resent_chars else ""
        console.continue_status(f" → resumed by {event.strategy}{resent}")
    elif isinstance(event, Reset):
        console.status(f"⟲ reset: {event.reason}")
    else:
        return False
    return True


# -- demo ---------------------------------------------------------------------


def _add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--resume", default="auto", choices=("auto", "cursor", "prefill", "replay", "none"),
        help="how the cut stream continues (default: auto)",
    )
    parser.add_argument("--dialect", default="openai-chat", choices=tuple(_DEMO_MODELS),
                        help="the API shape the fake server speaks (default: openai-chat)")
    parser.add_argument("--chars", type=int, default=1800, help="length of the answer in characters")
    parser.add_argument("--token-delay", type=float, default=0.003, help="seconds between tokens")
    parser.add_argument("--quiet", action="store_true", help="do not print the answer, only the summary")


def demo(args: argparse.Namespace, console: Console | None = None) -> int:
    """Stream from an embedded :class:`FakeServer` through scripted faults."""
    from .testing import FakeServer
    from .testing.scenarios import demo_faults

    console = console or Console()
    # Anthropic's API sends no SSE ids, so its demo resumes by prefill unless a cursor is asked for.
    ids = args.resume == "cursor" or (args.resume != "prefill" and args.dialect != "anthropic")
    with FakeServer(answer_chars=args.chars, token_delay=args.token_delay, ids=ids, prefill=True) as server:
        body = _demo_body(args.dialect)
        faults = demo_faults(server, body, dialect=args.dialect)
        server.set_faults([fault for _, fault in faults])
        console.status(f"holysse {__version__} demo: {server.url}, resume={args.resume}, faults: "
                       + ", ".join(name for name, _ in faults))
        provider = "vllm" if args.dialect == "openai-chat" else None
        client = Client(
            api_key="demo-key", base_url=server.url, dialect=args.dialect, resume=args.resume,
            timeout=Timeout(connect=2, read=0.75), retry=RetryPolicy(backoff_initial=0.1, backoff_max=1.0),
            provider=provider,
        )
        with client:
            return _run_demo(client, server, body, args, console)


#: The model each demo dialect names (priced in :mod:`holysse.pricing`).
_DEMO_MODELS = {"openai-chat": "gpt-4.1", "anthropic": "claude-sonnet-4-5", "openai-responses": "gpt-4.1"}


def _demo_body(dialect: str) -> dict[str, Any]:
    prompt = "Explain, in a few paragraphs, why streams get cut and how a client should resume them."
    key = "input" if dialect == "openai-responses" else "messages"
    value: Any = prompt if key == "input" else [{"role": "user", "content": prompt}]
    body: dict[str, Any] = {"model": _DEMO_MODELS[dialect], key: value, "seed": 7, "temperature": 0.7}
    if dialect == "openai-responses":
        body["background"] = True
    if dialect == "anthropic":
        body["max_tokens"] = 4096
    return body


def _run_demo(client: Client, server: Any, body: dict[str, Any], args: argparse.Namespace, console: Console) -> int:
    stream = client.stream(**body)
    failure: HolySSEError | None = None
    try:
        for event in stream:
            if not show_event(console, event) and not args.quiet:
                console.text(event.text)
    except HolySSEError as exc:
        failure = exc
    expected = server.expected_text(body, dialect=args.dialect)
    _summary(console, stream, expected, failure)
    if failure is not None:
        return 0 if args.resume == "none" else 1
    return 0 if stream.text == expected else 1


def _summary(console: Console, stream: Any, expected: str, failure: HolySSEError | None) -> None:
    m = stream.metrics
    console.status("")
    console.status("── summary " + "─" * 40)
    if failure is not None:
        console.status(f"stream failed: {type(failure).__name__}: {failure}")
        console.status(f"partial answer kept in exc.partial: {len(failure.partial)} characters")
    per_strategy = ", ".join(f"{k}: {v}" for k, v in m.reconnects.items()) or "none"
    console.status(f"reconnects      {m.total_reconnects} ({per_strategy})")
    console.status(f"wasted tokens   {m.wasted_output_tokens} re-sent and dropped ({m.resent_chars} characters)")
    console.status(f"TTFT            {_ms(m.ttft)}")
    tps = m.tokens_per_second
    console.status(f"tokens/s        {'-' if tps is None else f'{tps:.0f}'}")
    if m.cost is not None:
        console.status(f"cost            {m.cost}")
        if hasattr(m.cost, "breakdown"):
            console.status(f"                {m.cost.breakdown()}")
    same = stream.text == expected
    console.status(f"received text   {len(stream.text)} characters; identical to the server's full answer "
                   f"({len(expected)} characters): {'yes' if same else 'NO'}")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f} ms"


# -- entry point --------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="holysse", description="Resilient LLM streaming over SSE.")
    parser.add_argument("--version", action="version", version=f"holysse {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log to stderr (-vv for wire detail)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo_parser = sub.add_parser("demo", help="stream from an embedded fake server through cuts (no key, no network)")
    _add_demo_arguments(demo_parser)
    for name, (help_text, add_arguments, _) in _COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text))
    return parser


def _add_stderr_logger(level: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("holysse")
    logger.addHandler(handler)
    logger.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    _load_commands()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        _add_stderr_logger(logging.DEBUG if args.verbose > 1 else logging.INFO)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "demo":
            return demo(args)
        return _COMMANDS[args.command][2](args)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except HolySSEError as exc:
        print(f"holysse: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _load_commands() -> None:
    """Import the modules that register more subcommands, if present."""
    import importlib

    for module in ("holysse.commands",):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
