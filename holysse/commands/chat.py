"""``holysse chat [PROMPT]``: one answer, or a conversation.

With a prompt (or text on stdin) it streams one answer: the answer on stdout,
status on stderr, so ``holysse chat "..." > out.txt`` captures only the
answer. Without one, on a terminal (or with ``--interactive``), it holds a
conversation: history is kept, Ctrl-C stops the answer being streamed (the
stream is closed, the session goes on), Ctrl-D ends the session. ``--json``
prints one JSON object per event per line on stdout, for pipes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any

from .console import Console, error_line, plural, show_event
from .registry import register
from ..client import Client
from ..stream import Stream
from ..events import Event
from ..exceptions import HolySSEError, StreamClosed
from .common import add_client_arguments, make_client, ms, positive, request_body

__all__ = ["chat", "event_json"]

_PROMPT = "you> "


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", nargs="?", help="the question; without it (and no stdin): a conversation")
    add_client_arguments(parser)
    parser.add_argument("--system", help="system prompt")
    parser.add_argument("--temperature", type=float, help="sampling temperature")
    parser.add_argument("--max-tokens", type=positive, metavar="N", help="limit the answer to N tokens")
    parser.add_argument("--json", action="store_true", help="one JSON object per event per line on stdout")
    parser.add_argument("-i", "--interactive", action="store_true",
                        help="hold a conversation even when stdin is not a terminal")


@register("chat", "stream an answer (PROMPT or stdin), or hold a conversation", add_arguments)
def chat(args: argparse.Namespace) -> int:
    """Run ``holysse chat``; returns the exit status."""
    console = Console()
    interactive = args.interactive or (args.prompt is None and sys.stdin.isatty())
    with make_client(args) as client:
        session = ChatSession(client, args, console)
        if interactive:
            return session.converse()
        prompt = _one_shot_prompt(args.prompt)
        if not prompt.strip():
            console.status("holysse chat: nothing to ask; give a PROMPT, pipe text on stdin, or use -i.")
            return 2
        return 0 if session.ask(prompt) else 1


def _one_shot_prompt(prompt: str | None) -> str:
    """The prompt, followed by stdin when stdin is not a terminal
    (``git diff | holysse chat "review this"``)."""
    parts = [] if prompt is None else [prompt]
    if not sys.stdin.isatty():
        piped = sys.stdin.read()
        if piped.strip():
            parts.append(piped)
    return "\n\n".join(parts)


class ChatSession:
    """A conversation: the history, and one streamed answer at a time."""

    def __init__(self, client: Client, args: argparse.Namespace, console: Console) -> None:
        self.client = client
        self.args = args
        self.console = console
        self.history: list[dict[str, str]] = []

    def converse(self) -> int:
        """Read prompts until end of input (Ctrl-D)."""
        self.console.status(f"holysse chat · {self.args.model} at {self.client.base_url} · "
                            "Ctrl-C stops an answer, Ctrl-D exits")
        while True:
            try:
                prompt = self._read_prompt()
            except KeyboardInterrupt:
                self.console.status("")
                self.console.status("(Ctrl-D exits)")
                continue
            if prompt is None:
                self.console.status("")
                return 0
            if prompt.strip():
                self.ask(prompt, interruptible=True)

    def _read_prompt(self) -> str | None:
        """One line from the user, or ``None`` at end of input."""
        if sys.stdin.isatty() and self.console.out.isatty():
            try:
                import readline  # noqa: F401 - line editing and history for input()
            except ImportError:
                pass
            try:
                return input(_PROMPT)
            except EOFError:
                return None
        if sys.stdin.isatty():
            self.console.err.write(_PROMPT)
            self.console.err.flush()
        line = sys.stdin.readline()
        return line.rstrip("\r\n") if line else None

    def ask(self, prompt: str, *, interruptible: bool = False) -> bool:
        """Stream the answer to ``prompt``, keep both in the history; whether
        the answer arrived complete."""
        self.history.append({"role": "user", "content": prompt})
        args = self.args
        body = request_body(args.dialect, args.model, self.history, system=args.system,
                            temperature=args.temperature, max_tokens=args.max_tokens)
        stream = self.client.stream(**body)
        self.console.begin_answer()
        printer = _JSONPrinter(self.console) if args.json else _TextPrinter(self.console)
        error: HolySSEError | None = None
        with _StopOnInterrupt(stream, enabled=interruptible) as stopper:
            try:
                for event in stream:
                    printer.event(event)
            except HolySSEError as exc:
                error = exc
        stopped = stopper.requested or isinstance(error, StreamClosed)
        if stream.text:
            self.history.append({"role": "assistant", "content": stream.text})
        printer.end(stream, None if stopped else error, stopped)
        return error is None and not stopped


class _StopOnInterrupt:
    """While active, Ctrl-C (SIGINT) closes the stream from a helper thread
    instead of raising :class:`KeyboardInterrupt`; a second Ctrl-C raises it."""

    def __init__(self, stream: Stream, *, enabled: bool) -> None:
        self._stream = stream
        self._enabled = enabled and threading.current_thread() is threading.main_thread()
        self._previous: Any = None
        self._closer: threading.Thread | None = None
        self._requested = threading.Event()

    @property
    def requested(self) -> bool:
        """Whether Ctrl-C stopped the stream."""
        return self._requested.is_set()

    def __enter__(self) -> _StopOnInterrupt:
        if self._enabled:
            self._previous = signal.signal(signal.SIGINT, self._interrupted)
        return self

    def _interrupted(self, signum: int, frame: FrameType | None) -> None:
        if self._requested.is_set():
            raise KeyboardInterrupt
        self._requested.set()
        # close() takes locks the interrupted code may hold: not in a handler.
        self._closer = threading.Thread(target=self._stream.close, name="holysse-chat-stop", daemon=True)
        self._closer.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._enabled:
            signal.signal(signal.SIGINT, self._previous)
        if self._closer is not None:
            self._closer.join(5.0)


class _TextPrinter:
    """Answer text on stdout, reconnects and the summary on stderr."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def event(self, event: Event) -> None:
        if not show_event(self.console, event):
            self.console.text(event.text)

    def end(self, stream: Stream, error: HolySSEError | None, stopped: bool) -> None:
        self.console.end_text()
        if stopped:
            self.console.status(f"■ stopped after {len(stream.text)} characters")
        elif error is not None:
            self.console.status(error_line(error))
        else:
            self.console.status(summary_line(stream))


class _JSONPrinter:
    """One JSON object per event per line on stdout; a final ``metrics`` or
    ``error`` object."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def _line(self, data: dict[str, Any]) -> None:
        self.console.text(json.dumps(data, ensure_ascii=False, default=str) + "\n")

    def event(self, event: Event) -> None:
        self._line(event_json(event))

    def end(self, stream: Stream, error: HolySSEError | None, stopped: bool) -> None:
        if stopped:
            self._line({"type": "stopped", "partial_chars": len(stream.text)})
        elif error is not None:
            self._line({"type": "error", "error": type(error).__name__, "message": str(error),
                        "partial": error.partial})
            self.console.status(error_line(error))
        self._line({"type": "metrics", **stream.metrics.summary()})


def event_json(event: Event) -> dict[str, Any]:
    """An event as a JSON-ready dict: ``{"type": "text_delta", "text": ...}``."""
    kind = re.sub(r"(?<!^)(?=[A-Z])", "_", type(event).__name__).lower()
    return {"type": kind, **dataclasses.asdict(event)}


def summary_line(stream: Stream) -> str:
    """One status line about a finished stream."""
    m = stream.metrics
    tps = m.tokens_per_second
    parts = [f"{m.text_events} tokens", f"TTFT {ms(m.ttft)}",
             f"{'-' if tps is None else f'{tps:.0f}'} tokens/s", plural(m.total_reconnects, "reconnect")]
    if stream.finish_reason:
        parts.append(f"finish: {stream.finish_reason}")
    if m.cost is not None:
        parts.append(f"cost {m.cost}")
    return " · ".join(parts)
