"""The in-process stream store: :class:`MemoryStore`.

Built for many concurrent streams in one process: the hot paths (an
append, a read, a heartbeat) take only the lock of their own stream, never
a process-wide one, so a pump thread that loses the GIL while writing stalls
nobody else's stream (a lock convoy over hundreds of threads is what made
the relay slow). The store-wide lock guards only creation, expiry and
eviction, and the byte count for a moment.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from ..exceptions import LeaseLost, RelayError, StoreFull, StreamNotFound, UsageError
from .store import TERMINAL_EVENTS, Entry, StreamInfo, bad_cursor

__all__ = ["MemoryStore"]

#: Bytes counted for an entry beyond its event name and data.
_ENTRY_OVERHEAD = 64


class _Stream:
    """One stream of a :class:`MemoryStore`: its log, its lease and a
    condition that wakes the readers waiting on it."""

    __slots__ = ("owner", "created", "entries", "size", "ended", "gone", "cancelled", "listener_seen",
                 "producer_seen", "active", "lock", "changed", "waiting", "request", "state", "holder", "lease_until")

    def __init__(self, owner: str | None, now: float, request: str | None) -> None:
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
        self.lock = threading.Lock()  # taken directly on the hot paths (no Python-level Condition.__enter__)
        self.changed = threading.Condition(self.lock)
        self.waiting = 0  # readers blocked on ``changed``: no notify when there are none
        self.request = request
        self.state: str | None = None
        self.holder: str | None = None
        self.lease_until = 0.0

    def leased_to(self, now: float) -> str | None:
        """The lease's holder, if the lease runs."""
        return self.holder if self.lease_until > now else None


class MemoryStore:
    """Streams kept in this process's memory (the default store).

    Bounded: when a new stream or event would pass ``max_streams`` or
    ``max_bytes``, finished streams are evicted, least recently active
    first; when only live streams are left, :class:`StoreFull` is raised (the
    relay answers 503, or ends that stream with an error). A stream expires
    ``ttl`` seconds after its last activity (an event or a heartbeat), so a
    finished answer stays available for a late browser that long.

    Only for one process: with several workers (gunicorn ``-w 2``) use
    :class:`~holysse.relay.redis_store.RedisStore`. Leases work within the
    process (a pump thread that hangs is taken over by another thread of the
    relay), but a process that dies takes its streams with it.

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
            raise UsageError("max_bytes, max_streams and ttl must be positive.")
        self.max_bytes = max_bytes
        self.max_streams = max_streams
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()  # the dict's membership, eviction and the byte count
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

    def create(self, stream_id: str, owner: str | None, *, request: str | None = None) -> None:
        now = self._clock()
        with self._lock:
            self._expire_locked(now)
            if stream_id in self._streams:
                raise RelayError(f"A stream with id {stream_id!r} already exists.", status=409)
            if len(self._streams) >= self.max_streams:
                self._evict_locked(lambda: len(self._streams) < self.max_streams, "max_streams", now)
            self._streams[stream_id] = _Stream(owner, now, request)

    def append(self, stream_id: str, event: str, data: str, *, holder: str | None = None,
               state: str | None = None) -> str:
        size = len(event) + len(data) + _ENTRY_OVERHEAD
        terminal = event in TERMINAL_EVENTS
        now = self._clock()
        stream = self._live(stream_id, now)
        with self._lock:  # a few bytecodes: no call inside, so no GIL switch while held
            fits = terminal or self._bytes + size <= self.max_bytes  # a small terminal event always fits
            if fits:
                self._bytes += size
        if not fits:
            with self._lock:
                self._evict_locked(lambda: self._bytes + size <= self.max_bytes, "max_bytes", now, keep=stream_id)
                self._bytes += size
        with stream.lock:
            if stream.gone or stream.ended or (holder is not None and stream.holder != holder):
                refusal = self._refusal(stream_id, stream, holder, now)
            else:
                refusal = None
            if refusal is None:
                stream.entries.append((event, data))
                stream.size += size
                stream.active = stream.producer_seen = now
                stream.ended = terminal
                if state is not None:
                    stream.state = state
                position = len(stream.entries)
                if stream.waiting:
                    stream.changed.notify_all()
        if refusal is not None:
            with self._lock:
                self._bytes -= size
            raise refusal
        return str(position)

    @staticmethod
    def _refusal(stream_id: str, stream: _Stream, holder: str | None, now: float) -> RelayError | None:
        """Why an append must be refused (``changed`` held), or ``None``."""
        if stream.gone:
            return StreamNotFound(f"Stream {stream_id!r} expired or was evicted while it was written.")
        if stream.ended:
            return RelayError(f"Stream {stream_id!r} already ended; nothing can be appended.", status=409)
        if holder is not None and stream.holder != holder and stream.leased_to(now) is not None:
            return LeaseLost(f"Stream {stream_id!r} was taken over by another pump.")
        return None

    def touch(self, stream_id: str, role: str) -> None:
        now = self._clock()
        stream = self._live(stream_id, now)
        stream.active = now  # single attribute stores: atomic under the GIL
        if role == "producer":
            stream.producer_seen = now
        else:
            stream.listener_seen = now

    def cancel(self, stream_id: str) -> None:
        self._live(stream_id, self._clock()).cancelled = True

    # -- leases ----------------------------------------------------------------------

    def claim(self, stream_id: str, holder: str, ttl: float) -> bool:
        now = self._clock()
        stream = self._live(stream_id, now)
        with stream.changed:
            if stream.ended or stream.leased_to(now) not in (None, holder):
                return False
            stream.holder, stream.lease_until = holder, now + ttl
            stream.active = stream.producer_seen = now
            return True

    def release(self, stream_id: str, holder: str) -> None:
        stream = self._streams.get(stream_id)
        if stream is not None:
            with stream.changed:
                if stream.holder == holder:
                    stream.holder, stream.lease_until = None, 0.0

    def resumable(self, stream_id: str) -> tuple[str | None, str | None]:
        stream = self._live(stream_id, self._clock())
        with stream.changed:
            return stream.request, stream.state

    def orphans(self, limit: int) -> list[str]:
        now = self._clock()
        found = [k for k, s in list(self._streams.items())
                 if not s.ended and s.request is not None and s.leased_to(now) is None and s.lease_until > 0]
        return found[:limit]

    # -- reading ------------------------------------------------------------------

    def read(self, stream_id: str, after: str, timeout: float) -> list[Entry]:
        stream = self._live(stream_id, self._clock())
        start = _position(after)
        with stream.lock:
            if start > len(stream.entries):
                raise bad_cursor(after)
            if len(stream.entries) == start and not stream.ended and not stream.gone and timeout > 0:
                stream.waiting += 1
                try:
                    stream.changed.wait(timeout)  # woken by an append or a drop; a stray wake-up returns []
                finally:
                    stream.waiting -= 1
            if stream.gone:
                raise StreamNotFound(f"Stream {stream_id!r} expired or was evicted while it was read.")
            new = stream.entries[start:]
        return [Entry(str(start + i + 1), event, data) for i, (event, data) in enumerate(new)]

    def info(self, stream_id: str) -> StreamInfo:
        now = self._clock()
        s = self._live(stream_id, now)
        return StreamInfo(s.owner, s.created, s.ended, s.listener_seen, s.producer_seen, s.cancelled,
                          s.leased_to(now))

    def close(self) -> None:
        """Forget every stream and wake their readers (who get
        :class:`StreamNotFound`)."""
        with self._lock:
            for stream_id in list(self._streams):
                self._drop_locked(stream_id)

    # -- bookkeeping ----------------------------------------------------------------------

    def _live(self, stream_id: str, now: float) -> _Stream:
        """The stream, without the store-wide lock unless it has expired."""
        stream = self._streams.get(stream_id)
        if stream is not None and now - stream.active > self.ttl:
            with self._lock:
                if self._streams.get(stream_id) is stream:
                    self._drop_locked(stream_id)
            stream = None
        if stream is None:
            raise StreamNotFound(f"No stream {stream_id!r}: it never existed, expired, or was evicted.")
        return stream

    def _expire_locked(self, now: float) -> None:
        for stream_id in [k for k, s in self._streams.items() if now - s.active > self.ttl]:
            self._drop_locked(stream_id)

    def _evict_locked(self, fits: Callable[[], bool], limit: str, now: float, keep: str = "") -> None:
        """Drop expired, then finished streams (least recently active first)
        until ``fits()``; raise :class:`StoreFull` if that is not enough."""
        self._expire_locked(now)
        finished = sorted((s.active, k) for k, s in self._streams.items() if s.ended and k != keep)
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
            stream.changed.notify_all()


def _position(after: str) -> int:
    """The number of entries before the one following id ``after``."""
    if not after:
        return 0
    if not (after.isascii() and after.isdigit()) or len(after) > 12:
        raise bad_cursor(after)
    return int(after)
