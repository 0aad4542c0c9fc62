"""Hard limits of one stream that the reconnect loop enforces.

:class:`AnswerBudget` caps the answer's size (``Client(max_answer_chars=...)``)
across every connection of a stream. :class:`ConnectionWatch` watches one
connection: the idle timeout that keep-alive comments do not reset
(``Timeout.idle``), the whole-stream deadline (``RetryPolicy.deadline``), and
the start of the body until its first event, so that a bare JSON error or an
HTML page sent as ``text/event-stream`` can be reported as what it is.

No I/O, no threads: the loop calls these with the time and sizes it has.
"""

from __future__ import annotations

import math
from typing import Mapping

from .exceptions import ProtocolError, ReadTimeout

__all__ = ["AnswerBudget", "ConnectionWatch", "BODY_HEAD"]

#: Bytes of a body kept until its first event.
BODY_HEAD = 4096


class AnswerBudget:
    """Counts the characters of one answer (text, reasoning and tool
    arguments) before they are delivered.

    :param max_chars: the most allowed, or ``None`` for no limit.
    """

    __slots__ = ("_max", "_used")

    def __init__(self, max_chars: int | None) -> None:
        self._max = math.inf if max_chars is None else max_chars
        self._used = 0

    def spend(self, chars: int) -> None:
        """Count ``chars`` more characters.

        :raises ProtocolError: the answer passed the limit (not retried).
        """
        self._used += chars
        if self._used > self._max:
            raise ProtocolError(
                f"The answer passed max_answer_chars={self._max} characters; the server may be looping. "
                "Pass a larger Client(max_answer_chars=...) if such long answers are expected."
            )

    def reset(self) -> None:
        """The text was taken back (a :class:`~holysse.events.Reset`): start over."""
        self._used = 0


class ConnectionWatch:
    """Watches one connection of a stream.

    :param url: the request URL, for messages.
    :param idle: ``Timeout.idle`` in seconds, or ``None``.
    :param deadline: ``RetryPolicy.deadline`` in seconds, or ``None``.
    :param started: when the stream started (the shell's monotonic clock).
    :param now: the time the connection opened.
    """

    __slots__ = ("_url", "_idle", "_deadline", "_stop_at", "_last_progress", "head")

    def __init__(self, url: str, idle: float | None, deadline: float | None, started: float, now: float) -> None:
        self._url = url
        self._idle = math.inf if idle is None else idle
        self._deadline = deadline
        self._stop_at = math.inf if deadline is None else started + deadline
        self._last_progress = now
        #: The start of the body while no event was seen (``None`` after).
        self.head: bytes | None = b""

    def arrived(self, chunk: bytes) -> None:
        """Bytes arrived."""
        head = self.head
        if head is not None and len(head) < BODY_HEAD:
            self.head = head + chunk[: BODY_HEAD - len(head)]

    def progress(self, now: float) -> None:
        """A chunk delivered an answer event at ``now``.

        :raises ReadTimeout: past the deadline.
        """
        self._last_progress = now
        if now >= self._stop_at:
            raise ReadTimeout(f"The stream deadline ({self._deadline}s) passed while reading the answer.")

    def check(self, now: float, progressed: bool, pending: int, looping: Mapping[str, int] | None = None) -> None:
        """After a chunk: did the connection deliver an answer event lately,
        and is there time left?

        :param progressed: the chunk completed at least one answer event.
        :param pending: bytes of an unfinished event held by the decoder.
        :param looping: events since the last progress that said nothing new
            (usage-only chunks, a repeated finish), by kind.
        :raises ReadTimeout: idle too long (retried like a stall), or past
            the deadline (then the loop gives up).
        :raises ProtocolError: idle too long while events kept coming that
            said nothing new: the server loops (not retried).
        """
        if progressed:
            self._last_progress = now
        elif now - self._last_progress > self._idle:
            idle = now - self._last_progress
            if looping:
                what = ", ".join(f"{count} {kind}" for kind, count in looping.items())
                raise ProtocolError(
                    f"{self._url} sent {what} and no new answer content for {idle:.1f}s; the server is looping. "
                    f"Raise Timeout(idle=...) above {self._idle:g}s if such pauses are expected."
                )
            what = f"an unfinished event of {pending} bytes" if pending else "only keep-alive comments or pings"
            raise ReadTimeout(
                f"{self._url} sent no answer event for {idle:.1f}s ({what}); treating the connection as stalled. "
                f"Raise Timeout(idle=...) above {self._idle:g}s if the model needs longer to start."
            )
        if now >= self._stop_at:
            raise ReadTimeout(f"The stream deadline ({self._deadline}s) passed while reading the answer.")
