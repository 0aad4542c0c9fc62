"""openai-style call options on the wire (``extra_body``, ``extra_headers``,
``extra_query``, ``timeout``), the pool size for threads, and a short
``repr(stream.metrics)``."""

from __future__ import annotations

import logging
import threading
import warnings
from typing import Any

import pytest

import holysse
from holysse.testing import FakeServer, Fault

from .conftest import CHAT, Sleeps, make_client


def test_extra_body_headers_and_query_are_on_the_wire(server: FakeServer) -> None:
    client = make_client(server, headers={"X-Team": "a", "X-Kept": "k"})
    stream = client.stream(**CHAT, extra_body={"top_k": 5, "seed": 9, "stream_options": {"include_usage": False}},
                           extra_headers={"X-Team": "b", "X-Call": "1"}, extra_query={"api-version": "2024-10-21"})
    assert stream.final().text
    sent = server.requests[-1]
    assert sent.body["top_k"] == 5 and "extra_body" not in sent.body  # merged at the top level, as openai does
    assert sent.body["seed"] == 9 and sent.body["stream_options"] == {"include_usage": False}  # and wins
    assert sent.header("X-Team") == "b" and sent.header("X-Call") == "1" and sent.header("X-Kept") == "k"
    assert sent.query == {"api-version": "2024-10-21"} and sent.path.endswith("/chat/completions")


def test_extra_options_are_kept_by_every_resume(server: FakeServer, sleeps: Sleeps) -> None:
    offsets = server.event_offsets(CHAT)
    server.set_faults([Fault.rst(offsets[10] + 2), Fault.fin(offsets[20] + 1)])
    client = make_client(server, sleeps, resume="prefill", provider="vllm")
    stream = client.stream(**CHAT, extra_body={"top_k": 5}, extra_headers={"X-Call": "1"}, extra_query={"v": 2})
    assert stream.final().text == server.expected_text(CHAT)
    assert len(server.requests) == 3
    assert all(r.body["top_k"] == 5 and r.header("X-Call") == "1" and r.query == {"v": "2"} for r in server.requests)


def test_extra_query_survives_a_responses_cursor_resume(sleeps: Sleeps) -> None:
    body = {"model": "fake-1", "input": "Tell me about streams.", "seed": 3, "background": True}
    with FakeServer(answer_chars=600) as server:
        offsets = server.event_offsets(body, dialect="openai-responses")
        server.set_faults([Fault.rst(offsets[12] + 2)])
        client = make_client(server, sleeps, dialect="openai-responses")
        stream = client.stream(**body, extra_query={"api-version": "x"})
        assert stream.final().text == server.expected_text(body, dialect="openai-responses")
        assert stream.metrics.reconnects == {"cursor": 1}
        resume = server.requests[-1]
        assert resume.method == "GET" and resume.query["api-version"] == "x" and resume.query["stream"] == "true"


def test_a_per_call_timeout_replaces_the_clients(server: FakeServer) -> None:
    offsets = server.event_offsets(CHAT)
    # The connection goes silent for 3 s, then closes. The client's 30 s read timeout would see a
    # cut (StreamInterrupted); the call's 0.2 s sees a stall first (ReadTimeout).
    server.set_faults([Fault.stall(offsets[5] + 2, seconds=3)])
    client = make_client(server, retry=False, timeout=holysse.Timeout(connect=2, read=30))
    with pytest.raises(holysse.HolySSEError) as info:
        list(client.stream(**CHAT, timeout=(2, 0.2)))
    assert isinstance(info.value, holysse.ReadTimeout) or isinstance(info.value.__cause__, holysse.ReadTimeout)
    assert info.value.partial


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"extra_body": ["top_k", 5]}, "extra_body must be a dict"),
        ({"extra_body": {"stream": False}}, "always true"),
        ({"extra_body": {"when": object()}}, "cannot be sent as JSON"),
        ({"extra_query": {"api_key": "sk-x"}}, "credential"),
        ({"extra_query": {"v": [1]}}, "extra_query takes"),
    ],
)
def test_bad_extra_options_are_usage_errors(server: FakeServer, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(holysse.UsageError, match=match):
        make_client(server).stream(**CHAT, **kwargs)
    assert server.requests == []


class _PoolWarnings(logging.Handler):
    """Collects what urllib3 logs at WARNING and above (it logs "Connection
    pool is full" through logging, not through warnings.warn)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.mark.parametrize("max_connections", [None, pytest.param(32, marks=pytest.mark.xfail(
    strict=True, reason="a pool smaller than the threads discards connections, with a warning"))])
def test_64_threads_on_one_default_client_get_no_pool_warning(max_connections: int | None) -> None:
    threads_n = 64
    handler = _PoolWarnings()
    urllib3_logger = logging.getLogger("urllib3")
    urllib3_logger.addHandler(handler)
    barrier = threading.Barrier(threads_n)
    bodies = [dict(CHAT, seed=i) for i in range(threads_n)]
    texts: dict[int, str] = {}
    errors: list[BaseException] = []
    options = {} if max_connections is None else {"max_connections": max_connections}
    try:
        with FakeServer(answer_chars=200) as server, warnings.catch_warnings():
            warnings.simplefilter("error")
            client = holysse.Client(api_key="hs_" + "p" * 32, base_url=server.url, **options)

            def consume(i: int) -> None:
                try:
                    with client.stream(**bodies[i]) as stream:
                        parts = []
                        for event in stream:
                            if not parts and event.text:
                                barrier.wait(30)  # all 64 connections are open at once
                            parts.append(event.text)
                    texts[i] = "".join(parts)
                except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                    errors.append(exc)

            threads = [threading.Thread(target=consume, args=(i,)) for i in range(threads_n)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert not any(thread.is_alive() for thread in threads)
            client.close()
            expected = {i: server.expected_text(bodies[i]) for i in range(threads_n)}
    finally:
        urllib3_logger.removeHandler(handler)
    assert errors == [] and texts == expected
    assert handler.messages == []


def test_metrics_repr_is_short_and_its_mutators_are_private(sleeps: Sleeps) -> None:
    with FakeServer(answer_chars=20_000) as big:
        big.set_faults([Fault.rst(big.event_offsets(CHAT)[30] + 1)])
        stream = make_client(big, sleeps).stream(**CHAT)
        stream.final()
    assert stream.metrics.total_reconnects == 1
    assert len(stream.metrics.gaps) > 1000
    text = repr(stream.metrics)
    assert len(text) <= 400 and text.startswith("StreamMetrics(") and "gaps=" in text
    public = [name for name in dir(stream.metrics) if not name.startswith("_")]
    assert not {"record_text", "record_usage", "begin_leg", "leg_restarted", "settle_cost"} & set(public)
