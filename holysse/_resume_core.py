"""The resume core: every decision of a stream that survives cuts, no I/O.

:class:`ResumeCore` is fed facts by the I/O shell (:mod:`holysse._loop`):
a connection opened (its response is a stream), the bytes of one
connection, a whole JSON answer, the connection ended (how), and the time
each happened. It answers with decisions: the events to deliver (already
added to the accumulator; some are held back or dropped as re-sent), the
request to open next with its strategy, the delay before it, or the error
to raise. It owns :class:`~holysse._delivered.Delivered` (what was
delivered, and which cursor belongs to which position).

No sockets, no sleeping, no clock: time comes in as ``now`` arguments.

Signals that a resumed connection is not the continuation it should be
(each makes the core drop what is re-sent, or fall back to ``replay``):

- a cursor connection starts a new answer (a role delta, ``message_start``,
  ``response.created``): checked and dropped as a replay;
- it carries another completion/message/response id than the delivered text,
  or an SSE id already delivered: fall back to a replay request;
- its text (or a prefill connection's) begins by re-sending the delivered
  answer's own beginning (a true continuation never does): all of it is a
  restart, checked as a replay; part of it, then something else, a new turn:
  fall back to a replay request;
- a resent part differs from what was delivered (:class:`ResendFilter`).
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, NamedTuple

from ._connection import Connection
from ._delivered import Delivered, Position
from ._http import body_error
from ._resume import (
    PrefillGuard,
    ResendFilter,
    ResendTally,
    ResumeMismatch,
    ResumeRefused,
    expected_again,
)
from ._settings import StreamSettings
from ._strategy import choose_strategy
from ._redact import guard
from ._status import refuses_resume
from ._types import HTTPRequest, Timeout
from .accumulator import Accumulator
from .dialects.base import Dialect, Parser
from .dialects.profiles import ProviderProfile
from .events import (
    Event, Finished, Reconnecting, Reset, Resumed, TextDelta, ThinkingDelta, ToolCallDelta, Usage,
)
from .exceptions import HolySSEError, HTTPStatusError, StreamClosed, StreamInterrupted
from .metadata import ResponseInfo
from .metrics import StreamMetrics

__all__ = ["ResumeCore", "Reconnect", "ResumeRefused"]

logger = guard(logging.getLogger(__name__))


class Reconnect(NamedTuple):
    """A decision: yield ``events``, wait ``delay`` seconds (``None``: do not
    wait at all), then open :attr:`ResumeCore.request`."""

    events: list[Event]
    delay: float | None


class ResumeCore:
    """The decisions of one stream (see the module docstring)."""

    def __init__(
        self,
        *,
        settings: StreamSettings,
        dialect: Dialect,
        request: HTTPRequest,
        provider: ProviderProfile,
        resume: str,
        on_divergence: str,
        acc: Accumulator,
        metrics: StreamMetrics,
    ) -> None:
        self.settings = settings
        self.dialect = dialect
        self.original = request
        #: The request to open next.
        self.request = request
        self.provider = provider
        self.resume = resume
        self.on_divergence = on_divergence
        self.acc = acc
        self.metrics = metrics
        self.delivered = Delivered(acc, settings.max_answer_chars)
        #: The strategy the current connection was opened with.
        self.strategy = "first"
        self.refused: set[str] = set()
        #: The current connection reached its terminal marker.
        self.done = False
        #: An error met while feeding, raised by the shell after the events before it.
        self.failure: BaseException | None = None
        self.server_retry_ms: int | None = None
        self._announce = False  # the next connection yields Resumed (a reconnect or a checkpoint)
        self._resent = ResendTally()
        self._flt: ResendFilter | None = None
        self._flt_base = Position()
        #: The parser of the current (or last) connection.
        self.parser: Parser | None = None
        self._failures = 0
        self._progress_mark = 0
        self._history: list[tuple[int, str, float]] = []
        self._received = False  # a response head came back (a stream or an error status): the server is there
        self._conn: Connection | None = None
        #: The answer had finished before this stream started (a checkpoint's): nothing to read.
        self.finished_before = False
        #: The last connection that answered with a stream (``Stream.response``).
        self.response: ResponseInfo | None = None

    # -- facts from the shell -------------------------------------------------

    def begin(self, now: float) -> None:
        """The stream starts reading (``now``: the shell's monotonic clock)."""
        self.metrics.started = now

    def open_timeout(self, now: float) -> tuple[Timeout, float | None]:
        """The timeouts for the next connection (the read timeout never runs
        past the stream's deadline), and the seconds left before that deadline
        (``None``: no deadline)."""
        return self.settings.timeouts_at(now - self.metrics.started)

    def connected(self, status: int, headers: Mapping[str, str], url: str, now: float) -> list[Event]:
        """The response (``status``, ``headers``, for ``url``) is a stream or
        a whole answer: a new connection of the answer begins."""
        self.done = False
        self.failure = None
        self._received = True
        self.response = ResponseInfo.of(status, headers, url)
        self.metrics._begin_leg(self.strategy, self.delivered.content_events)
        self._conn = Connection(self, now)
        if not self._announce:
            return []
        self._announce = False
        flt = self._flt
        attempt = self.metrics.total_reconnects
        return [Resumed(self.strategy, attempt, 0 if flt is None else flt.expected_chars)]

    def feed(self, chunk: bytes, now: float) -> list[Any]:
        """Bytes of the current connection arrived at ``now``: the SSE events
        they complete; pass each to :meth:`event`, then call :meth:`chunk_end`."""
        conn = self._conn
        assert conn is not None
        return conn.feed(chunk, now)

    def event(self, sse: Any) -> list[Event]:
        """Process one SSE event: the events it delivers (already in the
        accumulator), to yield. After them, :attr:`failure` may hold an error
        met on the way and :attr:`done` tell that the answer ended."""
        conn = self._conn
        assert conn is not None
        out: list[Event] = []
        try:
            conn.step(sse, out)
        except (HolySSEError, ResumeMismatch) as exc:
            if not out:
                raise
            self.failure = exc
        return out

    def chunk_end(self) -> None:
        """Every event of the last chunk was processed: the checks on progress
        and time (they raise, as a cut)."""
        conn = self._conn
        assert conn is not None
        conn.chunk_end()

    def whole(self, events: list[Event], now: float) -> list[Event]:
        """A whole JSON answer arrived (a server that ignores ``stream:
        true``). After a cut it starts from the beginning, unless it continues
        a prefill: the same checks as for a stream drop what was delivered."""
        if self.metrics.ttfb is None:
            self.metrics.ttfb = now - self.metrics.started
        flt = self._flt
        if self.strategy == "cursor":
            flt = self.restarted()
        elif self.strategy == "prefill":
            guard = PrefillGuard(self.acc.text)
            events = guard.feed(events) + guard.end()
            if guard.restarted:
                raise ResumeMismatch("the server ignored the prefill and answered a new turn that repeats the "
                                     "start of the answer")
        if flt is not None:
            events = [out for event in events for out in flt.feed(event)] + flt.end()
            self.count_waste()
        out: list[Event] = []
        for event in events:
            self.deliver(event, now)
            out.append(event)
        self.done = True
        return out

    def eof(self, closed: bool) -> HolySSEError:
        """The current connection closed before its terminal marker: the error
        that describes it (the shell raises it, then asks :meth:`failed`)."""
        conn = self._conn
        assert conn is not None
        conn.decoder.close()
        chars = len(self.acc)
        if closed:
            return StreamClosed(f"The stream was closed after {chars} characters; the answer is incomplete.")
        if conn.watch.head:
            error = body_error(conn.watch.head, self.settings.base_url)
            if error is not None:
                return error
        return StreamInterrupted(
            f"The connection closed before the end of the answer ({self.dialect.terminal} never came); "
            f"{chars} characters received.",
            last_event_id=conn.decoder.last_event_id,
        )

    def failed(self, exc: BaseException, now: float, *, closed: bool) -> Reconnect | None:
        """The current connection (or its opening) failed with ``exc``: what
        next (``None``: the answer had finished, the stream ends well). Sets
        :attr:`request` for the next connection.

        :raises HolySSEError: the stream ends (``exc``, or why no retry is left).
        """
        if isinstance(exc, HTTPStatusError) and self.strategy in ("cursor", "prefill") and refuses_resume(exc.status_code):
            exc = ResumeRefused(f"The server refused the {self.strategy} resume: {exc}")
        if isinstance(exc, ResumeMismatch):
            if isinstance(exc, ResumeRefused) or self.strategy in ("cursor", "prefill"):
                # a server caught ignoring its cursor or prefill once is not trusted with it again
                self.refused.add(self.strategy)
            if self._conn is not None and self._conn.reused_ids:  # its ids named another answer too
                self.refused.add("cursor")
            fallback = self.choose_strategy(after=self.strategy)
            reason = f"{exc}; falling back to {fallback}"
            logger.info("%s", reason)
            self._resume_with(fallback)
            return Reconnect([Reconnecting(max(self._failures, 1), 0.0, reason)], None)
        if not isinstance(exc, HolySSEError):
            raise exc
        if isinstance(exc, HTTPStatusError):
            self._received = True
        return self._retry(exc, now, closed)

    def _retry(self, exc: HolySSEError, now: float, closed: bool) -> Reconnect | None:
        delivered, acc = self.delivered, self.acc
        if closed:
            raise StreamClosed(
                f"The stream was closed after {len(acc)} characters; the answer is incomplete.", partial=acc.text
            ) from exc
        if isinstance(exc, HTTPStatusError) and (relaxed := self._without_refused_field(exc)):
            self.request = relaxed
            return Reconnect([], None)
        if not exc.retryable:
            raise exc
        if self.resume == "none" and delivered.content_events:
            raise StreamInterrupted(
                f"The stream was cut after {len(acc)} characters and resume='none' does not reconnect: "
                f"{exc}. The partial answer is in exc.partial.",
                partial=acc.text,
                last_event_id=str(delivered.cursor or ""),
            ) from exc
        if delivered.finished and delivered.cursor is None:
            logger.info("Connection lost after the answer finished (%s); usage may be missing", exc)
            return None
        if delivered.content_events > self._progress_mark:
            self._failures = 0
        self._progress_mark = delivered.content_events
        self._failures += 1
        hint = getattr(exc, "retry_after", None)
        if self.server_retry_ms is not None:
            hint = max(hint or 0.0, self.server_retry_ms / 1000)
        elapsed = now - self.metrics.started
        delay = self.settings.retry.delay_or_give_up(self._failures, elapsed, exc, hint, self._history,
                                                     received=self._received)
        strategy = self.choose_strategy()
        reason = str(exc) or type(exc).__name__
        self._history.append((self._failures, reason, delay))
        logger.info(
            "Reconnecting to %s in %.2fs (attempt %d, %s); resuming by %s",
            self.original.url, delay, self._failures, reason, strategy,
        )
        self._resume_with(strategy)
        return Reconnect([Reconnecting(self._failures, delay, reason)], delay)

    def _without_refused_field(self, exc: HTTPStatusError) -> HTTPRequest | None:
        """The original request without a field holysse added and the server
        refused (:meth:`Dialect.without_refused_field`), for every later connection."""
        request = self.request
        relaxed = self.dialect.without_refused_field(request, exc) if request is self.original else None
        if relaxed is not None:
            logger.warning("%s refused a field holysse adds on its own; asking again without it: %s", request.url, exc)
            self.original = relaxed
        return relaxed

    def settle(self) -> None:
        """The stream ended: price what it cost."""
        body = self.original.json
        model = body.get("model") if isinstance(body, dict) else None
        self.metrics._settle_cost(self.settings.prices, model if isinstance(model, str) else None,
                                 self.delivered.content_events)

    # -- strategies -------------------------------------------------------------

    def choose_strategy(self, after: str | None = None) -> str:
        """The strategy for the next connection; ``after``: one that just
        failed, so only those after it qualify (:func:`~holysse._strategy.choose_strategy`)."""
        return choose_strategy(self.delivered, self.dialect, self.provider, self.resume, self.refused, after)

    def _resume_with(self, strategy: str) -> None:
        self.metrics.reconnects[strategy] = self.metrics.reconnects.get(strategy, 0) + 1
        self.start_strategy(strategy)

    def start_strategy(self, strategy: str) -> None:
        """Build the request and the filter for a connection resumed by ``strategy``."""
        self.strategy = strategy
        self._announce = True
        request, flt, base = self.original, None, Position()
        delivered = self.delivered
        if strategy != "retry":
            state = delivered.state()
            request, held = self.dialect.resume_request(self.original, strategy, state, self.provider)
            if strategy == "cursor":
                base = delivered.position
            elif strategy == "prefill":
                here = delivered.here()
                base = Position(here.text - len(held), here.thinking, here.tools)
            expected = self._expectation(strategy, held)
            flt = ResendFilter(expected, strategy, self.on_divergence, state.text) if expected else None
        self.request = request
        self._set_filter(flt, base)

    def _set_filter(self, flt: ResendFilter | None, base: Position) -> None:
        self._flt, self._flt_base = flt, base
        self._resent.follow(flt)
        self.count_waste()

    def count_waste(self) -> None:
        """Update the waste figures from the filters."""
        self.metrics.resent_chars, self.metrics.wasted_output_tokens = self._resent.totals

    def restarted(self) -> ResendFilter:
        """The server ignored the cursor and started the answer over: check
        and drop all of it, as for a replay."""
        logger.info("The server ignored the %s resume and started over; treating it as a replay", self.strategy)
        self.metrics._leg_restarted()
        flt = ResendFilter(self._expectation("replay", ""), "replay", self.on_divergence, self.acc.text)
        self._set_filter(flt, Position())
        return flt

    def _expectation(self, strategy: str, held: str) -> Any:
        acc, delivered = self.acc, self.delivered
        tool_args = {call.index: call.arguments for call in acc.tool_calls}
        return expected_again(strategy, held, delivered.position, text=acc.text, thinking=acc.thinking,
                              tool_args=tool_args, tool_names=delivered.tool_names)

    def next_parser(self) -> Parser:
        """A fresh parser, or for a cursor resume the last one, continued (it
        knows the blocks and tool calls that later events refer to)."""
        resumed = getattr(self.parser, "resumed", None)
        parser: Parser = resumed() if self.strategy == "cursor" and resumed is not None else self.dialect.parser()
        if self.strategy == "cursor":
            # the cursor the request was built from: the last connection's parser may have read ids of
            # events never delivered (held back, then cut), which point past the delivered text
            parser.cursor = self.delivered.cursor
        self.parser = parser
        return parser

    # -- delivering -------------------------------------------------------------

    def deliver_text(self, event: TextDelta, now: float) -> None:
        """Deliver one piece of answer text (the usual event, kept short)."""
        delivered = self.delivered
        delivered.budget.spend(len(event.text))
        delivered.content_events += 1
        if delivered.finished:  # text after a finish: that finish was not this answer's end
            delivered.finished = False
        self.metrics._record_text(now, len(event.text))
        self.acc.add(event)

    def deliver(self, event: Event, now: float) -> bool:
        """Deliver one event; whether it was progress."""
        kind = type(event)
        if kind is TextDelta:
            self.metrics._record_text(now, len(event.text))
        progress = self.delivered.add(event)
        if kind is not TextDelta and kind is not ThinkingDelta and kind is not ToolCallDelta and kind is not Finished:
            self._note(event)
        return progress

    def _note(self, event: Event) -> None:
        if isinstance(event, Usage):
            self.metrics._record_usage(event)
        elif isinstance(event, Reset):
            self.metrics.resets += 1
            # The answer starts over with the current connection's: its generation is the delivered one
            # now (a later cursor resume must be answered from it), and the abandoned answer's cursor
            # points nowhere in the new one.
            self.delivered.generation = getattr(self.parser, "generation", None)
            if self.parser is not None:
                self.parser.cursor = None

    def move_cursor(self, cursor: Any) -> None:
        """The parser's cursor moved: pair it with the position the server
        has sent up to (while re-sent text is still being dropped, that is
        less than what was delivered)."""
        flt = self._flt
        if flt is not None and flt.checking:
            self.delivered.move_cursor(cursor, flt.position().after(self._flt_base))
        else:
            self.delivered.move_cursor(cursor)

    @property
    def flt(self) -> ResendFilter | None:
        """The filter of the current connection."""
        return self._flt
