"""Shared fixtures: fake servers on 127.0.0.1, a client that never sleeps."""

from __future__ import annotations

import os
import threading
from typing import Any, Iterator

import pytest

import holysse
from holysse.testing import FakeServer


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _skip_unless(config, items, "slow", config.getoption("--runslow") or os.environ.get("HOLYSSE_SLOW") == "1",
                 "slow: run with --runslow or HOLYSSE_SLOW=1")


def _skip_unless(config: pytest.Config, items: list[pytest.Item], marker: str, wanted: object, reason: str) -> None:
    if wanted:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if marker in item.keywords:
            item.add_marker(skip)


class Sleeps(list):  # type: ignore[type-arg]
    """An injected sleep: records the delays instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(answer_chars=600) as srv:
        yield srv


def make_client(server: FakeServer, sleeps: Sleeps | None = None, **kwargs: Any) -> holysse.Client:
    """A client for ``server`` with fast timeouts and an injected sleep."""
    kwargs.setdefault("timeout", holysse.Timeout(connect=2, read=0.5))
    kwargs.setdefault("retry", holysse.RetryPolicy(max_attempts=8, backoff_initial=0.01, backoff_max=0.05))
    return holysse.Client(api_key="hs_" + "k" * 32, base_url=server.url, sleep=sleeps, **kwargs)


CHAT = {"model": "fake-1", "messages": [{"role": "user", "content": "Tell me about streams."}], "seed": 3}


def close_while_blocked(stream: holysse.Stream) -> BaseException:
    """Read ``stream`` in a thread until text arrived and the read blocks,
    close it from this thread, and return what the reader raised. The reader
    must end within 1 s of ``close()``."""
    got_text = threading.Event()
    raised: list[BaseException] = []

    def consume() -> None:
        try:
            for event in stream:
                if event.text:
                    got_text.set()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            raised.append(exc)

    thread = threading.Thread(target=consume)
    thread.start()
    assert got_text.wait(5)
    stream.close()
    thread.join(1.0)
    assert not thread.is_alive(), "close() did not end the blocked read within 1 s"
    assert len(raised) == 1, raised
    return raised[0]
