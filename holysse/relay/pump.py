"""The relay's pumps: one upstream answer written into the store.

A :class:`Pump` reads one upstream :class:`holysse.Stream` and appends each
relayed event to the store, under the stream's lease. It runs on a thread of
its own while nobody in this process follows the stream live, and inside the
browser connection's thread while one does (:meth:`Pump.drive`): then one
thread reads the upstream, writes the store and writes the browser, with no
wake-up of a second thread per event (two threads per event, and the GIL
passed between them, made the relay cost twice a plain client). When that
browser leaves, the pump goes back to a thread of its own.

Every write carries the pump's lease (:meth:`StreamStore.append
<holysse.relay.store.StreamStore.append>` ``holder=``): a pump whose lease
another process took (after it hung past the lease) is refused and stops,
so a stream never has two writers. On a store shared between processes,
each write also carries the continuation state after that event (see
:mod:`~holysse.relay.takeover`), so the process that takes the stream over
continues exactly after the last stored event.
"""

from __future__ import annotations

import logging
import threading
from typing import Generator, Iterator, Protocol

from .. import Event, Stream
from ..exceptions import HolySSEError, LeaseLost, StoreUnavailable, StreamClosed, StreamNotFound
from .store import Entry, StreamStore
from .takeover import checkpoint_state
from .wire_events import relay_json, to_wire, usage_dict

__all__ = ["Pump", "PumpHost"]

logger = logging.getLogger(__name__)


class PumpHost(Protocol):
    """What a pump needs from its relay (:class:`~holysse.relay.core.Relay`)."""

    store: StreamStore
    expose_errors: bool

    def forget(self, pump: Pump) -> None:
        """Called once the pump ended."""


class Pump:
    """One upstream stream being read into the store.

    Modes: ``"thread"`` (a thread of its own reads it), ``"parked"`` (between
    that thread and a browser connection taking it over), ``"inline"`` (a
    browser connection's thread drives it), ``"done"``.
    """

    def __init__(self, relay: PumpHost, stream_id: str, stream: Stream, holder: str, *, checkpoints: bool) -> None:
        self.relay = relay
        self.stream_id = stream_id
        self.stream = stream
        #: The lease holder id this pump writes under (``host:pid:random``).
        self.holder = holder
        self.cancel_reason: str | None = None
        self.thread: threading.Thread | None = None
        #: Whether each write carries the continuation state (the stream can be taken over).
        self.checkpoints = checkpoints
        self._lock = threading.Lock()
        self._events: Iterator[Event] | None = None
        self._mode = "new"
        self._wanted = False
        self._handing_over = False
        self._parked = threading.Event()
        #: Set when the pump ended (its terminal event is written, or it was fenced out).
        self.done = threading.Event()

    def __repr__(self) -> str:
        return f"<Pump {self.stream_id[:8]} {self._mode}>"

    @property
    def inline(self) -> bool:
        """Whether a browser connection's thread drives the pump now."""
        return self._mode == "inline"

    def start(self) -> None:
        """Start reading, on a thread of its own."""
        with self._lock:
            self._spawn_locked()

    def hand_over(self) -> None:
        """Stop pumping here without ending the stream: the lease is
        released, and another process takes the stream over from its stored
        state (a graceful shutdown on a shared store)."""
        self._handing_over = True
        self.cancel("this process is shutting down; another takes the stream over")

    def cancel(self, reason: str) -> None:
        """Close the upstream stream: whoever reads it ends with a
        ``failed`` event saying ``reason``."""
        if self.cancel_reason is None:
            self.cancel_reason = reason
            logger.info("Cancelling upstream of stream %s: %s", self.stream_id[:8], reason)
        self.stream.close()

    # -- moving between threads ----------------------------------------------------

    def want(self) -> bool:
        """A browser connection asks to drive the pump: the pump's thread
        parks it after its next event (see :meth:`wait_parked` and
        :meth:`take`). ``False`` when another connection drives it or asked
        first (then follow the store)."""
        with self._lock:
            if self._mode != "thread" or self._wanted:
                return False
            self._wanted = True
            return True

    def wait_parked(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the pump to park."""
        return self._parked.wait(timeout)

    def take(self) -> bool:
        """Take the parked pump over (then call :meth:`drive`); ``False``
        if it is not parked."""
        with self._lock:
            if self._mode != "parked":
                return False
            self._mode = "inline"
            self._parked.clear()
            return True

    def give_back(self) -> None:
        """The connection that wanted or drove the pump leaves: the pump
        goes on in a thread of its own if it has none."""
        with self._lock:
            self._wanted = False
            if self._mode in ("parked", "inline"):
                self._spawn_locked()

    def _spawn_locked(self) -> None:
        self._mode = "thread"
        self._parked.clear()
        self.thread = threading.Thread(target=self._run, name=f"holysse-pump-{self.stream_id[:8]}", daemon=True)
        self.thread.start()

    def _park(self) -> bool:
        with self._lock:
            if not self._wanted or self._mode != "thread":
                return False
            self._wanted = False
            self._mode = "parked"
            self._parked.set()
            return True

    # -- reading --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            for _ in self._entries():
                if self._wanted and self._park():
                    return  # a browser connection's thread goes on with self._events
        except BaseException as exc:  # noqa: BLE001 - recorded in the stream
            self._end(exc)

    def drive(self) -> Generator[Entry, None, None]:
        """Read the upstream in the calling thread (after :meth:`take`),
        yielding each entry written to the store, the terminal one included.
        Closing the iterator (the browser left) hands the pump back to a
        thread of its own."""
        try:
            yield from self._entries()
        except GeneratorExit:
            raise
        except BaseException as exc:  # noqa: BLE001 - recorded in the stream
            entry = self._end(exc)
            if entry is not None:
                yield entry
        finally:
            if not self.done.is_set():
                self.give_back()

    def _entries(self) -> Iterator[Entry]:
        """Write each upstream event; then the ``finish`` event and the end."""
        if self._events is None:
            self._events = iter(self.stream)
        stream = self.stream
        for event in self._events:
            item = to_wire(event)
            if item is not None:
                yield self._write(*item)
        entry = self._write("finish", relay_json({"reason": stream.finish_reason, "usage": usage_dict(stream.usage)}))
        self._close()
        yield entry

    def _write(self, event: str, data: str) -> Entry:
        state = checkpoint_state(self.stream) if self.checkpoints else None
        entry_id = self.relay.store.append(self.stream_id, event, data, holder=self.holder, state=state)
        return Entry(entry_id, event, data)

    def _end(self, exc: BaseException) -> Entry | None:
        """Record why the pump stopped; the ``failed`` entry written, if any."""
        stream_id = self.stream_id[:8]
        entry = None
        if isinstance(exc, StreamClosed) and self._handing_over:
            logger.info("Stream %s: handed over to another process", stream_id)
        elif isinstance(exc, LeaseLost):
            logger.warning("Stream %s: another process took it over; this pump stops", stream_id)
        elif isinstance(exc, StoreUnavailable):
            logger.error("Stream %s stopped: the store failed: %s", stream_id, exc)
        elif isinstance(exc, StreamNotFound):
            logger.warning("Stream %s was evicted or expired while it was produced", stream_id)
        else:
            entry = self._fail(exc)
        self._close()
        return entry

    def _fail(self, exc: BaseException) -> Entry | None:
        if isinstance(exc, StreamClosed) and self.cancel_reason is not None:
            error, message = "cancelled", f"The answer was cancelled: {self.cancel_reason}."
        elif isinstance(exc, HolySSEError):
            error = type(exc).__name__
            message = str(exc) if self.relay.expose_errors else "The answer could not be completed."
            logger.warning("Stream %s failed: %s", self.stream_id[:8], exc)
        else:
            error, message = "internal", "The answer could not be completed."
            logger.error("Stream %s failed", self.stream_id[:8], exc_info=exc)
        try:
            return self._write("failed", relay_json({"error": error, "message": message}))
        except HolySSEError as store_error:
            logger.error("Stream %s: could not record its failure: %s", self.stream_id[:8], store_error)
            return None

    def _close(self) -> None:
        with self._lock:
            self._mode = "done"
        self.stream.close()
        try:
            self.relay.store.release(self.stream_id, self.holder)
        except HolySSEError as exc:
            logger.info("Stream %s: could not release its lease: %s", self.stream_id[:8], exc)
        self.relay.forget(self)
        self.done.set()
