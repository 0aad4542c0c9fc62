"""Resources are released: abandoned streams leave no socket or thread behind."""

from __future__ import annotations

import os
import threading

import holysse
from holysse.testing import FakeServer

from .conftest import CHAT


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def settle(predicate: "callable[[], bool]", rounds: int = 200) -> bool:  # type: ignore[valid-type]
    """Wait (bounded, on an Event) until the server's handler threads are gone."""
    pause = threading.Event()
    for _ in range(rounds):
        if predicate():
            return True
        pause.wait(0.01)
    return predicate()


def test_a_thousand_abandoned_streams_leak_nothing() -> None:
    with FakeServer(answer_chars=400) as server:
        client = holysse.Client(api_key="hs_leak", base_url=server.url, timeout=(2, 5))
        # Warm up the pool and the server so the baseline counts its steady state.
        for event in client.stream(**CHAT):
            break
        assert settle(lambda: threading.active_count() <= 3)
        fds, threads = open_fds(), threading.active_count()
        for _ in range(1000):
            stream = client.stream(**CHAT)
            for event in stream:
                if event.text:
                    break
            assert stream.done
        client.close()
        assert settle(lambda: threading.active_count() <= threads), threading.enumerate()
        assert settle(lambda: open_fds() <= fds), (open_fds(), fds)
    assert len(server.requests) == 1001
