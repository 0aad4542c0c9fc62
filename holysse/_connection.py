"""The per-connection half of the resume core: :class:`Connection`.

One :class:`Connection` turns the bytes of one connection into delivered
events: SSE decoding, the dialect's parser, the checks that the connection
continues the delivered answer (see :mod:`holysse._resume_core`), the
re-send filter, and the watch on progress and time. It decides through the
core it belongs to (:class:`Core`, a protocol so that this module does not
import the core); no I/O, no clock (``now`` comes in).
"""

from __future__ import annotations

from typing import Any, Protocol

from ._delivered import Delivered
from ._limits import ConnectionWatch
from ._resume import PrefillGuard, ResendFilter, ResumeMismatch
from ._settings import StreamSettings
from .dialects.base import Parser
from .events import Event, Finished, TextDelta, ThinkingDelta, ToolCallDelta, Usage
from .metrics import StreamMetrics
from .wire import SSEDecoder

__all__ = ["Connection", "Core", "MIN_RESTART_MATCH"]

#: Characters of the answer's own beginning that a resumed connection may
#: re-send before it counts as a restart (a continuation never starts by
#: repeating the answer's start; a few characters may coincide, as words
#: recur).
MIN_RESTART_MATCH = 16


class Core(Protocol):
    """What a connection needs from the resume core."""

    settings: StreamSettings
    metrics: StreamMetrics
    delivered: Delivered
    strategy: str
    done: bool
    server_retry_ms: int | None
    original: Any

    @property
    def flt(self) -> ResendFilter | None: ...

    def next_parser(self) -> Parser: ...

    def restarted(self) -> ResendFilter: ...

    def deliver(self, event: Event, now: float) -> bool: ...

    def deliver_text(self, event: TextDelta, now: float) -> None: ...

    def move_cursor(self, cursor: Any) -> None: ...

    def count_waste(self) -> None: ...


class Connection:
    """One connection of a stream (see the module docstring)."""

    def __init__(self, core: Core, now: float) -> None:
        settings = core.settings
        self.core = core
        self.decoder = SSEDecoder(max_event_bytes=settings.max_event_bytes, max_line_bytes=settings.max_line_bytes)
        self.parser = core.next_parser()
        delivered = core.delivered
        cursor = core.strategy == "cursor"
        #: A cursor connection: watch for a server that ignored the cursor.
        self._cursor = cursor
        self._check_generation = cursor and delivered.generation is not None
        # this connection's generation id became the delivered one (a dialect without: nothing to claim)
        self._claimed = not hasattr(self.parser, "generation")
        self._guard: PrefillGuard | None = None
        flt = core.flt
        if core.strategy == "prefill" or (cursor and len(delivered.acc) and (flt is None or not flt.expects_text)):
            self._guard = PrefillGuard(delivered.acc.text, min_match=MIN_RESTART_MATCH)
        delivered.ids.new_connection()
        self.watch = ConnectionWatch(
            core.original.url, settings.timeout.idle, settings.retry.deadline, core.metrics.started, now
        )
        self._finished = False
        #: Events since the last progress that said nothing new, by kind.
        self._looping: dict[str, int] = {}
        self._now = now
        self._progressed = False
        self._plain = False  # decided by the first event (see the end of step)
        #: An SSE id delivered before came again (on a connection that is no cursor resume).
        self.reused_ids = False

    def feed(self, chunk: bytes, now: float) -> list[Any]:
        """Bytes arrived at ``now``: their SSE events, for :meth:`step` one by
        one, then :meth:`chunk_end`."""
        self.watch.arrived(chunk)
        metrics = self.core.metrics
        if metrics.ttfb is None:
            metrics.ttfb = now - metrics.started
        self._now = now
        self._progressed = False
        sses = self.decoder.feed(chunk)
        if sses:
            self.watch.head = None
        return sses

    def step(self, sse: Any, out: list[Event]) -> None:
        """Process one SSE event, delivering into ``out``.

        :raises HolySSEError: the connection failed (a protocol error, an
            in-stream error, a stall, a limit).
        :raises ResumeMismatch: it does not continue the delivered answer.
        """
        core, parser, now = self.core, self.parser, self._now
        events = parser.feed(sse)
        if (len(events) == 1 and type(events[0]) is TextDelta and self._plain and not parser.done
                and ((flt := core.flt) is None or not flt.active)):
            # The usual event: one piece of text, nothing to check.
            if sse.id:
                core.delivered.ids.seen(sse.id)
            self._progressed = True
            core.deliver_text(events[0], now)
            out.append(events[0])
            if parser.cursor != core.delivered.cursor:
                core.move_cursor(parser.cursor)
            return
        delivered = core.delivered
        if sse.id and delivered.ids.seen(sse.id):
            if self._cursor:
                raise ResumeMismatch(f"cursor resume sent again event {sse.id[:80]!r}, which was already delivered")
            self.reused_ids = True
        for event in events:
            kind = type(event)
            if kind is TextDelta or kind is ThinkingDelta or self._progress(event):
                self._progressed = True
        if self._cursor or self._check_generation:
            events = self._continues(events)
        elif not self._claimed:
            generation = getattr(parser, "generation", None)
            if generation is not None:
                delivered.generation, self._claimed = generation, True
        guard = self._guard
        if guard is not None:
            events = guard.feed(events) + (guard.end() if parser.done else [])
            if not guard.active:
                if guard.restarted:
                    if core.strategy == "prefill":
                        # A new turn to the prefilled request: its prompt is not the user's; ask again.
                        raise ResumeMismatch("the server ignored the prefill and answered a new turn that repeats "
                                             "the start of the answer")
                    self._restart()
                self._guard = None
        flt = core.flt
        if flt is not None and flt.active:
            for event in events:
                for kept in flt.feed(event):
                    core.deliver(kept, now)
                    out.append(kept)
            core.count_waste()
        else:
            for event in events:
                core.deliver(event, now)
                out.append(event)
        if parser.cursor != delivered.cursor and self._guard is None:
            # (while the guard holds text back, the cursor would point past text not delivered)
            core.move_cursor(parser.cursor)
        if parser.done:
            if flt is not None:
                for kept in flt.end():
                    core.deliver(kept, now)
                    out.append(kept)
            core.done = True
        # Nothing to check on this connection any more, beyond the re-send filter: the fast path.
        self._plain = self._guard is None and self._claimed and not self._cursor

    def chunk_end(self) -> None:
        """The events of the last chunk were processed: check progress and time."""
        decoder, watch = self.decoder, self.watch
        if decoder.reconnection_time is not None:
            self.core.server_retry_ms = decoder.reconnection_time
        if self._progressed:
            if self._looping:
                self._looping.clear()
            watch.progress(self._now)
        else:
            watch.check(self._now, False, decoder.pending_bytes, self._looping)

    def _progress(self, event: Event) -> bool:
        """Whether a non-text event says something new; counts those that do not."""
        kind = type(event)
        what = "usage-only events"
        if kind is ToolCallDelta:
            if event.arguments:  # type: ignore[union-attr]
                return True
            # Announcing a call (its id and name) is not progress until its arguments come.
            what = "tool-call deltas without arguments"
        elif kind is Finished:
            if not self._finished:
                self._finished = True
                return True
            what = "repeated finish_reason events"
        elif kind is not Usage:
            return True
        self._looping[what] = self._looping.get(what, 0) + 1
        return False

    def _continues(self, events: list[Event]) -> list[Event]:
        """On a cursor connection: did the server start the answer over?
        ``events`` with those held back so far, when it did."""
        parser, delivered = self.parser, self.core.delivered
        if self._cursor and parser.started:
            guard = self._guard
            self._restart()
            return events if guard is None else guard.release() + events
        generation = getattr(parser, "generation", None)
        if self._check_generation and generation is not None:
            self._check_generation = False
            if generation != delivered.generation:
                raise ResumeMismatch(
                    f"cursor resume answered with another generation ({generation[:60]!r}, not "
                    f"{(delivered.generation or '')[:60]!r}): the server ignored the cursor"
                )
        return events

    def _restart(self) -> None:
        self._cursor = self._check_generation = False
        self._guard = None
        self.core.restarted()
        self.core.delivered.generation, self._claimed = getattr(self.parser, "generation", None), True
