"""The relay's reader side: one browser connection following one stream.

An :class:`EventStream` is what :meth:`Relay.open
<holysse.relay.core.Relay.open>` returns: the status, the headers and a
generator of ``text/event-stream`` bytes. It re-serves the stored events
after the browser's ``Last-Event-ID``, then follows new ones as the pump
appends them, each with its ``id:``, framed by
:func:`holysse.wire.encode_event` (the data is a one-line JSON text, so model
output cannot add a line, a field or an event). Between events it sends a
``: keep-alive`` comment every ``keepalive`` seconds, records every ``poll``
seconds that someone listens, and ends after the terminal event, when the
stream disappears, or when its producer has shown no life for
``producer_timeout`` seconds and cannot be taken over (then with a
``failed`` event). When the stream's producer lease has expired (its
process died or hung), the connection takes the stream over
(:meth:`Relay.adopt <holysse.relay.core.Relay.adopt>`).

When this process pumps the stream, the first connection that is caught up
drives the pump itself (:meth:`Pump.drive
<holysse.relay.pump.Pump.drive>`): each upstream event is then stored and
sent by one thread. While it waits on a silent upstream, that connection
sends no keep-alive comments (the reaper still records it as a listener).

Frameworks close the generator when the browser goes away (WSGI
``close()``), which ends it at once; a pump it drove goes on in a thread of
its own.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import closing
from typing import Any, Callable, Generator, Iterable, Iterator, Protocol

from ..exceptions import StoreUnavailable, StreamNotFound
from ..wire import encode_event
from .pump import Pump
from .store import TERMINAL_EVENTS, Entry, StreamStore

__all__ = ["EventStream", "EventStreamHost", "SSE_HEADERS"]

logger = logging.getLogger(__name__)

#: Headers of every relayed event stream.
SSE_HEADERS = (
    ("Content-Type", "text/event-stream; charset=utf-8"),
    ("Cache-Control", "no-cache"),
    ("X-Accel-Buffering", "no"),  # nginx: do not buffer the stream
)

_KEEPALIVE = b": keep-alive\n\n"
_STATUS_LINES = {200: "200 OK", 204: "204 No Content"}


class EventStreamHost(Protocol):
    """What a browser connection needs from its relay (:class:`~holysse.relay.core.Relay`)."""

    store: StreamStore
    poll: float
    keepalive: float
    producer_timeout: float
    retry_ms: int | None
    inline: bool

    @property
    def closing(self) -> bool:
        """Whether the relay is closing."""

    def pump(self, stream_id: str) -> Pump | None:
        """The pump of ``stream_id`` if this process runs it."""

    def adopt(self, stream_id: str) -> bool:
        """Take over a stream whose lease expired."""


class EventStream:
    """One browser connection's view of a relayed stream.

    ``status`` is 200, or 204 when the browser already has every event of a
    finished stream (an ``EventSource`` stops reconnecting on 204). Iterate
    it for the body, or call it as a WSGI application.
    """

    def __init__(self, relay: EventStreamHost, stream_id: str, after: str, pending: list[Entry], *, finished: bool) -> None:
        self._relay = relay
        self.stream_id = stream_id
        self._after = after
        self._pending = pending
        #: The HTTP status.
        self.status = 204 if finished else 200
        #: The response headers.
        self.headers: list[tuple[str, str]] = [("Cache-Control", "no-cache")] if finished else list(SSE_HEADERS)

    def __repr__(self) -> str:
        return f"<EventStream {self.stream_id[:8]} after={self._after!r} status={self.status}>"

    def __iter__(self) -> Iterator[bytes]:
        if self.status == 204:
            return iter(())
        return self._generate()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response(_STATUS_LINES[self.status], self.headers)
        return iter(self)

    def _generate(self) -> Iterator[bytes]:
        relay, stream_id = self._relay, self.stream_id
        head = b"" if relay.retry_ms is None else b"retry: %d\n\n" % relay.retry_ms
        # Something at once: many servers send the headers with the first bytes.
        body, ended = self._frame(self._pending)
        yield head + b": holysse relay\n\n" + body
        if ended:
            return
        pump = self._relay.pump(stream_id) if relay.inline else None
        if pump is not None and not pump.want():
            pump = None
        try:
            if (yield from self._follow(pump)) and pump is not None and not (yield from self._catch_up()):
                # Drive the pump from here: each event is one resumption of this generator (no generator
                # of this class in between), written to the store and framed in this thread.
                with closing(pump.drive()) as written:
                    for entry in written:
                        self._after = entry.id
                        yield encode_event(entry.data, event=entry.event, id=entry.id)
                        if entry.event in TERMINAL_EVENTS:
                            return
        finally:
            if pump is not None:
                pump.give_back()  # no-op once it drove the pump to the end

    def _follow(self, pump: Pump | None) -> Generator[bytes, None, bool]:
        """Follow the store: ``True`` once this connection has taken ``pump``
        over (then it drives it), ``False`` when it ends."""
        relay, store, stream_id = self._relay, self._relay.store, self.stream_id
        clock = time.monotonic
        last_write = last_beat = clock()
        wait = min(relay.poll, relay.keepalive)
        if not self._beat():
            return False
        while not relay.closing:
            entries = []
            if pump is not None:  # the pump parks after its next event; then this thread drives it
                if pump.wait_parked(wait) and pump.take():
                    return True
                if pump.done.is_set():
                    pump = None
            else:
                try:
                    entries = store.read(stream_id, self._after, wait)
                except StreamNotFound:
                    return False
                except StoreUnavailable as exc:
                    logger.warning("Stream %s: the store failed; ending this connection: %s", stream_id[:8], exc)
                    return False
            now = clock()
            if entries:
                body, ended = self._frame(entries)
                yield body
                if ended:
                    return False
                last_write = now
            if now - last_beat >= relay.poll:
                last_beat = now
                alive = self._beat()
                if alive is None:
                    yield _failed("producer_lost", "The server producing this answer stopped; start it again.")
                    return False
                if not alive:
                    return False
            if now - last_write >= relay.keepalive:
                yield _KEEPALIVE
                last_write = now
        return False

    def _catch_up(self) -> Generator[bytes, None, bool]:
        """Send what the store has after this connection's position (the
        parked pump wrote it); whether the stream ended there."""
        while entries := self._relay.store.read(self.stream_id, self._after, 0):
            body, ended = self._frame(entries)
            yield body
            if ended:
                return True
        return False

    def _frame(self, entries: list[Entry]) -> tuple[bytes, bool]:
        """SSE bytes for ``entries`` up to a terminal one; whether there was one."""
        parts = []
        for entry in entries:
            parts.append(encode_event(entry.data, event=entry.event, id=entry.id))
            self._after = entry.id
            if entry.event in TERMINAL_EVENTS:
                return b"".join(parts), True
        return b"".join(parts), False

    def _beat(self) -> bool | None:
        """Record that someone listens and check the producer.

        :returns: ``True`` to go on, ``False`` to end quietly (the stream is
            gone, or the store failed: the browser reconnects), ``None`` when
            the producer is lost.
        """
        relay, store = self._relay, self._relay.store
        try:
            store.touch(self.stream_id, "listener")
            info = store.info(self.stream_id)
        except (StreamNotFound, StoreUnavailable) as exc:
            logger.info("Stream %s: ending this connection: %s", self.stream_id[:8], exc)
            return False
        if info.ended or info.holder is not None:
            return True
        if relay.adopt(self.stream_id):  # the lease expired: its pump died or hung
            return True
        if time.time() - info.producer_seen > relay.producer_timeout:
            return None
        return True


def _failed(error: str, message: str) -> bytes:
    """A terminal ``failed`` event made here, not stored (it has no id)."""
    return encode_event(json.dumps({"error": error, "message": message}), event="failed")
