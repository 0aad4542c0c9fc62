"""``holysse.testing.MemoryTransport``: scripted connections without sockets.

Each fault it plays must reach the client as the real transport reports it
(a reset as ``StreamInterrupted``, a stall as ``ReadTimeout``, a status with
its headers), and it must record what the client sent."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

import holysse
from holysse import Reconnecting, Resumed
from holysse.testing import MemoryTransport, Reply
from holysse.transport import HTTPRequest

from .conftest import Sleeps
from .scripted import ANSWER, chat_events

BODY: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "seed": 1}
EVENTS = chat_events()  # id: s-0 (role), s-1.. one per piece, the finish, [DONE]
WHOLE = b"".join(EVENTS)


def client_for(transport: MemoryTransport, sleeps: Sleeps | None = None, **kwargs: Any) -> holysse.Client:
    kwargs.setdefault("retry", holysse.RetryPolicy(max_attempts=4, backoff_initial=0.01))
    return holysse.Client(api_key="hs_memory", base_url="https://llm.test/v1", transport=transport,
                          sleep=Sleeps() if sleeps is None else sleeps, **kwargs)


def read(stream: holysse.Stream) -> tuple[str, list[holysse.Event]]:
    events = list(stream)
    return "".join(e.text for e in events if isinstance(e, holysse.TextDelta)), events


@pytest.mark.parametrize("chunking", ["one event per chunk", "one byte per chunk", "one chunk"])
def test_a_whole_answer_in_any_chunks(chunking: str) -> None:
    body: Any = {"one event per chunk": EVENTS, "one byte per chunk": [WHOLE[i:i + 1] for i in range(len(WHOLE))],
                 "one chunk": WHOLE}[chunking]
    transport = MemoryTransport([Reply(body)])
    stream = client_for(transport).stream(**BODY)
    received, _ = read(stream)
    assert received == stream.text == ANSWER and stream.finish_reason == "stop"
    request = transport.requests[0]
    assert request.method == "POST" and request.url == "https://llm.test/v1/chat/completions"
    assert request.json["messages"] == BODY["messages"] and request.json["stream"] is True
    assert transport.header(0, "authorization") == "Bearer hs_memory"
    assert transport.open_responses == 0


def cut_at(event: int, inside: int = 5) -> int:
    """A body offset ``inside`` bytes into event number ``event``."""
    return len(b"".join(EVENTS[:event])) + inside


@pytest.mark.parametrize(("end", "error"), [("fin", "never came"), ("rst", "connection reset by the peer"),
                                            ("stall", "stalled: no byte within the read timeout")])
def test_a_cut_after_n_bytes_is_reported_as_the_real_transport_does(end: str, error: str) -> None:
    transport = MemoryTransport([Reply(EVENTS, end=end, after=cut_at(10)), Reply(EVENTS[10:])])
    stream = client_for(transport).stream(**BODY)
    received, events = read(stream)
    assert received == stream.text == ANSWER
    reconnects = [e for e in events if isinstance(e, Reconnecting)]
    assert len(reconnects) == 1 and error in reconnects[0].reason
    assert [e.strategy for e in events if isinstance(e, Resumed)] == ["cursor"]
    assert transport.header(1, "Last-Event-ID") == "s-9" and transport.header(0, "Last-Event-ID") is None
    assert transport.open_responses == 0


def test_the_errors_are_the_holysse_ones() -> None:
    for end, kind in (("rst", holysse.StreamInterrupted), ("stall", holysse.ReadTimeout)):
        response = MemoryTransport([Reply([b"abc", b"def"], end=end, after=4)]).open(
            HTTPRequest("GET", "http://x/"), holysse.Timeout())
        chunks = response.iter_bytes()
        assert [next(chunks), next(chunks)] == [b"abc", b"d"]
        with pytest.raises(kind) as info:
            next(chunks)
        assert info.value.retryable
    with pytest.raises(holysse.ReadTimeout, match="no response headers"):
        MemoryTransport([Reply.stall_before_head()]).open(HTTPRequest("GET", "http://x/"), holysse.Timeout())


def test_a_status_with_retry_after_then_the_answer() -> None:
    sleeps = Sleeps()
    error = b'{"error": {"message": "slow down", "type": "rate_limit_exceeded"}}'
    transport = MemoryTransport([Reply.with_status(429, error, headers={"Retry-After": "7"}),
                                 Reply.with_status(503, headers={"retry-after": "3"}), Reply(EVENTS)])
    stream = client_for(transport, sleeps).stream(**BODY)
    assert read(stream)[0] == ANSWER
    assert len(sleeps) == 2 and sleeps[0] >= 7 and sleeps[1] >= 3
    assert len(transport.requests) == 3


def test_a_refusing_status_fails_at_once_with_its_message() -> None:
    sleeps = Sleeps()
    body = b'{"error": {"message": "bad key", "type": "invalid_request_error"}}'
    transport = MemoryTransport([Reply.with_status(401, body, headers={"X-Request-Id": "req-1"}), Reply(EVENTS)])
    with pytest.raises(holysse.AuthenticationError) as info:
        list(client_for(transport, sleeps).stream(**BODY))
    assert info.value.status_code == 401 and "bad key" in str(info.value) and info.value.request_id == "req-1"
    assert sleeps == [] and len(transport.requests) == 1 and transport.open_responses == 0


def test_an_exception_at_open_and_a_stall_before_the_head_are_retried() -> None:
    transport = MemoryTransport([Reply.fails(holysse.ConnectError("refused")), Reply.stall_before_head(),
                                 Reply(EVENTS)])
    stream = client_for(transport).stream(**BODY)
    received, events = read(stream)
    assert received == ANSWER
    reasons = [e.reason for e in events if isinstance(e, Reconnecting)]
    assert reasons[0] == "refused" and "no response headers" in reasons[1]


def test_a_function_script_answers_what_it_is_sent() -> None:
    """A server that honours ``Last-Event-ID``: the answer continues after it."""

    def server(request: HTTPRequest, number: int) -> Reply:
        last = request.headers.get("Last-Event-ID")
        start = 0 if last is None else int(last.rsplit("-", 1)[1]) + 1
        return Reply(EVENTS[start:], end="rst", after=cut_at(start + 3) - cut_at(start, 0))

    transport = MemoryTransport(server)
    stream = client_for(transport, retry=holysse.RetryPolicy(max_attempts=3)).stream(**BODY)
    assert read(stream)[0] == ANSWER
    assert len(transport.requests) == len(EVENTS) // 3 + 1
    assert stream.metrics.wasted_output_tokens == 0


def test_the_prefill_sent_is_recorded() -> None:
    plain = chat_events(ids=None)
    transport = MemoryTransport([Reply(plain, end="rst", after=len(b"".join(plain[:6]))),
                                 Reply(chat_events(ids=None)[6:])])
    stream = client_for(transport, provider="vllm").stream(**BODY)
    assert read(stream)[0] == ANSWER
    prefill = transport.requests[1].json
    assert prefill["messages"][-1] == {"role": "assistant", "content": ANSWER[:35]}
    assert prefill["continue_final_message"] is True and transport.header(1, "Last-Event-ID") is None


def test_an_endless_body_is_read_lazily() -> None:
    pings = itertools.repeat(b": keep-alive\n\n")
    transport = MemoryTransport([Reply(itertools.chain(EVENTS[:5], pings), end="rst", after=cut_at(5) + 14 * 1000),
                                 Reply(EVENTS[5:])])
    stream = client_for(transport).stream(**BODY)
    assert read(stream)[0] == ANSWER


def test_a_connection_past_the_script_fails_clearly() -> None:
    transport = MemoryTransport([Reply(EVENTS, end="fin", after=cut_at(3))])
    with pytest.raises(holysse.ConnectError, match="no reply for connection 2") as info:
        list(client_for(transport).stream(**BODY))
    assert not info.value.retryable and info.value.partial == ANSWER[:14]
    again = MemoryTransport([], then=Reply(EVENTS))
    assert client_for(again).stream(**BODY).final().text == ANSWER


def test_headers_are_case_insensitive_and_a_bad_reply_is_refused() -> None:
    response = MemoryTransport([Reply(b"", headers={"Content-Type": "text/plain", "X-A": "1"})]).open(
        HTTPRequest("GET", "http://x/"), holysse.Timeout())
    assert response.headers["content-type"] == "text/plain" and "x-a" in response.headers
    assert dict(response.headers) == {"Content-Type": "text/plain", "X-A": "1"}
    with pytest.raises(ValueError, match="fin, rst, stall"):
        Reply(end="close")
