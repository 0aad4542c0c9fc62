"""Stream stores: where relayed events wait for the browser.

A store keeps, per relayed stream, an append-only log of events (each with
an id that becomes the SSE ``id:``), who owns the stream, whether it ended,
and two heartbeats: when a listener (a browser connection) and the producer
(the pump reading the upstream answer) were last seen. The relay's pump
appends; any number of browser connections read, block until something new
arrives, and resume after any id they were given.

:class:`StreamStore` is the protocol; :class:`MemoryStore` is the default,
for one process. :class:`~holysse.relay.redis_store.RedisStore` shares
streams between workers and machines.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from ..exceptions import RelayError, StoreFull, StreamNotFound

__all__ = ["Entry", "StreamInfo", "StreamStore", "MemoryStore", "TERMINAL_EVENTS"]

#: Event names that end a relayed stream: nothing is appended after them.
TERMINAL_EVENTS = frozenset({"finish", "failed"})

#: Bytes counted for an entry beyond its event name and data.
_ENTRY_OVERHEAD = 64


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored event.

    :param id: its id in the stream (sent as the SSE ``id:``).
    :param event: the SSE event name (``"text"``, ``"reset"``, ``"finish"``, ...).
    :param data: the event's data, a JSON text.
    """

    id: str
    event: str
    data: str


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What a store knows about a stream, besides its events.

    :param owner: the user or session the stream is bound to (``None``: anyone
        holding the id may read it).
    :param created: wall-clock time of creation (``time.time()``).
    :param ended: whether a terminal event was appended.
    :param listener_seen: wall-clock time a listener was last seen (creation
        counts as one).
    :param producer_seen: wall-clock time the producer last showed life.
    :param cancelled: whether someone asked to stop the stream.
    """

    owner: str | None
    created: float
    ended: bool
    listener_seen: float
    producer_seen: float
    cancelled: bool


class StreamStore(Protocol):
    """What the relay needs from a store. Every method is thread-safe.

    Methods raise :class:`~holysse.exceptions.StreamNotFound` for an unknown
    (or expired) stream, and
    :class:`~holysse.exceptions.StoreUnavailable` when the store cannot
    answer within its timeout.
    """

    def create(self, stream_id: str, owner: str | None) -> None:
        """Create an empty stream bound to ``owner``."""

    def append(self, stream_id: str, event: str, data: str) -> str:
        """Append one event; returns its id. A terminal event ends the stream."""

    def read(self, stream_id: str, after: str, timeout: float) -> list[Entry]:
        """The events after id ``after`` (``""``: from the start), waiting up
        to ``timeout`` seconds for one when there are none yet (``[]``).

        :raises RelayError: ``after`` is not an id of this store (400).
        """

    def info(self, stream_id: str) -> StreamInfo:
        """The stream's owner, state and heartbeats."""

    def touch(self, stream_id: str, role: str) -> None:
        """Record that a ``"listener"`` or the ``"producer"`` is alive now."""

    def cancel(self, stream_id: str) -> None:
        """Ask the stream's producer, wherever it runs, to stop."""

    def close(self) -> None:
        """Release the store's resources."""


def bad_cursor(after: str) -> RelayError:
    """The error for a ``Last-Event-ID`` that is not an id of this stream."""
    shown = after if len(after) <= 40 else after[:40] + "..."
    return RelayError(
        f"Last-Event-ID {shown!r} is not an event id of this stream; reconnect without it to read from the start.",
        status=400,
    )


class _Stream:
    """One stream of a :class:`MemoryStore`: its log and a condition that
    wakes the readers waiting on it."""

    __slots__ = ("owner", "created", "entries", "size", "ended", "gone", "cancelled",
                 "listener_seen", "producer_seen", "active", "changed", "waiting")

    def __init__(self, owner: str | None, now: float) -> None:
        self.owner = owner
        self.created = now
        self.entries: list[tuple[str, str]] = []
        self.size = 0
        self.ended = False
        self.gone = False
        self.cancelled = False
        self.listener_seen = now
        self.producer_seen = now
        self.active = now  # last append or heartbeat: the TTL counts from here
        self.changed = threading.Condition(threading.Lock())
        self.waiting = 0  # readers blocked on ``changed``: no notify when there are none

    def wake(self) -> None:
        """Wake the waiting readers (``changed`` held)."""
        if self.waiting:
            self.changed.notify_all()


class MemoryStore:
    """Streams kept in this process's memory (the default store).

    Bounded: when a new stream or event would pass ``max_streams`` or
    ``max_bytes``, finished streams are evicted, least recently active
    first; when only live streams are left, :class:`StoreFull` is raised (the
    relay answers 503, or ends that stream with an error). A stream expires
    ``ttl`` seconds after its last activity (an event or a heartbeat), so a
    finished answer stays available for a late browser that long.

    Only for one process: with several workers (gunicorn ``-w 2``) use
    :class:`~holysse.relay.redis_store.RedisStore`.

    :param max_bytes: total size of all stored events (data and names, plus
        a fixed overhead per event).
    :param max_streams: number of streams kept at once.
    :param ttl: seconds a stream is kept after its last activity.
    :param clock: the wall clock (``time.time``); tests inject their own.
    """

    def __init__(
        self,
        *,
        max_bytes: int = 64 << 20,
        max_streams: int = 10_000,
        ttl: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_bytes <= 0 or max_streams <= 0 or ttl <= 0:
            raise ValueError("max_bytes, max_streams and ttl must be positive.")
        self.max_bytes = max_bytes
        self.max_streams = max_streams
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()  # the dict and the byte count; taken before a stream's lock
        self._streams: dict[str, _Stream] = {}
        self._bytes = 0

    def __repr__(self) -> str:
        return f"<MemoryStore streams={len(self._streams)} bytes={self._bytes}/{self.max_bytes}>"

    @property
    def total_bytes(self) -> int:
        """Bytes held by all streams now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._streams)

    # -- writing ----------------------------------------------------------------

    def create(self, stream_id: str, owner: str | None) -> None:
        now = self._clock()
        with self._lock:
            self._expire_locked(now)
            if stream_id in self._streams:
                raise RelayError(f"A stream with id {stream_id!r} already exists.", status=409)
            if len(self._streams) >= self.max_streams:
                self._evict_locked(lambda: len(self._streams) < self.max_streams, "max_streams", now)
            self._streams[stream_id] = _Stream(owner, now)

    def append(self, stream_id: str, event: str, data: str) -> str:
        size = len(event) + len(data) + _ENTRY_OVERHEAD
        terminal = event in TERMINAL_EVENTS
        now = self._clock()
        with self._lock:
            stream = self._live_locked(stream_id, now)
            if stream.ended:
                raise RelayError(f"Stream {stream_id!r} already ended; nothing can be appended.", status=409)
            if self._bytes + size > self.max_bytes and not terminal:  # a small terminal event always fits
                self._evict_locked(lambda: self._bytes + size <= self.max_bytes, "max_bytes", now)
            self._bytes += size
            stream.size += size
            stream.active = stream.producer_seen = now
        with stream.changed:
            stream.entries.append((event, data))
            stream.ended = terminal
            position = len(stream.entries)
            stream.wake()
        return str(position)

    def touch(self, stream_id: str, role: str) -> None:
        now = self._clock()
        with self._lock:
            stream = self._live_locked(stream_id, now)
            stream.active = now
            if role == "producer":
                stream.producer_seen = now
            else:
                stream.listener_seen = now

    def cancel(self, stream_id: str) -> None:
        with self._lock:
            self._live_locked(stream_id, self._clock()).cancelled = True

    # -- reading ------------------------------------------------------------------

    def read(self, stream_id: str, after: str, timeout: float) -> list[Entry]:
        with self._lock:
            stream = self._live_locked(stream_id, self._clock())
        start = _position(after)
        with stream.changed:
            if start > len(stream.entries):
                raise bad_cursor(after)
            if len(stream.entries) == start and not stream.ended and timeout > 0:
                stream.waiting += 1
                try:
                    stream.changed.wait_for(lambda: len(stream.entries) > start or stream.gone, timeout)
                finally:
                    stream.waiting -= 1
            if stream.gone:
                raise StreamNotFound(f"Stream {stream_id!r} expired or was evicted while it was read.")
            new = stream.entries[start:]
        return [Entry(str(start + i + 1), event, data) for i, (event, data) in enumerate(new)]

    def info(self, stream_id: str) -> StreamInfo:
        with self._lock:
            s = self._live_locked(stream_id, self._clock())
            return StreamInfo(s.owner, s.created, s.ended, s.listener_seen, s.producer_seen, s.cancelled)

    def close(self) -> None:
        """Forget every stream and wake their readers (who get
        :class:`StreamNotFound`)."""
        with self._lock:
            for stream_id in list(self._streams):
                self._drop_locked(stream_id)

    # -- bookkeeping (self._lock held) ----------------------------------------------------

    def _live_locked(self, stream_id: str, now: float) -> _Stream:
        stream = self._streams.get(stream_id)
        if stream is not None and now - stream.active > self.ttl:
            self._drop_locked(stream_id)
            stream = None
        if stream is None:
            raise StreamNotFound(f"No stream {stream_id!r}: it never existed, expired, or was evicted.")
        return stream

    def _expire_locked(self, now: float) -> None:
        for stream_id in [k for k, s in self._streams.items() if now - s.active > self.ttl]:
            self._drop_locked(stream_id)

    def _evict_locked(self, fits: Callable[[], bool], limit: str, now: float) -> None:
        """Drop expired, then finished streams (least recently active first)
        until ``fits()``; raise :class:`StoreFull` if that is not enough."""
        self._expire_locked(now)
        finished = sorted((s.active, k) for k, s in self._streams.items() if s.ended)
        for _, stream_id in finished:
            if fits():
                return
            self._drop_locked(stream_id)
        if not fits():
            raise StoreFull(
                f"MemoryStore {limit}={getattr(self, limit)} is reached by streams still running; "
                "retry later, or raise the limit."
            )

    def _drop_locked(self, stream_id: str) -> None:
        stream = self._streams.pop(stream_id)
        self._bytes -= stream.size
        with stream.changed:
            stream.gone = True
            stream.wake()


def _position(after: str) -> int:
    """The number of entries before the one following id ``after``."""
    if not after:
        return 0
    if not (after.isascii() and after.isdigit()) or len(after) > 12:
        raise bad_cursor(after)
    return int(after)
