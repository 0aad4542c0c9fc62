"""Portable results across dialects (finish reasons, usage) and the metadata
of a successful stream (response, id, model)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import holysse
from holysse import Finished, Usage
from holysse.dialects import get_dialect
from holysse.dialects.base import Endpoint
from holysse.events import PORTABLE_REASONS, portable_reason
from holysse.testing import FakeServer, Fault

from .conftest import Sleeps, make_client
from .recorded import RecordedServer, Reply
from .scripted import ANSWER, chat_events

DIALECTS = ("openai-chat", "anthropic", "openai-responses")
#: What each dialect's server says for the three endings.
RAW = {
    "openai-chat": {"stop": "stop", "length": "length", "tool_calls": "tool_calls"},
    "anthropic": {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"},
    "openai-responses": {"stop": "completed", "length": "max_output_tokens", "tool_calls": "completed"},
}
TOOLS = {
    "openai-chat": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    "anthropic": [{"name": "get_weather", "input_schema": {"type": "object"}}],
    "openai-responses": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
}
ID_PREFIX = {"openai-chat": "chatcmpl-", "anthropic": "msg_", "openai-responses": "resp_"}


def body_for(dialect: str, ending: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "fake-1", "messages": [{"role": "user", "content": "Weather?"}], "seed": 4}
    body["max_tokens"] = 12 if ending == "length" else 4096
    if ending == "tool_calls":
        body["tools"] = TOOLS[dialect]
    return body


@pytest.mark.parametrize("ending", ["stop", "length", "tool_calls"])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_dialect_ends_with_the_same_portable_reason_and_keeps_the_raw_one(
    server: FakeServer, sleeps: Sleeps, dialect: str, ending: str
) -> None:
    body = body_for(dialect, ending)
    sent = get_dialect(dialect).build_request(Endpoint(server.url), body).json
    offsets = server.event_offsets(sent, dialect=dialect)
    server.set_faults([Fault.rst(offsets[3] + 2)])  # and a resume on the way
    client = make_client(server, sleeps, dialect=dialect)
    with client.stream(**body) as stream:
        finished = [event for event in stream if isinstance(event, Finished)]
    assert finished == [Finished(ending, RAW[dialect][ending])]
    assert stream.finish_reason == ending and stream.raw_finish_reason == RAW[dialect][ending]
    assert stream.accumulator.snapshot().raw_finish_reason == RAW[dialect][ending]
    assert (len(stream.tool_calls) > 0) == (ending == "tool_calls")
    assert stream.metrics.total_reconnects == 1
    # Usage has the same meaning everywhere, and the provider's own object is kept.
    usage = stream.usage
    assert isinstance(usage, Usage) and usage.input_tokens and usage.output_tokens
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert isinstance(usage.raw, dict) and usage.output_tokens in usage.raw.values()
    # Metadata of the connection that finished the answer.
    assert stream.id is not None and stream.id.startswith(ID_PREFIX[dialect])
    assert stream.model == "fake-1"
    response = stream.response
    assert response is not None and response.status_code == 200
    assert response.request_id is not None and response.request_id == response.headers["X-Request-Id"]
    assert response.url == server.url + {"openai-chat": "/chat/completions", "anthropic": "/messages",
                                         "openai-responses": "/responses"}[dialect]


@pytest.mark.parametrize(
    ("raw", "portable"),
    [("stop", "stop"), ("end_turn", "stop"), ("stop_sequence", "stop"), ("eos", "stop"), ("length", "length"),
     ("max_tokens", "length"), ("max_output_tokens", "length"), ("model_context_window_exceeded", "length"),
     ("tool_calls", "tool_calls"), ("tool_use", "tool_calls"), ("function_call", "tool_calls"),
     ("content_filter", "content_filter"), ("SAFETY", "content_filter"), ("refusal", "refusal"),
     ("pause_turn", "other"), ("abort", "other"), (None, None)],
)
def test_portable_reasons(raw: str | None, portable: str | None) -> None:
    assert portable_reason(raw) == portable and Finished.of(raw) == Finished(portable, raw)
    assert portable is None or portable in PORTABLE_REASONS


def test_anthropic_usage_counts_cache_reads_and_writes_in_the_input() -> None:
    from holysse.dialects.anthropic import AnthropicParser
    from holysse.wire import ServerSentEvent

    parser = AnthropicParser()
    start = {"type": "message_start", "message": {"id": "msg_1", "model": "claude-x", "usage": {
        "input_tokens": 10, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 5, "output_tokens": 1}}}
    end = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 7}}
    events = [e for obj in (start, end) for e in parser.feed(ServerSentEvent(data=json.dumps(obj)))]
    assert events == [Usage(115, 1, 116, 100), Finished("stop", "end_turn"), Usage(115, 7, 122, 100)]
    last = events[-1]
    assert isinstance(last, Usage) and last.raw == {**start["message"]["usage"], "output_tokens": 7}
    assert (parser.response_id, parser.model) == ("msg_1", "claude-x")


def test_response_is_the_connection_that_finished_the_answer(sleeps: Sleeps) -> None:
    events = chat_events(ids=None)
    cut = b"".join(events[:6])  # no [DONE]: a cut
    replies = [Reply(cut, headers=(("x-request-id", "req_first"),)),
               Reply(b"".join(events), headers=(("request-id", "req_second"), ("X-Extra", "1")))]
    with RecordedServer(replies) as srv:
        client = holysse.Client(api_key="sk-" + "r" * 32, base_url=srv.url, sleep=sleeps, resume="replay")
        stream = client.stream(model="m", messages=[], seed=1)
        assert stream.response is None
        assert stream.final().text == ANSWER
    response = stream.response
    assert response is not None and response.request_id == "req_second" and response.headers["x-extra"] == "1"
    assert "req_second" in repr(response) and "X-Extra" not in repr(response)  # headers stay out of the repr
