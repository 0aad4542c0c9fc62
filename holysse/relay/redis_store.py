"""A stream store on Redis Streams, shared by workers and machines.

Each relayed stream is two keys, both with a TTL refreshed by every write:
``{prefix}:{<id>}:log``, a Redis Stream of events appended with ``XADD`` and
read with ``XREAD BLOCK`` (the Redis entry id is the SSE ``id:``), and
``{prefix}:{<id>}:meta``, a hash holding the owner, the ``ended`` and
``cancelled`` flags and the heartbeats. The ``{<id>}`` hash tag keeps both
keys in one Redis Cluster slot.

Every call is bounded by the client's socket timeouts and is never retried
in a loop, so a Redis outage becomes a
:class:`~holysse.exceptions.StoreUnavailable` within about ``timeout``
seconds, never a hang. Needs the ``redis`` extra: ``pip install
'holysse[redis]'``.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any, Callable, Iterator, TypeVar

from ..exceptions import StoreUnavailable, StreamNotFound, UsageError
from .store import TERMINAL_EVENTS, Entry, StreamInfo, bad_cursor

__all__ = ["RedisStore"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_CURSOR = re.compile(r"\d{1,20}-\d{1,20}")
_READ_COUNT = 1000


class RedisStore:
    """Relayed streams in Redis Streams.

    :param client: a ``redis.Redis`` to use. It must have a
        ``socket_timeout`` (else a silent Redis could hang a request); its
        own retry settings apply.
    :param url: a Redis URL (``redis://host:6379/0``) to connect to when no
        ``client`` is given. The password it may hold is never logged.
    :param prefix: the key prefix.
    :param ttl: seconds the keys of a stream live after its last write or
        heartbeat.
    :param timeout: connect and socket timeout, in seconds, of the client
        built from ``url``; also the longest a call may take.
    :raises UsageError: for a ``client`` without ``socket_timeout``, or
        neither ``client`` nor ``url``.
    """

    def __init__(
        self,
        client: Any = None,
        *,
        url: str | None = None,
        prefix: str = "holysse",
        ttl: float = 600.0,
        timeout: float = 5.0,
    ) -> None:
        if ttl <= 0 or timeout <= 0:
            raise ValueError("ttl and timeout must be positive.")
        if client is None:
            if url is None:
                raise UsageError("RedisStore needs a redis client or url=, e.g. RedisStore(url='redis://localhost:6379/0').")
            client = _connect(url, timeout)
        socket_timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
        if socket_timeout is None:
            raise UsageError(
                "Give the Redis client a socket_timeout (e.g. redis.Redis(..., socket_timeout=5)) so a Redis "
                "outage cannot hang the relay."
            )
        self._redis = client
        self._prefix = prefix
        self._ttl_ms = int(ttl * 1000)
        # XREAD BLOCK must return before the socket times out.
        self._max_block = max(0.01, float(socket_timeout) - 0.5)
        kwargs = client.connection_pool.connection_kwargs
        self._where = f"{kwargs.get('host', kwargs.get('path', 'redis'))}:{kwargs.get('port', '')}".rstrip(":")

    def __repr__(self) -> str:
        return f"<RedisStore {self._where} prefix={self._prefix!r}>"

    def _keys(self, stream_id: str) -> tuple[str, str]:
        base = f"{self._prefix}:{{{stream_id}}}"
        return base + ":log", base + ":meta"

    def _call(self, what: str, fn: Callable[[], _T]) -> _T:
        """Run one Redis operation; translate every Redis error."""
        import redis

        try:
            return fn()
        except redis.RedisError as exc:
            raise StoreUnavailable(
                f"Redis at {self._where} failed to {what}: {type(exc).__name__}: {exc}. "
                "Check that redis-server is running and reachable; the browser can retry later."
            ) from exc

    # -- writing ------------------------------------------------------------------

    def create(self, stream_id: str, owner: str | None) -> None:
        log, meta = self._keys(stream_id)
        now = repr(time.time())
        fields = {"owner": owner or "", "bound": "1" if owner is not None else "0", "created": now,
                  "listener": now, "producer": now, "ended": "0", "cancelled": "0"}

        def run() -> None:
            pipe = self._redis.pipeline(transaction=True)
            pipe.hset(meta, mapping=fields)
            pipe.pexpire(meta, self._ttl_ms)
            pipe.execute()

        self._call("create a stream", run)

    def append(self, stream_id: str, event: str, data: str) -> str:
        log, meta = self._keys(stream_id)

        def run() -> Any:
            pipe = self._redis.pipeline(transaction=True)
            pipe.xadd(log, {"e": event, "d": data})
            pipe.pexpire(log, self._ttl_ms)
            state = {"producer": repr(time.time())}
            if event in TERMINAL_EVENTS:
                state["ended"] = "1"
            pipe.hset(meta, mapping=state)
            pipe.pexpire(meta, self._ttl_ms)
            return pipe.execute()[0]

        return _text(self._call("append an event", run))

    def touch(self, stream_id: str, role: str) -> None:
        log, meta = self._keys(stream_id)
        field = "producer" if role == "producer" else "listener"

        def run() -> list[Any]:
            pipe = self._redis.pipeline(transaction=True)
            pipe.exists(meta)
            pipe.hset(meta, field, repr(time.time()))
            pipe.pexpire(meta, self._ttl_ms)
            pipe.pexpire(log, self._ttl_ms)
            result: list[Any] = pipe.execute()
            return result

        if not self._call("record a heartbeat", run)[0]:
            self._call("clean up", lambda: self._redis.delete(meta))  # the HSET recreated an expired stream
            raise StreamNotFound(f"No stream {stream_id!r}: it never existed or expired.")

    def cancel(self, stream_id: str) -> None:
        self.info(stream_id)
        self._call("cancel a stream", lambda: self._redis.hset(self._keys(stream_id)[1], "cancelled", "1"))

    # -- reading --------------------------------------------------------------------

    def read(self, stream_id: str, after: str, timeout: float) -> list[Entry]:
        if after and not _CURSOR.fullmatch(after):
            raise bad_cursor(after)
        log, _ = self._keys(stream_id)
        block = min(timeout, self._max_block)

        def run() -> Any:
            if block <= 0:
                return self._redis.xread({log: after or "0-0"}, count=_READ_COUNT)
            return self._redis.xread({log: after or "0-0"}, count=_READ_COUNT, block=max(1, int(block * 1000)))

        reply = self._call("read events", run)
        return list(_entries(reply))

    def info(self, stream_id: str) -> StreamInfo:
        fields = self._call("read a stream's state", lambda: self._redis.hgetall(self._keys(stream_id)[1]))
        if not fields:
            raise StreamNotFound(f"No stream {stream_id!r}: it never existed or expired.")
        meta = {_text(k): _text(v) for k, v in fields.items()}
        return StreamInfo(
            owner=meta.get("owner", "") if meta.get("bound") == "1" else None,
            created=float(meta.get("created", 0)),
            ended=meta.get("ended") == "1",
            listener_seen=float(meta.get("listener", 0)),
            producer_seen=float(meta.get("producer", 0)),
            cancelled=meta.get("cancelled") == "1",
        )

    def close(self) -> None:
        """Close the client's connections."""
        self._redis.close()


def _connect(url: str, timeout: float) -> Any:
    try:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError:
        raise UsageError("RedisStore needs the redis client: pip install 'holysse[redis]'.") from None
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _entries(reply: Any) -> Iterator[Entry]:
    """Entries from an ``XREAD`` reply: ``[[key, messages]]`` in RESP2,
    ``{key: [messages]}`` in RESP3."""
    if not reply:
        return
    if isinstance(reply, dict):
        batches = [message for value in reply.values() for batch in value for message in batch]
    else:
        batches = [message for _, messages in reply for message in messages]
    for entry_id, fields in batches:
        values = {_text(k): _text(v) for k, v in fields.items()}
        yield Entry(_text(entry_id), values.get("e", "message"), values.get("d", ""))
