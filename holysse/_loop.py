"""The I/O shell behind :class:`~holysse.stream.Stream`: open, read, abort, sleep.

One :class:`StreamLoop` reads one answer. Every decision (what to deliver,
what to hold back, which request to open next, by which strategy, after
which delay, or which error to raise) belongs to the socket-free
:class:`~holysse._resume_core.ResumeCore`; this module only performs them:
it opens connections through the :class:`~holysse._types.Transport`, feeds
the core the bytes and the time they arrived, yields what the core
delivers, sleeps when told to, and aborts the connection in use when
:meth:`StreamLoop.close` is called from any thread. The generator owns its
connection: a ``break``, an error or :meth:`StreamLoop.close` releases it.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Generator, Iterator

from ._checkpoint import Checkpoint
from ._http import check_response
from ._resume_core import ResumeCore
from ._settings import StreamSettings
from ._types import HTTPRequest, Response, Transport
from .accumulator import Accumulator
from .dialects.base import Dialect, Parser
from .dialects.profiles import ProviderProfile
from .events import Event
from .exceptions import HolySSEError, StreamClosed, UsageError
from .metadata import ResponseInfo
from .metrics import StreamMetrics

__all__ = ["StreamLoop"]


class StreamLoop:
    """Reads one answer across any number of connections."""

    def __init__(
        self,
        *,
        settings: StreamSettings,
        transport: Transport,
        dialect: Dialect,
        request: HTTPRequest,
        provider: ProviderProfile,
        resume: str,
        on_divergence: str,
        accumulator: Accumulator,
        body: dict[str, object] | None = None,
        checkpoint: Checkpoint | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._clock = clock
        self.metrics = StreamMetrics()
        self.core = ResumeCore(
            settings=settings, dialect=dialect, request=request, provider=provider, resume=resume,
            on_divergence=on_divergence, acc=accumulator, metrics=self.metrics,
        )
        self._body = body
        self._checkpoint = checkpoint
        if checkpoint is not None:
            checkpoint.restore_into(self.core)
        self._closed = threading.Event()
        self._stop = False  # close() was called: checked between events, cheaper than the Event
        self._response: Response | None = None
        self._response_lock = threading.Lock()

    # -- public -------------------------------------------------------------

    def close(self) -> None:
        """Stop: abort the connection in use (from any thread)."""
        self._stop = True
        self._closed.set()
        with self._response_lock:
            response = self._response
        if response is not None:
            response.abort()

    @property
    def response(self) -> ResponseInfo | None:
        """The last connection that answered with a stream."""
        return self.core.response

    @property
    def parser(self) -> Parser | None:
        """The parser of the last connection (``response_id``, ``model``)."""
        return self.core.parser

    def checkpoint(self) -> Checkpoint:
        """Where the answer stands now (thread-safe)."""
        return Checkpoint.capture(self.core, self._body or {})

    def run(self, acc: Accumulator, on_finished: Callable[[], None]) -> Generator[Event, None, None]:
        """The generator a :class:`Stream` hands to its consumer: connections
        one after the other, as the core decides (one generator level above
        :meth:`_connection`: each level costs per event)."""
        core, clock = self.core, self._clock
        core.begin(clock())
        error: BaseException | None = None
        try:
            if self._settings.client_closed():
                raise UsageError("The Client was closed before this stream was read; create a new Client for it.")
            while not core.finished_before:
                try:
                    yield from self._connection()
                    return
                except Exception as exc:  # a decision of the core: reconnect, or raise
                    decision = core.failed(exc, clock(), closed=self._closed.is_set())
                    if decision is None:
                        return
                    yield from decision.events
                    if decision.delay is not None:
                        self._wait(decision.delay)
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
            core.settle()
            self.metrics.ended = clock()
            self.metrics.error = None if error is None else type(error).__name__
            acc.finish(error)
            on_finished()

    # -- the loop -------------------------------------------------------------

    def _wait(self, delay: float) -> None:
        started = self._clock()
        sleep = self._settings.sleep
        if sleep is not None:
            sleep(delay)
        elif delay > 0:
            self._closed.wait(delay)
        self.metrics.reconnect_time += self._clock() - started
        if self._closed.is_set():
            raise StreamClosed("The stream was closed while waiting to reconnect.")

    # -- one connection -----------------------------------------------------

    def _connection(self) -> Iterator[Event]:
        """One connection: open it, feed the core what arrives, yield what it
        delivers; the generator owns the connection."""
        core, clock = self.core, self._clock
        response = self._open(core.request)
        complete = False
        try:
            whole = check_response(response, self._settings, core.dialect)
            yield from core.connected(response.status_code, response.headers, core.request.url, clock())
            if whole is not None:
                yield from core.whole(whole, clock())
                complete = True
                return
            feed, on_event, chunk_end = core.feed, core.event, core.chunk_end
            for chunk in response.iter_bytes():
                for sse in feed(chunk, clock()):
                    if self._stop:  # closed from another thread while events of this read were pending
                        raise StreamClosed(
                            f"The stream was closed after {len(core.acc)} characters; the answer is incomplete."
                        )
                    for event in on_event(sse):
                        yield event
                    if core.failure is not None:
                        raise core.failure
                    if core.done:
                        complete = True
                        return
                chunk_end()
            raise core.eof(self._closed.is_set())
        finally:
            with self._response_lock:
                self._response = None
            response.close(complete=complete)

    def _open(self, request: HTTPRequest) -> Response:
        now, transport = self._clock(), self._transport
        timeout, remaining = self.core.open_timeout(now)
        if remaining is not None and getattr(transport, "bounds_head", False):
            response: Response = transport.open(request, timeout, head_deadline=remaining)  # type: ignore[call-arg]
        else:
            response = transport.open(request, timeout)
        with self._response_lock:
            self._response = response
        if self._closed.is_set():
            response.abort()
        return response
