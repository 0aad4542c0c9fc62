"""What the command line writes, and in which words.

:class:`Console` puts answer text on stdout and status lines on stderr;
:func:`show_event` writes the line of a reconnect step; :func:`error_line`
and :func:`cli_words` say what went wrong in the command line's own terms
(its flags and environment variables, never a Python attribute). With the
command modules, the only code that prints.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import TextIO

from ..events import Event, Reconnecting, Reset, Resumed
from ..exceptions import HolySSEError

__all__ = ["Console", "show_event", "error_line", "cli_words", "plural", "add_stderr_logger"]


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
        #: Whether answer text was shown since :meth:`begin_answer` (so a
        #: reconnect is a cut, not a retry before the answer).
        self.answer_started = False

    def begin_answer(self) -> None:
        """A new answer starts: reconnects before its first text are retries."""
        self.answer_started = False

    def text(self, text: str) -> None:
        if not text:
            return
        self._close_status()
        self.out.write(text)
        self.out.flush()
        self._mid_line = not text.endswith("\n")
        self.answer_started = True

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
    ``↻ cut: … reconnecting …`` once the answer started (``↻ retry: …``
    before: nothing was cut), finished by ``→ resumed by …``
    when it worked. ``False`` for events that are not reconnect steps."""
    if isinstance(event, Reconnecting):
        label, verb = ("cut", "reconnecting") if console.answer_started else ("retry", "trying again")
        console.status(f"↻ {label}: {cli_words(event.reason)} — {verb} in {event.delay:.2f}s "
                       f"(attempt {event.attempt})", keep_open=True)
    elif isinstance(event, Resumed) and event.strategy == "retry":
        console.continue_status(" → connected")
    elif isinstance(event, Resumed):
        resent = f", {event.resent_chars} characters re-sent and dropped" if event.resent_chars else ""
        console.continue_status(f" → resumed by {event.strategy}{resent}")
    elif isinstance(event, Reset):
        console.status(f"⟲ reset: {event.reason}")
    else:
        return False
    return True


def plural(count: int, noun: str) -> str:
    """``1 reconnect``, ``2 reconnects``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


#: The library's advice, in the command line's words: Python names become
#: the flags and environment variables that set the same thing.
_CLI_WORDS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(pattern), words) for pattern, words in (
    (r"The partial answer is in exc\.partial; raise RetryPolicy\.max_attempts( or deadline)?",
     "Raise --retries"),
    (r"\s*The partial answer is in exc\.partial[;.]?", ""),
    (r"raise RetryPolicy\.max_attempts( or deadline)?", "raise --retries"),
    (r"raise RetryPolicy\.connect_budget to wait longer for a server that is starting",
     "check --base-url, and that the server is running"),
    (r"\s*raise RetryPolicy\.deadline to allow more time\.?", ""),
    (r"Timeout\.connect", "--connect-timeout"),
    (r"Client\(timeout=holysse\.Timeout\(read=\d+\)\)|Timeout\.read", "--read-timeout"),
    (r",? or pass Client\(session=\.\.\.\) with session\.verify set to that bundle", ""),
    (r",? or pass allow_insecure_http=True if this network is trusted", ""),
    (r"pass the key as api_key= or \$HOLYSHEEP_API_KEY", "set HOLYSHEEP_API_KEY"),
    (r"pass the key as api_key=", "set HOLYSHEEP_API_KEY"),
    (r",? or pass api_key=", ""),
    (r"\bfrom api_key=", "given"),
    (r"\bbase_url\b", "--base-url"),
    (r"\(?raise (Client\()?max_(event|line)_bytes[^;.)]*\)?", "(the server sends events larger than holysse accepts)"),
))


def cli_words(text: str) -> str:
    """``text`` with the library's Python advice said in command-line terms."""
    for pattern, words in _CLI_WORDS:
        text = pattern.sub(words, text)
    return text.strip()


def error_line(exc: HolySSEError) -> str:
    """The one line the command line prints for an error."""
    return f"holysse: {type(exc).__name__}: {cli_words(str(exc))}"


def add_stderr_logger(level: int) -> None:
    """``--verbose``: log ``holysse`` (only) to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("holysse")
    logger.addHandler(handler)
    logger.setLevel(level)
