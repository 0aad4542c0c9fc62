"""The reconnect-and-resume loop behind :class:`~holysse.stream.Stream`.

One :class:`StreamLoop` reads one answer: it opens a connection, decodes
events, and when the connection fails it waits (:class:`RetryPolicy`), picks
a resume strategy and opens the next one, so that the consumer receives the
answer exactly once. The generator owns its connection: a ``break``, an error
or :meth:`StreamLoop.close` releases it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Generator, Iterator

from .accumulator import Accumulator
from .dialects.base import Dialect, Parser, ResumeState
from .dialects.profiles import ProviderProfile
from .events import Event, Reconnecting, Reset, Resumed, TextDelta, ThinkingDelta, ToolCallDelta, Usage
from .exceptions import (
    HolySSEError,
    HTTPStatusError,
    StreamClosed,
    StreamInterrupted,
    UsageError,
)
from .limits import AnswerBudget, ConnectionWatch
from .metadata import ResponseInfo
from .metrics import StreamMetrics
from .resume import (
    STRATEGIES, EventIds, Expectation, Mark, PrefillGuard, ResendFilter, ResendTally, ResumeMismatch, expected_again,
)
from ._http import body_error, check_response
from .transport import HTTPRequest, Response, Timeout, Transport
from .wire import SSEDecoder

if TYPE_CHECKING:
    from .client import Client

__all__ = ["StreamLoop"]

logger = logging.getLogger(__name__)

#: Statuses that refuse a cursor or prefill resume for good (an expired
#: background response, a model that does not take a prefill): the stream
#: falls back to the next strategy instead of failing.
_REFUSED = frozenset({400, 404, 410, 422})


class _ResumeRefused(ResumeMismatch):
    """The server refused a cursor or prefill resume request."""


class StreamLoop:
    """Reads one answer across any number of connections."""

    def __init__(
        self,
        *,
        client: Client,
        transport: Transport,
        dialect: Dialect,
        request: HTTPRequest,
        provider: ProviderProfile,
        resume: str,
        on_divergence: str,
        timeout: Timeout,
    ) -> None:
        self._client = client
        self._transport = transport
        self._dialect = dialect
        self._original = request
        self._provider = provider
        self._resume = resume
        self._on_divergence = on_divergence
        self._timeout = timeout
        self._policy = client.retry
        self.metrics = StreamMetrics()
        self._closed = threading.Event()
        self._stop = False  # close() was called: checked between events, cheaper than the Event
        self._response: Response | None = None
        self._response_lock = threading.Lock()
        # What was delivered, beyond the accumulator's text.
        self._thinking_len = 0
        self._tool_lens: dict[int, int] = {}
        self._tool_names: dict[int, str | None] = {}
        self._content_events = 0
        self._cursor: Any = None
        self._mark = Mark()
        self._server_retry_ms: int | None = None
        self._strategy = "first"
        self._resent = ResendTally()
        self._parser: Parser | None = None
        self._refused: set[str] = set()
        self._budget = AnswerBudget(client.max_answer_chars)
        self._ids = EventIds()  # SSE ids already delivered
        self._now = 0.0  # when the bytes being decoded arrived (time.monotonic)
        #: The last connection that answered with a stream (Stream.response).
        self.response: ResponseInfo | None = None

    # -- public -------------------------------------------------------------

    @property
    def parser(self) -> Parser | None:
        """The parser of the last connection (``response_id``, ``model``)."""
        return self._parser

    def close(self) -> None:
        """Stop: abort the connection in use (from any thread)."""
        self._stop = True
        self._closed.set()
        with self._response_lock:
            response = self._response
        if response is not None:
            response.abort()

    def run(self, acc: Accumulator, on_finished: Callable[[], None]) -> Generator[Event, None, None]:
        """The generator a :class:`Stream` hands to its consumer."""
        self.metrics.started = time.monotonic()
        error: BaseException | None = None
        try:
            if self._client.closed:
                raise UsageError("The Client was closed before this stream was read; create a new Client for it.")
            yield from self._attempts(acc)
        except GeneratorExit:
            self._closed.set()
            error = StreamClosed(
                f"The consumer stopped reading after {len(acc)} characters; the answer is incomplete.",
                partial=acc.text,
            )
            raise
        except BaseException as exc:
            error = exc
            if isinstance(exc, HolySSEError) and not exc.partial:
                exc.partial = acc.text
            raise
        finally:
            self._settle_cost()
            self.metrics.ended = time.monotonic()
            self.metrics.error = None if error is None else type(error).__name__
            acc.finish(error)
            on_finished()

    # -- the loop -------------------------------------------------------------

    def _attempts(self, acc: Accumulator) -> Iterator[Event]:
        request, flt, strategy = self._original, None, "first"
        failures = 0
        history: list[tuple[int, str, float]] = []
        while True:
            progress_before = self._content_events
            try:
                yield from self._connection(acc, request, flt)
                return
            except ResumeMismatch as mismatch:
                if isinstance(mismatch, _ResumeRefused):
                    self._refused.add(strategy)
                fallback = self._choose_strategy(acc, after=strategy)
                reason = f"{mismatch}; falling back to {fallback}"
                logger.info("%s", reason)
                yield Reconnecting(max(failures, 1), 0.0, reason)
                request, flt, strategy = self._resume_with(fallback, acc)
                continue
            except HolySSEError as exc:
                if self._closed.is_set():
                    raise StreamClosed(
                        f"The stream was closed after {len(acc)} characters; the answer is incomplete.",
                        partial=acc.text,
                    ) from exc
                if isinstance(exc, HTTPStatusError) and (relaxed := self._without_refused_field(request, exc)):
                    request = relaxed
                    continue
                if not exc.retryable:
                    raise
                if self._resume == "none" and self._content_events:
                    raise StreamInterrupted(
                        f"The stream was cut after {len(acc)} characters and resume='none' does not reconnect: "
                        f"{exc}. The partial answer is in exc.partial.",
                        partial=acc.text,
                        last_event_id=str(self._cursor or ""),
                    ) from exc
                if acc.finish_reason is not None and self._cursor is None:
                    logger.info("Connection lost after the answer finished (%s); usage may be missing", exc)
                    return
                if self._content_events > progress_before:
                    failures = 0
                failures += 1
                delay = self._delay(exc, failures, history)
                strategy = self._choose_strategy(acc)
                reason = str(exc) or type(exc).__name__
                history.append((failures, reason, delay))
                logger.info(
                    "Reconnecting to %s in %.2fs (attempt %d, %s); resuming by %s",
                    self._original.url, delay, failures, reason, strategy,
                )
                yield Reconnecting(failures, delay, reason)
                self._wait(delay)
                request, flt, strategy = self._resume_with(strategy, acc)

    def _delay(self, exc: HolySSEError, failures: int, history: list[tuple[int, str, float]]) -> float:
        hint = getattr(exc, "retry_after", None)
        if self._server_retry_ms is not None:
            hint = max(hint or 0.0, self._server_retry_ms / 1000)
        elapsed = time.monotonic() - self.metrics.started
        return self._policy.delay_or_give_up(failures, elapsed, exc, hint, history)

    def _without_refused_field(self, request: HTTPRequest, exc: HTTPStatusError) -> HTTPRequest | None:
        """The original request without a field holysse added and the server
        refused (:meth:`Dialect.without_refused_field`), for every later connection."""
        relaxed = self._dialect.without_refused_field(request, exc) if request is self._original else None
        if relaxed is not None:
            logger.warning("%s refused a field holysse adds on its own; asking again without it: %s", request.url, exc)
            self._original = relaxed
        return relaxed

    def _wait(self, delay: float) -> None:
        started = time.monotonic()
        if self._client.sleep is not None:
            self._client.sleep(delay)
        elif delay > 0:
            self._closed.wait(delay)
        self.metrics.reconnect_time += time.monotonic() - started
        if self._closed.is_set():
            raise StreamClosed("The stream was closed while waiting to reconnect.")

    # -- strategies ---------------------------------------------------------

    def _state(self, acc: Accumulator) -> ResumeState:
        return ResumeState(
            text=acc.text,
            cursor=self._cursor,
            output_events=self._content_events,
            tool_calls_open=bool(self._tool_names),
            thinking=acc.thinking,
        )

    def _choose_strategy(self, acc: Accumulator, after: str | None = None) -> str:
        """The strategy for the next connection; ``after``: one that just
        failed, so only those after it (in :data:`STRATEGIES` order) qualify."""
        if not self._content_events:
            return "retry"
        state = self._state(acc)
        wanted: tuple[str, ...] = STRATEGIES if self._resume == "auto" else (self._resume, *STRATEGIES)
        if after in STRATEGIES:
            wanted = STRATEGIES[STRATEGIES.index(after) + 1:]
        for name in wanted:
            allowed = self._resume != "auto" or name in self._provider.strategies or name == "replay"
            if allowed and name not in self._refused and self._dialect.supports(name, state, self._provider):
                return name
        return "replay"

    def _resume_with(self, strategy: str, acc: Accumulator) -> tuple[HTTPRequest, ResendFilter | None, str]:
        self.metrics.reconnects[strategy] = self.metrics.reconnects.get(strategy, 0) + 1
        self._strategy = strategy
        request, flt = self._original, None
        if strategy != "retry":
            state = self._state(acc)
            request, held = self._dialect.resume_request(self._original, strategy, state, self._provider)
            expected = self._expectation(strategy, acc, held)
            flt = ResendFilter(expected, strategy, self._on_divergence, state.text) if expected else None
        self._resent.follow(flt)
        self._count_waste()
        return request, flt, strategy

    def _count_waste(self) -> None:
        self.metrics.resent_chars, self.metrics.wasted_output_tokens = self._resent.totals

    def _restarted(self, acc: Accumulator) -> ResendFilter:
        """The server ignored the cursor and started the answer over: check
        and drop all of it, as for a replay."""
        logger.info("The server ignored the %s resume and started over; treating it as a replay", self._strategy)
        self.metrics._leg_restarted()
        flt = ResendFilter(self._expectation("replay", acc, ""), "replay", self._on_divergence, acc.text)
        self._resent.follow(flt)
        self._count_waste()
        return flt

    def _expectation(self, strategy: str, acc: Accumulator, held: str) -> Expectation:
        tool_args = {call.index: call.arguments for call in acc.tool_calls}
        return expected_again(strategy, held, self._mark, text=acc.text, thinking=acc.thinking,
                              tool_args=tool_args, tool_names=self._tool_names)

    # -- one connection -----------------------------------------------------

    def _connection(self, acc: Accumulator, request: HTTPRequest, flt: ResendFilter | None) -> Iterator[Event]:
        response = self._open(request)
        complete = False
        try:
            whole = self._check(response)
            self.response = ResponseInfo.of(response.status_code, response.headers, request.url)
            self.metrics._begin_leg(self._strategy, self._content_events)
            if self.metrics.total_reconnects:
                yield self._resumed(flt)
            if whole is None:
                yield from self._read(acc, response, flt)
            else:
                yield from self._whole(acc, whole, flt)
            complete = True
        finally:
            with self._response_lock:
                self._response = None
            response.close(complete=complete)

    def _check(self, response: Response) -> list[Event] | None:
        try:
            return check_response(response, self._client, self._dialect)
        except HTTPStatusError as exc:
            if self._strategy in ("cursor", "prefill") and getattr(exc, "status_code", 0) in _REFUSED:
                raise _ResumeRefused(f"The server refused the {self._strategy} resume: {exc}") from exc
            raise

    def _open(self, request: HTTPRequest) -> Response:
        timeout = self._timeout
        remaining = self._policy.remaining(time.monotonic() - self.metrics.started)
        if remaining is not None and timeout.read is not None:
            timeout = dataclasses.replace(timeout, read=max(0.001, min(timeout.read, remaining)))
        response = self._transport.open(request, timeout)
        with self._response_lock:
            self._response = response
        if self._closed.is_set():
            response.abort()
        return response

    def _resumed(self, flt: ResendFilter | None) -> Resumed:
        expected = 0 if flt is None else flt.expected_chars
        return Resumed(self._strategy, self.metrics.total_reconnects, expected)

    def _read(self, acc: Accumulator, response: Response, flt: ResendFilter | None) -> Iterator[Event]:
        client = self._client
        decoder = SSEDecoder(max_event_bytes=client.max_event_bytes, max_line_bytes=client.max_line_bytes)
        parser = self._next_parser()
        metrics = self.metrics
        watch_restart = resumed = self._strategy == "cursor"
        guard = PrefillGuard(acc.text) if self._strategy == "prefill" else None
        ids = self._ids
        ids.new_connection()
        watch = ConnectionWatch(self._original.url, self._timeout.idle, self._policy.deadline, metrics.started)
        for chunk in response.iter_bytes():
            now = self._now = watch.arrived(chunk)
            if metrics.ttfb is None:
                metrics.ttfb = now - metrics.started
            progressed = False
            for sse in decoder.feed(chunk):
                if self._stop:  # closed from another thread while events of this read were pending
                    raise StreamClosed(f"The stream was closed after {len(acc)} characters; the answer is incomplete.")
                watch.head = None
                events = parser.feed(sse)
                if sse.id:
                    ids.see(sse.id, resumed=resumed)  # before any of its text is delivered
                progressed = progressed or bool(events)
                if watch_restart and parser.started:
                    watch_restart = resumed = False
                    flt = self._restarted(acc)
                if guard is not None:
                    events = guard.feed(events) + (guard.end() if parser.done else [])
                    if not guard.active:
                        if guard.restarted:
                            flt = self._restarted(acc)
                        guard = None
                if flt is not None and flt.active:
                    for event in events:
                        for out in flt.feed(event):
                            yield self._deliver(acc, out)
                    self._count_waste()
                else:
                    for event in events:
                        yield self._deliver(acc, event)
                if parser.cursor != self._cursor:
                    self._move_cursor(acc, parser.cursor)
                if parser.done:
                    if flt is not None:
                        for out in flt.end():
                            yield self._deliver(acc, out)
                    return
            if decoder.reconnection_time is not None:
                self._server_retry_ms = decoder.reconnection_time
            watch.check(now, progressed, decoder.pending_bytes)
        decoder.close()
        if self._closed.is_set():
            raise StreamClosed(f"The stream was closed after {len(acc)} characters; the answer is incomplete.")
        if watch.head:
            error = body_error(watch.head, client)
            if error is not None:
                raise error
        raise StreamInterrupted(
            f"The connection closed before the end of the answer ({self._dialect.terminal} never came); "
            f"{len(acc)} characters received.",
            last_event_id=decoder.last_event_id,
        )

    def _whole(self, acc: Accumulator, events: list[Event], flt: ResendFilter | None) -> Iterator[Event]:
        """Deliver a whole JSON answer (a server that ignores ``stream:
        true``). After a cut it starts from the beginning, unless it continues
        a prefill: the same checks as for a stream drop what was delivered."""
        self._now = time.monotonic()
        if self.metrics.ttfb is None:
            self.metrics.ttfb = self._now - self.metrics.started
        if self._strategy == "cursor":
            flt = self._restarted(acc)
        elif self._strategy == "prefill":
            guard = PrefillGuard(acc.text)
            events = guard.feed(events) + guard.end()
            if guard.restarted:
                flt = self._restarted(acc)
        if flt is not None:
            events = [out for event in events for out in flt.feed(event)] + flt.end()
            self._count_waste()
        for event in events:
            yield self._deliver(acc, event)

    def _next_parser(self) -> Parser:
        """A fresh parser, or for a cursor resume the last one, continued (it
        knows the blocks and tool calls that later events refer to)."""
        resumed = getattr(self._parser, "resumed", None)
        parser: Parser = resumed() if self._strategy == "cursor" and resumed is not None else self._dialect.parser()
        self._parser = parser
        return parser

    def _move_cursor(self, acc: Accumulator, cursor: Any) -> None:
        self._cursor = cursor
        self._mark = Mark(len(acc), self._thinking_len, dict(self._tool_lens))

    def _deliver(self, acc: Accumulator, event: Event) -> Event:
        if type(event) is TextDelta:
            self._budget.spend(len(event.text))
            self._content_events += 1
            self.metrics._record_text(self._now, len(event.text))  # when its bytes arrived
        elif isinstance(event, ThinkingDelta):
            self._budget.spend(len(event.thinking))
            self._content_events += 1
            self._thinking_len += len(event.thinking)
        elif isinstance(event, ToolCallDelta):
            self._budget.spend(len(event.arguments))
            self._content_events += 1
            self._tool_lens[event.index] = self._tool_lens.get(event.index, 0) + len(event.arguments)
            if event.index not in self._tool_names or event.name:
                self._tool_names[event.index] = event.name or self._tool_names.get(event.index)
        elif isinstance(event, Usage):
            self.metrics._record_usage(event)
        elif isinstance(event, Reset):
            self._reset()
        acc.add(event)
        return event

    def _settle_cost(self) -> None:
        body = self._original.json
        model = body.get("model") if isinstance(body, dict) else None
        self.metrics._settle_cost(self._client.prices, model if isinstance(model, str) else None, self._content_events)

    def _reset(self) -> None:
        self.metrics.resets += 1
        self._budget.reset()
        self._thinking_len = 0
        self._tool_lens = {}
        self._tool_names = {}
        self._mark = Mark()

