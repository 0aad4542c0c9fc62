"""Leases and takeover: the lease contract of both stores (exclusive,
renewed, expiring, fencing every write), and two relay processes racing to
take over one stream whose pump died: exactly one continues, no event is
stored twice."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from typing import Any, Iterator

import pytest

import holysse
from holysse.exceptions import LeaseLost, StreamNotFound
from holysse.relay import MemoryStore, RedisStore, Relay, StreamStore, takeover
from holysse.testing import FakeServer

from .relay_support import ROOT, either_store, redis_for_tests, text_of_entries

needs_redis = [
    pytest.mark.redis,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]
MESSAGES = [{"role": "user", "content": "Tell me about leases."}]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_for_tests() as url:
        yield url


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", pytest.param("redis", marks=needs_redis)])
def store(request: pytest.FixtureRequest) -> Iterator[StreamStore]:
    with either_store(request.param, lambda: str(request.getfixturevalue("redis_url"))) as chosen:
        yield chosen


def test_a_lease_is_exclusive_renewable_and_fences_every_write(store: StreamStore) -> None:
    sid = "L" * 20
    store.create(sid, None, request='{"model":"m"}')
    assert store.resumable(sid) == ('{"model":"m"}', None)
    assert store.claim(sid, "a", 5) and store.claim(sid, "a", 5)  # taken, then renewed
    assert not store.claim(sid, "b", 5)  # a's lease runs
    assert store.info(sid).holder == "a" and store.orphans(10) == []
    first = store.append(sid, "text", '{"text":"x"}', holder="a", state='{"n":1}')
    with pytest.raises(LeaseLost):
        store.append(sid, "text", '{"text":"y"}', holder="b", state='{"n":2}')
    assert [e.id for e in store.read(sid, "", 0)] == [first] and store.resumable(sid)[1] == '{"n":1}'
    store.release(sid, "b")  # not b's: nothing happens
    assert store.info(sid).holder == "a"
    store.release(sid, "a")
    assert store.info(sid).holder is None
    assert store.claim(sid, "b", 5) and store.info(sid).holder == "b"
    store.append(sid, "finish", "{}", holder="b")
    assert not store.claim(sid, "b", 5) and not store.claim(sid, "c", 5)  # an ended stream has no pump
    with pytest.raises(StreamNotFound):
        store.claim("N" * 20, "a", 5)


def test_an_expired_lease_makes_an_orphan_that_one_claimant_takes() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    store.create("o" * 20, None, request="{}")
    store.create("p" * 20, None)  # no stored request: cannot be taken over, never an orphan
    assert store.claim("o" * 20, "dead", 2) and store.claim("p" * 20, "dead", 2)
    clock.now += 3
    assert store.orphans(10) == ["o" * 20] and store.info("o" * 20).holder is None
    wins = []
    barrier = threading.Barrier(8)

    def claimant(name: str) -> None:
        barrier.wait(5)
        if store.claim("o" * 20, name, 2):
            wins.append(name)

    threads = [threading.Thread(target=claimant, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(wins) == 1 and store.orphans(10) == []
    with pytest.raises(LeaseLost):
        store.append("o" * 20, "text", "{}", holder="dead")


@pytest.mark.redis
def test_redis_lease_keys_expire_and_expired_leases_are_orphans(redis_url: str) -> None:
    import redis

    store = RedisStore(url=redis_url, prefix="lk", ttl=30)
    sid = "k" * 20
    store.create(sid, None, request="{}")
    assert store.claim(sid, "a", 0.2)
    store.append(sid, "text", "{}", holder="a", state="{}")
    client = redis.Redis.from_url(redis_url)
    for suffix in ("log", "meta", "resume", "lease"):
        assert 0 < client.pttl("lk:{" + sid + "}:" + suffix) <= 30_000, suffix
    assert 0 < client.pttl("lk:leases") <= 30_000
    deadline = time.monotonic() + 5
    while store.orphans(10) != [sid]:
        assert time.monotonic() < deadline, "the lease never expired"
        threading.Event().wait(0.05)
    client.close()
    store.close()


@pytest.mark.redis
@pytest.mark.parametrize("dead", ["before its first event", "mid-answer"])
def test_two_processes_racing_to_take_over_one_stream_one_continues(redis_url: str, dead: str) -> None:
    if dead == "mid-answer" and not takeover.supported():
        pytest.skip("this holysse has no Checkpoint to resume from")
    with FakeServer(answer_chars=1500, token_delay=0.004) as fake:
        prefix = f"race{time.monotonic_ns()}"
        store = RedisStore(url=redis_url, prefix=prefix, timeout=2)
        if dead == "mid-answer":  # a relay process pumps the stream and is SIGKILLed mid-answer
            pumping = _worker(redis_url, fake.url, "start", prefix)
            try:
                sid = _line(pumping)
                deadline = time.monotonic() + 10
                while len(_all(store, sid)) < 40:
                    assert time.monotonic() < deadline, "the pump never wrote 40 events"
                    threading.Event().wait(0.01)
                pumping.kill()
                pumping.wait(5)
            finally:
                _close(pumping)
        else:  # its pump died before its first event: only the request is stored
            sid = "R" * 24
            store.create(sid, None, request=json.dumps({"model": "fake-1", "seed": 5, "messages": MESSAGES}))
            assert store.claim(sid, "dead-host:1:x", 0.1)
        stored_before = _all(store, sid)
        workers = [_worker(redis_url, fake.url, sid, prefix) for _ in range(2)]
        try:
            for worker in workers:
                assert _line(worker) == "ready"
            deadline = time.monotonic() + 5
            while store.info(sid).holder is not None:  # the dead pump's lease expires
                assert time.monotonic() < deadline
                threading.Event().wait(0.02)
            for worker in workers:  # both at once
                assert worker.stdin is not None
                worker.stdin.write("go\n")
                worker.stdin.flush()
            assert sorted(_line(worker) for worker in workers) == ["adopted", "refused"]
            for worker in workers:
                worker.wait(30)
            assert all(worker.returncode == 0 for worker in workers)
        finally:
            for worker in workers:
                _close(worker)
        entries = _all(store, sid)
        assert entries[:len(stored_before)] == stored_before  # what was stored stays, once
        assert [e.event for e in entries].count("finish") == 1 and entries[-1].event == "finish"
        assert len({e.id for e in entries}) == len(entries)
        assert text_of_entries(entries) == fake.answers[0]  # no event twice, none missing
        assert len(fake.answers) == 1  # one generation: resumed by cursor, or never opened before
        if dead == "mid-answer":  # the dead pump's request, then the winner's resume by cursor
            assert len(stored_before) >= 40 and len(fake.requests) == 2
            assert fake.requests[1].header("Last-Event-ID")
        store.close()


def _close(worker: subprocess.Popen[str]) -> None:
    if worker.poll() is None:
        worker.kill()
        worker.wait(5)
    for pipe in (worker.stdin, worker.stdout):
        if pipe is not None:
            pipe.close()


def _worker(redis_url: str, upstream: str, sid: str, prefix: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.relay_takeover_worker", redis_url, upstream, sid, prefix],
                            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _line(worker: subprocess.Popen[str]) -> str:
    assert worker.stdout is not None
    return worker.stdout.readline().strip()


def _all(store: StreamStore, sid: str) -> list[Any]:
    entries: list[Any] = []
    while batch := store.read(sid, entries[-1].id if entries else "", 0):
        entries += batch
    return entries


@pytest.mark.redis
@pytest.mark.skipif(not takeover.supported(), reason="this holysse has no Checkpoint to resume from")
def test_a_worker_shutting_down_hands_its_streams_over_without_ending_them(redis_url: str) -> None:
    with FakeServer(answer_chars=3000, token_delay=0.003) as fake:
        client = holysse.Client(api_key="hs_" + "k" * 32, base_url=fake.url)
        prefix = f"hand{time.monotonic_ns()}"
        stores = [RedisStore(url=redis_url, prefix=prefix, timeout=2) for _ in range(2)]
        leaving, staying = (Relay(client, store, poll=0.05, lease=5) for store in stores)
        try:
            sid = leaving.start(owner="me", model="fake-1", seed=4, messages=MESSAGES)
            reader = staying.follow(sid, owner="me")  # a listener on the other worker
            text = ""
            for event in reader:
                text += event.text
                if len(text) > 100 and leaving.pumps():
                    leaving.close()  # a graceful shutdown (a deploy): well before the 5 s lease expires
            assert text == fake.answers[-1] and reader.finish_reason == "stop"
            assert len(fake.answers) == 1  # continued by cursor, not generated again
            assert "failed" not in [e.event for e in _all(stores[0], sid)]
        finally:
            leaving.close()
            staying.close()
            for store in stores:
                store.close()
            client.close()
