"""Stream stores: one contract for MemoryStore and RedisStore (against a real
redis-server), MemoryStore's limits and TTL, and Redis outages that end in
a clear error within a bounded time."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from typing import Any, Iterator

import pytest

import holysse
from holysse.exceptions import RelayError, StoreFull, StoreUnavailable, StreamNotFound
from holysse.relay import MemoryStore, RedisStore, Relay, StreamStore

from .relay_support import either_store, free_port, redis_for_tests, redis_server

needs_redis = [
    pytest.mark.redis,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_for_tests() as url:
        yield url


@pytest.fixture(params=["memory", pytest.param("redis", marks=needs_redis)])
def store(request: pytest.FixtureRequest) -> Iterator[StreamStore]:
    with either_store(request.param, lambda: str(request.getfixturevalue("redis_url"))) as chosen:
        yield chosen


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the contract --------------------------------------------------------------------


def test_events_come_back_in_order_after_any_id(store: StreamStore) -> None:
    store.create("s" * 20, "alice")
    ids = [store.append("s" * 20, "text", json.dumps({"text": str(i)})) for i in range(5)]
    assert len(set(ids)) == 5
    entries = store.read("s" * 20, "", 0)
    assert [e.id for e in entries] == ids and [json.loads(e.data)["text"] for e in entries] == list("01234")
    assert [e.id for e in store.read("s" * 20, ids[2], 0)] == ids[3:]
    assert store.read("s" * 20, ids[-1], 0.01) == []
    info = store.info("s" * 20)
    assert info.owner == "alice" and not info.ended and not info.cancelled
    store.append("s" * 20, "finish", "{}")
    assert store.info("s" * 20).ended


def test_a_waiting_reader_is_woken_by_an_append(store: StreamStore) -> None:
    store.create("w" * 20, None)
    got: list[Any] = []
    started = threading.Event()

    def reader() -> None:
        started.set()
        began = time.monotonic()
        got.append(store.read("w" * 20, "", 5.0))
        got.append(time.monotonic() - began)

    thread = threading.Thread(target=reader)
    thread.start()
    assert started.wait(5)
    threading.Event().wait(0.1)  # let the reader block first
    store.append("w" * 20, "text", '{"text":"hi"}')
    thread.join(5)
    assert [e.data for e in got[0]] == ['{"text":"hi"}']
    assert got[1] < 2.0  # woken, not timed out


def test_unknown_streams_bad_ids_heartbeats_and_cancel(store: StreamStore) -> None:
    with pytest.raises(StreamNotFound):
        store.info("nope" * 5)
    with pytest.raises(StreamNotFound):
        store.touch("nope" * 5, "listener")
    store.create("h" * 20, None)
    assert store.info("h" * 20).owner is None
    with pytest.raises(RelayError) as bad:
        store.read("h" * 20, "not-an-id", 0)
    assert bad.value.status == 400
    before = store.info("h" * 20)
    threading.Event().wait(0.02)
    store.touch("h" * 20, "listener")
    after = store.info("h" * 20)
    assert after.listener_seen > before.listener_seen and after.producer_seen == before.producer_seen
    store.cancel("h" * 20)
    assert store.info("h" * 20).cancelled


# -- MemoryStore ------------------------------------------------------------------------


def test_memory_store_evicts_finished_streams_first_then_refuses() -> None:
    store = MemoryStore(max_streams=3)
    for name in "abc":
        store.create(name * 20, None)
    store.append("b" * 20, "finish", "{}")
    store.create("d" * 20, None)  # evicts b, the finished one
    with pytest.raises(StreamNotFound):
        store.info("b" * 20)
    with pytest.raises(StoreFull) as full:
        store.create("e" * 20, None)  # a, c, d all running
    assert full.value.status == 503 and "max_streams" in str(full.value)


def test_memory_store_is_bounded_in_bytes() -> None:
    store = MemoryStore(max_bytes=2000)
    store.create("a" * 20, None)
    store.create("b" * 20, None)
    store.append("a" * 20, "text", "x" * 1200)
    store.append("a" * 20, "finish", "{}")
    store.append("b" * 20, "text", "y" * 600)  # a (finished) is evicted to make room
    assert len(store) == 1 and store.total_bytes < 2000
    with pytest.raises(StoreFull):
        store.append("b" * 20, "text", "z" * 1500)
    store.append("b" * 20, "failed", "{}")  # a terminal event always fits: readers learn the end
    assert store.info("b" * 20).ended


def test_memory_store_expires_streams_and_wakes_their_readers() -> None:
    clock = Clock()
    store = MemoryStore(ttl=60, clock=clock)
    store.create("t" * 20, None)
    clock.now += 50
    store.touch("t" * 20, "producer")  # activity restarts the TTL
    clock.now += 50
    assert store.info("t" * 20)
    got: list[BaseException] = []
    waiting = threading.Event()

    def reader() -> None:
        waiting.set()
        try:
            store.read("t" * 20, "", 5.0)
        except StreamNotFound as exc:
            got.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    assert waiting.wait(5)
    threading.Event().wait(0.05)
    clock.now += 61
    store.create("u" * 20, None)  # any creation purges expired streams
    thread.join(5)
    assert not thread.is_alive() and len(got) == 1
    with pytest.raises(StreamNotFound):
        store.info("t" * 20)


def test_memory_store_keeps_each_stream_intact_under_concurrency() -> None:
    store = MemoryStore()
    names = [f"{i:020d}" for i in range(8)]
    for name in names:
        store.create(name, None)
    seen: dict[str, list[str]] = {}

    def writer(name: str) -> None:
        for i in range(300):
            store.append(name, "text", f"{name}:{i}")
        store.append(name, "finish", "{}")

    def reader(name: str) -> None:
        after, data = "", []
        while True:
            entries = store.read(name, after, 5.0)
            for entry in entries:
                data.append(entry.data)
                after = entry.id
            if entries and entries[-1].event == "finish":
                seen[name] = data
                return

    threads = [threading.Thread(target=f, args=(n,)) for n in names for f in (writer, reader)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    for name in names:
        assert seen[name] == [f"{name}:{i}" for i in range(300)] + ["{}"]


# -- Redis ------------------------------------------------------------------------------------


@pytest.mark.redis
def test_redis_keys_carry_a_ttl(redis_url: str) -> None:
    import redis

    store = RedisStore(url=redis_url, prefix="ttl", ttl=30)
    store.create("k" * 20, "bob")
    store.append("k" * 20, "text", "{}")
    client = redis.Redis.from_url(redis_url)
    for key in ("ttl:{" + "k" * 20 + "}:log", "ttl:{" + "k" * 20 + "}:meta"):
        assert 0 < client.pttl(key) <= 30_000
    client.close()
    store.close()


@pytest.mark.redis
def test_redis_stopped_mid_stream_gives_a_clear_error_not_a_hang() -> None:
    pytest.importorskip("redis", reason="the redis client is not installed")
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with redis_server() as url:
        store = RedisStore(url=url, timeout=1)
        store.create("r" * 20, None)
        store.append("r" * 20, "text", "{}")
    began = time.monotonic()  # the server is gone now
    for call in (lambda: store.read("r" * 20, "", 5), lambda: store.append("r" * 20, "text", "{}")):
        with pytest.raises(StoreUnavailable) as info:
            call()
        assert "redis-server" in str(info.value) and info.value.status == 503
    assert time.monotonic() - began < 3
    store.close()


def test_a_silent_redis_times_out_within_the_timeout() -> None:
    pytest.importorskip("redis", reason="the redis client is not installed")
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    try:
        store = RedisStore(url=f"redis://:secret-pass@127.0.0.1:{silent.getsockname()[1]}/0", timeout=0.5)
        began = time.monotonic()
        with pytest.raises(StoreUnavailable) as info:
            store.read("q" * 20, "", 5)
        assert time.monotonic() - began < 2.5
        assert "secret-pass" not in str(info.value) and "secret-pass" not in repr(store)
        store.close()
    finally:
        silent.close()


def test_a_relay_without_redis_answers_503_at_once() -> None:
    pytest.importorskip("redis", reason="the redis client is not installed")
    from holysse.relay import Endpoints

    store = RedisStore(url=f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)  # nobody listens there
    relay = Relay(holysse.Client(api_key="hs_x", base_url="http://127.0.0.1:9/v1"), store)
    began = time.monotonic()
    reply = Endpoints(relay, model="m").start(b'{"messages":[{"role":"user","content":"hi"}]}',
                                              "application/json", "me")
    assert reply.status == 503 and ("Retry-After", "2") in reply.headers
    assert json.loads(b"".join(reply.body))["error"] == "StoreUnavailable"
    assert time.monotonic() - began < 2
    relay.close()


def test_redis_client_without_socket_timeout_is_refused() -> None:
    redis = pytest.importorskip("redis", reason="the redis client is not installed")
    with pytest.raises(holysse.UsageError, match="socket_timeout"):
        RedisStore(redis.Redis(port=free_port(), socket_timeout=None))
