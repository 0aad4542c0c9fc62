"""Several workers, one stream: the Flask example under gunicorn (2 workers,
gthread) with a real redis-server. A browser connection that lands on the
other worker than the one it read from resumes the same stream."""

from __future__ import annotations

import shutil
from typing import Iterator

import pytest
import requests

from holysse.testing import FakeServer

from .relay_support import gunicorn_example, read_events, redis_server, text_of, wait_until

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]

MESSAGES = {"messages": [{"role": "user", "content": "Tell me about workers."}]}
CLOSE = {"Connection": "close"}  # a new TCP connection per request: any worker may take it


@pytest.fixture
def gunicorn() -> Iterator[tuple[str, FakeServer]]:
    pytest.importorskip("gunicorn", reason="gunicorn is not installed")
    pytest.importorskip("redis", reason="the redis client is not installed")
    pytest.importorskip("flask", reason="flask is not installed")
    with FakeServer(answer_chars=1500, token_delay=0.004) as fake, redis_server() as redis_url:
        process, base = gunicorn_example(fake.url, redis_url)
        try:
            yield base, fake
        finally:
            process.stop()


def test_a_connection_landing_on_the_other_worker_resumes_the_same_stream(
    gunicorn: tuple[str, FakeServer],
) -> None:
    base, fake = gunicorn
    workers: set[str] = set()

    def both_workers_answered() -> bool:
        workers.add(requests.get(base + "/", headers=CLOSE, timeout=5).headers["X-Worker-Pid"])
        return len(workers) == 2

    wait_until(both_workers_answered, 20, "both workers to answer")
    browser = requests.Session()
    started = browser.post(base + "/holysse/streams", json=MESSAGES, headers=CLOSE, timeout=5)
    assert started.status_code == 201, started.text
    stream_url = f"{base}/holysse/streams/{started.json()['id']}"

    first = browser.get(stream_url, headers=CLOSE, stream=True, timeout=5)
    first_worker = first.headers["X-Worker-Pid"]
    head = read_events(first, stop_after=15)
    assert len(head) == 15

    for _ in range(100):  # bounded: each try is a new connection, the kernel picks the worker
        second = browser.get(stream_url, headers={**CLOSE, "Last-Event-ID": head[-1].id}, stream=True, timeout=5)
        if second.headers["X-Worker-Pid"] != first_worker:
            break
        second.close()
    else:
        pytest.fail("no connection landed on the other worker in 100 tries")
    rest = read_events(second)
    assert _redis_id(rest[0].id) > _redis_id(head[-1].id) and rest[-1].event == "finish"
    assert text_of(head + rest) == fake.answers[-1]
    assert len(fake.requests) == 1  # one generation, relayed through Redis to both workers
    # Another browser (another session) is refused on every worker.
    assert requests.get(stream_url, headers=CLOSE, timeout=5).status_code == 403


def _redis_id(entry_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in entry_id.split("-"))
