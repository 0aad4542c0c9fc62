"""A worker dies mid-answer: the Flask example under gunicorn (2 workers,
gthread) on a real redis-server, a page in the system Chromium. The worker
pumping the stream (its PID is in the lease holder the store shows) is
killed with SIGKILL; another worker takes the lease over and resumes the
upstream from the stored checkpoint, and the page shows the whole answer,
once. With SSE ids the upstream sees one generation (resumed by cursor);
with replay only, at most two, the re-sent prefix dropped."""

from __future__ import annotations

import os
import shutil
import signal
import time
from typing import Any, Iterator

import pytest

from holysse.relay import RedisStore, takeover
from holysse.testing import FakeServer

from .relay_support import chromium, gunicorn_example, redis_server, wait_until

pytestmark = [
    pytest.mark.redis,
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
    pytest.mark.skipif(not takeover.supported(), reason="this holysse has no Checkpoint to resume from"),
]

LEASE, POLL = 2.0, 0.2
#: The documented bound (README, "When a worker dies"): lease + poll, plus a few seconds here for
#: gunicorn, a loaded test machine and the upstream's reconnect.
TAKEOVER_BOUND = LEASE + POLL + 3.0


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    pytest.importorskip("gunicorn", reason="gunicorn is not installed")
    pytest.importorskip("redis", reason="the redis client is not installed")
    pytest.importorskip("flask", reason="flask is not installed")
    with chromium() as launched:
        yield launched


@pytest.mark.parametrize("upstream", ["cursor", "replay"])
def test_a_worker_killed_mid_answer_is_taken_over_and_the_page_shows_the_whole_answer(
    browser: Any, upstream: str
) -> None:
    options: dict[str, Any] = {} if upstream == "cursor" else {"ids": False, "resume": False, "prefill": False}
    with FakeServer(answer_chars=2500, token_delay=0.01, **options) as fake, redis_server() as redis_url:
        server, base = gunicorn_example(fake.url, redis_url, HOLYSSE_POLL=str(POLL), HOLYSSE_LEASE=str(LEASE))
        store = RedisStore(url=redis_url, timeout=2)
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(base + "/")
            page.click("#send")
            page.wait_for_function("document.getElementById('answer') && "
                                   "document.getElementById('answer').textContent.length >= 200", timeout=15_000)
            stream_id = page.evaluate("JSON.parse(sessionStorage.getItem('holysse:stream')).id")
            holder = store.info(stream_id).holder
            assert holder is not None, "a running stream has a lease holder"
            pid = int(holder.rsplit(":", 2)[1])  # host:pid:random
            assert pid != server.popen.pid  # a worker, not the gunicorn master
            os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
            shown_at_kill = len(page.text_content("#answer") or "")

            def taken_over() -> bool:
                now = store.info(stream_id).holder
                return now is not None and now != holder

            wait_until(taken_over, TAKEOVER_BOUND + 5, "another worker to take the stream over")
            took = time.monotonic() - killed
            page.wait_for_function("document.getElementById('status').dataset.status === 'done'", timeout=30_000)
            text = page.text_content("#answer")
        finally:
            context.close()
            store.close()
            server.stop()
        assert took <= TAKEOVER_BOUND, f"takeover took {took:.1f} s"
        assert shown_at_kill < len(fake.answers[0])  # killed mid-answer
        full = fake.answers[-1]
        assert text == full  # the page shows the upstream's full answer, once
        assert all(answer == full for answer in fake.answers)
        if upstream == "cursor":
            assert len(fake.answers) == 1  # one generation: resumed by Last-Event-ID
            assert all(request.header("Last-Event-ID") for request in fake.requests[1:])
        else:
            assert len(fake.answers) <= 2  # the replay re-sent the prefix, which was dropped
