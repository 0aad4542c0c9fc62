"""Servers that ignore ``stream: true`` and answer with one whole JSON
answer (``chat.completion``, an Anthropic ``message``, a Responses
``response``): the client delivers it as the same typed events a stream
would give, and after a cut mid-stream such an answer is checked and cut
like any other resumed connection (nothing repeated, nothing lost).

The shapes follow the providers' public documentation of non-streamed
responses; ids, numbers and texts are our own.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import holysse
from holysse import Finished, TextDelta, ThinkingDelta, ToolCallDelta, Usage
from holysse.testing import FakeServer, Fault

from .conftest import CHAT, Sleeps, make_client
from .recorded import RecordedServer, Reply

KEY = "hs_" + "w" * 32

CHAT_COMPLETION = {
    "id": "chatcmpl-9", "object": "chat.completion", "created": 1, "model": "gpt-4.1",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "Let me look that up.", "refusal": None,
        "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}},
            {"id": "call_b", "type": "function", "function": {"name": "time", "arguments": "{}"}},
        ]}}],
    "usage": {"prompt_tokens": 21, "completion_tokens": 17, "total_tokens": 38},
}

ANTHROPIC_MESSAGE = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
    "content": [
        {"type": "thinking", "thinking": "Two tools are needed.", "signature": "c2ln"},
        {"type": "text", "text": "Checking Oslo."},
        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo", "units": "metric"}},
    ],
    "stop_reason": "tool_use", "stop_sequence": None,
    "usage": {"input_tokens": 40, "output_tokens": 25, "cache_read_input_tokens": 8},
}

RESPONSE = {
    "id": "resp_1", "object": "response", "status": "completed", "model": "gpt-4.1",
    "output": [
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Look it up."}]},
        {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "Checking Oslo.", "annotations": []}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "weather",
         "arguments": "{\"city\":\"Oslo\"}", "status": "completed"},
    ],
    "usage": {"input_tokens": 30, "output_tokens": 12, "total_tokens": 42,
              "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 4}},
}

CASES: dict[str, tuple[dict[str, Any], list[Any]]] = {
    "openai-chat": (CHAT_COMPLETION, [
        TextDelta("Let me look that up."),
        ToolCallDelta(0, "call_a", "weather", '{"city":"Oslo"}'), ToolCallDelta(1, "call_b", "time", "{}"),
        Finished("tool_calls", "tool_calls"), Usage(21, 17, 38)]),
    "anthropic": (ANTHROPIC_MESSAGE, [
        ThinkingDelta("Two tools are needed."), TextDelta("Checking Oslo."),
        ToolCallDelta(0, "toolu_1", "weather", ""), ToolCallDelta(0, None, None, '{"city":"Oslo","units":"metric"}'),
        Finished("tool_calls", "tool_use"), Usage(48, 25, 73, 8)]),  # the cache read counts in the input
    "openai-responses": (RESPONSE, [
        ThinkingDelta("Look it up."), TextDelta("Checking Oslo."),
        ToolCallDelta(0, "call_1", "weather", '{"city":"Oslo"}'),
        Finished("tool_calls", "completed"), Usage(30, 12, 42, 0, 4)]),
}


def json_reply(obj: Any, content_type: str = "application/json") -> Reply:
    return Reply(json.dumps(obj).encode(), content_type=content_type)


@pytest.mark.parametrize("dialect", list(CASES))
def test_a_whole_json_answer_gives_the_events_a_stream_would(dialect: str, caplog: pytest.LogCaptureFixture) -> None:
    whole, expected = CASES[dialect]
    with RecordedServer([json_reply(whole, "application/json; charset=utf-8")]) as srv:
        client = holysse.Client(api_key=KEY, base_url=srv.url, dialect=dialect)
        with caplog.at_level("WARNING", logger="holysse"):
            stream = client.stream(model="m", messages=[{"role": "user", "content": "Weather in Oslo?"}])
            events = list(stream)
    assert events == expected
    assert stream.text == "".join(e.text for e in expected) and stream.finish_reason == expected[-2].reason
    assert [(call.index, json.loads(call.arguments)) for call in stream.tool_calls] == [
        (e.index, json.loads(e.arguments)) for e in expected if isinstance(e, ToolCallDelta) and e.arguments]
    assert len(srv.requests) == 1 and srv.requests[0].body["stream"] is True
    assert any("ignores stream: true" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("whole", [
    {"object": "response", "status": "queued", "output": []},  # a background response, not an answer yet
    {"object": "list", "data": []},
    {"choices": [{"index": 0, "text": "a legacy completion"}]},
    [1, 2, 3],
])
def test_json_that_is_not_a_whole_answer_is_reported(whole: Any) -> None:
    with RecordedServer([json_reply(whole)]) as srv:
        client = holysse.Client(api_key=KEY, base_url=srv.url, dialect="openai-responses")
        with pytest.raises(holysse.ProtocolError, match="not text/event-stream") as info:
            list(client.stream(model="m", messages=[{"role": "user", "content": "hi"}]))
    assert info.value.status_code == 200 and json.dumps(whole)[:20] in info.value.body_excerpt


def chat_completion(text: str) -> bytes:
    return json.dumps({"object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}).encode()


@pytest.mark.parametrize("strategy", ["cursor", "replay", "prefill"])
def test_a_whole_answer_after_a_cut_repeats_nothing(server: FakeServer, sleeps: Sleeps, strategy: str) -> None:
    """The first connection is cut mid-answer; the next one gets the whole
    answer as JSON: for a prefill its continuation (the server honoured the
    prefilled text), else the answer from its start."""
    full = server.expected_text(CHAT)
    offsets = server.event_offsets(CHAT)
    cut = Fault.rst(offsets[len(offsets) // 2] + 4)

    def plan(request: Any) -> Fault | None:
        if len(server.requests) == 1:
            return cut
        last = request.body["messages"][-1]
        rest = full[len(last["content"]):] if last["role"] == "assistant" else full
        return Fault.content_type("application/json", body=chat_completion(rest))

    server.set_faults(plan)
    stream = make_client(server, sleeps, resume=strategy, provider="vllm").stream(**CHAT)
    events = list(stream)
    resumed = next(i for i, e in enumerate(events) if isinstance(e, holysse.Resumed))
    before = "".join(e.text for e in events[:resumed])
    assert "".join(e.text for e in events) == stream.text == full and stream.finish_reason == "stop"
    assert 0 < len(before) < len(full)
    assert list(stream.metrics.reconnects) == [strategy] and len(server.requests) == 2
    assert stream.metrics.resent_chars == (0 if strategy == "prefill" else len(before))


def test_a_prefill_ignored_by_a_whole_answer_is_caught(server: FakeServer, sleeps: Sleeps) -> None:
    """The resumed server ignores the prefill and sends the whole answer
    again: the prefill guard turns it into a verified replay."""
    full = server.expected_text(CHAT)
    offsets = server.event_offsets(CHAT)
    server.set_faults([Fault.rst(offsets[20] + 4),
                       Fault.content_type("application/json", body=chat_completion(full))])
    stream = make_client(server, sleeps, resume="prefill", provider="vllm").stream(**CHAT)
    text = "".join(e.text for e in stream)
    assert text == stream.text == full
    delivered_before_the_cut = len(server.requests[1].body["messages"][-1]["content"])
    assert 0 < delivered_before_the_cut < len(full) and stream.metrics.resent_chars == delivered_before_the_cut
