"""A stream store on Redis Streams, shared by workers and machines.

Each relayed stream is four keys, each with a TTL refreshed by every write,
so nothing outlives ``ttl`` when every worker dies:
``{prefix}:{<id>}:log``, a Redis Stream of events appended with ``XADD`` and
read with ``XREAD BLOCK`` (the Redis entry id is the SSE ``id:``);
``{prefix}:{<id>}:meta``, a hash holding the owner, the ``ended`` and
``cancelled`` flags and the heartbeats; ``{prefix}:{<id>}:resume``, a hash
with the upstream request and the continuation state after the last event;
and ``{prefix}:{<id>}:lease``, the pump's lease (its holder, with a
``PX`` expiry). The ``{<id>}`` hash tag keeps them in one Redis Cluster slot,
so the Lua scripts that append under the lease (fencing) and claim it
(``SET ... PX`` when free, atomically) touch one slot. ``{prefix}:leases``,
a sorted set of stream ids by lease expiry, is how a reaper finds the
streams whose pump died. Only commands Valkey also has: ``XADD``, ``XREAD``,
``HSET``, ``SET PX``, ``ZADD``, ``ZRANGEBYSCORE``, ``EVALSHA``.

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

from ..exceptions import LeaseLost, RelayError, StoreUnavailable, StreamNotFound, UsageError
from .store import TERMINAL_EVENTS, Entry, StreamInfo, bad_cursor

__all__ = ["RedisStore"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_CURSOR = re.compile(r"\d{1,20}-\d{1,20}")
_READ_COUNT = 1000

# KEYS: log, meta, resume, lease. ARGV: event, data, holder ("" = unfenced), ttl ms, now, terminal, state.
_APPEND = """
if redis.call('EXISTS', KEYS[2]) == 0 then return redis.error_reply('NOTFOUND') end
if ARGV[3] ~= '' then
  local holder = redis.call('GET', KEYS[4])
  if holder and holder ~= ARGV[3] then return redis.error_reply('LEASELOST') end
end
if redis.call('HGET', KEYS[2], 'ended') == '1' then return redis.error_reply('ENDED') end
local id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[1], 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('HSET', KEYS[2], 'producer', ARGV[5])
if ARGV[6] == '1' then redis.call('HSET', KEYS[2], 'ended', '1') end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[3], 'state', ARGV[7])
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
end
return id
"""

# KEYS: meta, lease, resume, log. ARGV: holder, lease ms, now, ttl ms.
# 1: held by holder now; 0: held by another, or ended; -1: no such stream.
_CLAIM = """
local ended = redis.call('HGET', KEYS[1], 'ended')
if not ended then return -1 end
if ended == '1' then return 0 end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[1], 'producer', ARGV[3])
for i = 1, 4 do if i ~= 2 then redis.call('PEXPIRE', KEYS[i], ARGV[4]) end end
return 1
"""

# KEYS: lease. ARGV: holder.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


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

    ``url`` takes every form ``redis.Redis.from_url`` does: ``redis://``,
    ``rediss://`` (TLS; ``?ssl_cert_reqs=required&ssl_ca_certs=/path``),
    ``unix:///run/redis.sock?db=0``. For Sentinel, pass the client it
    makes: ``RedisStore(Sentinel([...], socket_timeout=5).master_for("mymaster",
    socket_timeout=5))``.
    """

    #: Streams are shared between processes: a stream can be taken over.
    shared = True

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
            raise UsageError("ttl and timeout must be positive.")
        if client is None:
            if url is None:
                raise UsageError("RedisStore needs a redis client or url=, e.g. RedisStore(url='redis://localhost:6379/0').")
            client = _connect(url, timeout)
        kwargs = client.connection_pool.connection_kwargs
        socket_timeout = kwargs.get("socket_timeout")
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
        self._leases = f"{prefix}:leases"
        self._scripts = {name: client.register_script(text)
                         for name, text in (("append", _APPEND), ("claim", _CLAIM), ("release", _RELEASE))}
        self._where = f"{kwargs.get('host', kwargs.get('path', 'redis'))}:{kwargs.get('port', '')}".rstrip(":")

    def __repr__(self) -> str:
        return f"<RedisStore {self._where} prefix={self._prefix!r}>"

    def _keys(self, stream_id: str) -> tuple[str, str]:
        base = f"{self._prefix}:{{{stream_id}}}"
        return base + ":log", base + ":meta"

    def _more_keys(self, stream_id: str) -> tuple[str, str]:
        base = f"{self._prefix}:{{{stream_id}}}"
        return base + ":resume", base + ":lease"

    def _call(self, what: str, fn: Callable[[], _T]) -> _T:
        """Run one Redis operation; translate every Redis error."""
        import redis

        try:
            return fn()
        except redis.RedisError as exc:
            raise self._unavailable(what, exc) from exc

    def _unavailable(self, what: str, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(
            f"Redis at {self._where} failed to {what}: {type(exc).__name__}: {exc}. "
            "Check that redis-server is running and reachable; the browser can retry later."
        )

    # -- writing ------------------------------------------------------------------

    def create(self, stream_id: str, owner: str | None, *, request: str | None = None) -> None:
        meta = self._keys(stream_id)[1]
        resume, _ = self._more_keys(stream_id)
        now = repr(time.time())
        fields = {"owner": owner or "", "bound": "1" if owner is not None else "0", "created": now,
                  "listener": now, "producer": now, "ended": "0", "cancelled": "0"}

        def run() -> None:
            pipe = self._redis.pipeline(transaction=True)
            pipe.hset(meta, mapping=fields)
            pipe.pexpire(meta, self._ttl_ms)
            if request is not None:
                pipe.hset(resume, "request", request)
                pipe.pexpire(resume, self._ttl_ms)
            pipe.execute()

        self._call("create a stream", run)

    def append(self, stream_id: str, event: str, data: str, *, holder: str | None = None,
               state: str | None = None) -> str:
        keys = [*self._keys(stream_id), *self._more_keys(stream_id)]
        terminal = event in TERMINAL_EVENTS
        args = [event, data, holder or "", self._ttl_ms, repr(time.time()), "1" if terminal else "0", state or ""]
        import redis

        try:
            entry_id = self._scripts["append"](keys=keys, args=args)
        except redis.ResponseError as exc:
            reason = str(exc)
            if "NOTFOUND" in reason:
                raise StreamNotFound(f"No stream {stream_id!r}: it never existed or expired.") from None
            if "LEASELOST" in reason:
                raise LeaseLost(f"Stream {stream_id!r} was taken over by another pump.") from None
            if "ENDED" in reason:
                raise RelayError(f"Stream {stream_id!r} already ended; nothing can be appended.", status=409) from None
            raise self._unavailable("append an event", exc) from exc
        except redis.RedisError as exc:
            raise self._unavailable("append an event", exc) from exc
        if terminal:
            self._forget_lease(stream_id)
        return _text(entry_id)

    def touch(self, stream_id: str, role: str) -> None:
        log, meta = self._keys(stream_id)
        resume = self._more_keys(stream_id)[0]
        field = "producer" if role == "producer" else "listener"

        def run() -> list[Any]:
            pipe = self._redis.pipeline(transaction=True)
            pipe.exists(meta)
            pipe.hset(meta, field, repr(time.time()))
            pipe.pexpire(meta, self._ttl_ms)
            pipe.pexpire(log, self._ttl_ms)
            pipe.pexpire(resume, self._ttl_ms)
            result: list[Any] = pipe.execute()
            return result

        if not self._call("record a heartbeat", run)[0]:
            self._call("clean up", lambda: self._redis.delete(meta))  # the HSET recreated an expired stream
            raise StreamNotFound(f"No stream {stream_id!r}: it never existed or expired.")

    def cancel(self, stream_id: str) -> None:
        self.info(stream_id)
        self._call("cancel a stream", lambda: self._redis.hset(self._keys(stream_id)[1], "cancelled", "1"))

    # -- leases ----------------------------------------------------------------------

    def claim(self, stream_id: str, holder: str, ttl: float) -> bool:
        log, meta = self._keys(stream_id)
        resume, lease = self._more_keys(stream_id)
        lease_ms = max(1, int(ttl * 1000))
        held = self._call("claim a lease", lambda: self._scripts["claim"](
            keys=[meta, lease, resume, log], args=[holder, lease_ms, repr(time.time()), self._ttl_ms]))
        if held == -1:
            raise StreamNotFound(f"No stream {stream_id!r}: it never existed or expired.")
        if held:
            until = time.time() + ttl

            def index() -> None:
                pipe = self._redis.pipeline(transaction=False)
                pipe.zadd(self._leases, {stream_id: until})
                pipe.pexpire(self._leases, max(self._ttl_ms, lease_ms))
                pipe.execute()

            self._call("index a lease", index)
        return bool(held == 1)

    def _forget_lease(self, stream_id: str) -> None:
        self._call("forget a lease", lambda: self._redis.zrem(self._leases, stream_id))

    def release(self, stream_id: str, holder: str) -> None:
        lease = self._more_keys(stream_id)[1]
        if self._call("release a lease", lambda: self._scripts["release"](keys=[lease], args=[holder])):
            # Free now: a reaper may take it over at once (an ended stream leaves the index instead).
            self._call("index a lease", lambda: self._redis.zadd(self._leases, {stream_id: 0}, xx=True))

    def resumable(self, stream_id: str) -> tuple[str | None, str | None]:
        resume = self._more_keys(stream_id)[0]
        request, state = self._call("read a stream's resume state", lambda: self._redis.hmget(resume, "request",
                                                                                                "state"))
        return (None if request is None else _text(request)), (None if state is None else _text(state))

    def orphans(self, limit: int) -> list[str]:
        now = time.time()
        found = self._call("find expired leases", lambda: self._redis.zrangebyscore(
            self._leases, "-inf", now, start=0, num=limit))
        orphans = []
        for raw in found:
            stream_id = _text(raw)
            try:
                info = self.info(stream_id)
            except StreamNotFound:
                info = None
            if info is None or info.ended:  # expired with its keys, or ended: forget it
                self._forget_lease(stream_id)
            elif info.holder is None:
                orphans.append(stream_id)
        return orphans

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
        lease = self._more_keys(stream_id)[1]

        def run() -> list[Any]:
            pipe = self._redis.pipeline(transaction=False)
            pipe.hgetall(self._keys(stream_id)[1])
            pipe.get(lease)
            result: list[Any] = pipe.execute()
            return result

        fields, holder = self._call("read a stream's state", run)
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
            holder=None if holder is None else _text(holder),
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
