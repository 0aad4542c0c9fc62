"""The chat-completions dialect fed server-shaped events (pure data, no sockets)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from holysse import Finished, ProtocolError, ProviderError, TextDelta, ThinkingDelta, ToolCallDelta, Usage
from holysse.dialects.openai_chat import ChatParser
from holysse.wire import ServerSentEvent


def sse(obj: Any, *, event: str = "message", id: str = "") -> ServerSentEvent:
    return ServerSentEvent(event, obj if isinstance(obj, str) else json.dumps(obj), id)


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


def feed_all(parser: ChatParser, items: list[ServerSentEvent]) -> list[Any]:
    return [event for item in items for event in parser.feed(item)]


def test_text_reasoning_finish_usage_and_done() -> None:
    parser = ChatParser()
    events = feed_all(parser, [
        sse(chunk({"role": "assistant", "content": ""})),
        sse(chunk({"reasoning_content": "think"})),
        sse(chunk({"content": "Hel"})),
        sse(chunk({"content": "lo"}, "stop")),
        sse({"id": "chatcmpl-1", "choices": [], "usage": {
            "prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11,
            "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 1}}}),
        sse("[DONE]"),
    ])
    assert events == [ThinkingDelta("think"), TextDelta("Hel"), TextDelta("lo"), Finished("stop", "stop"),
                      Usage(9, 2, 11, 4, 1)]
    assert parser.done and parser.started and parser.cursor is None


def test_refusals_are_the_answer_and_legacy_function_calls_are_tool_call_zero() -> None:
    refused = feed_all(ChatParser(), [
        sse(chunk({"role": "assistant", "content": None, "refusal": ""})),
        sse(chunk({"content": None, "refusal": "I can't "})),
        sse(chunk({"refusal": "help with that."}, "stop")),
    ])
    assert refused == [TextDelta("I can't "), TextDelta("help with that."), Finished("stop", "stop")]
    legacy = feed_all(ChatParser(), [
        sse(chunk({"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": ""}})),
        sse(chunk({"function_call": {"arguments": "{\"x\""}})),
        sse(chunk({"function_call": {"arguments": ":1}"}}, "function_call")),
    ])
    assert legacy == [ToolCallDelta(0, None, "f", ""), ToolCallDelta(0, None, None, '{"x"'),
                      ToolCallDelta(0, None, None, ":1}"), Finished("tool_calls", "function_call")]


def test_tool_call_arguments_sent_as_an_object_become_json_text() -> None:
    events = feed_all(ChatParser(), [
        sse(chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": {"q": "é", "n": 1}}}]})),
    ])
    assert events == [ToolCallDelta(0, "c", "f", '{"q":"é","n":1}')]


def test_content_as_a_list_of_parts_mistral_reasoning_shape() -> None:
    events = feed_all(ChatParser(), [
        sse(chunk({"role": "assistant", "content": ""})),
        sse(chunk({"content": [{"type": "thinking", "thinking": [{"type": "text", "text": "Let me "}]}]})),
        sse(chunk({"content": [{"type": "thinking", "thinking": [{"type": "text", "text": "think."}]}]})),
        sse(chunk({"content": [{"type": "text", "text": "The answer"}]})),
        sse(chunk({"content": [{"type": "reference", "reference_ids": [1]}, {"type": "text", "text": " is 4."}]})),
        sse(chunk({"content": " Done."}, "stop")),
    ])
    assert events == [ThinkingDelta("Let me "), ThinkingDelta("think."), TextDelta("The answer"),
                      TextDelta(" is 4."), TextDelta(" Done."), Finished("stop", "stop")]


def test_tool_calls_by_index_and_without_index() -> None:
    indexed = feed_all(ChatParser(), [
        sse(chunk({"tool_calls": [{"index": 0, "id": "a", "type": "function",
                                   "function": {"name": "f", "arguments": ""}}]})),
        sse(chunk({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{}"}}]})),
        sse(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"x\":1}"}}]}, "tool_calls")),
    ])
    assert indexed == [ToolCallDelta(0, "a", "f", ""), ToolCallDelta(1, "b", "g", "{}"),
                       ToolCallDelta(0, None, None, '{"x":1}'), Finished("tool_calls", "tool_calls")]
    # Some servers leave out "index": a new id opens the next call.
    unindexed = feed_all(ChatParser(), [
        sse(chunk({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{\"q\""}}]})),
        sse(chunk({"tool_calls": [{"function": {"arguments": ":1}"}}]})),
        sse(chunk({"tool_calls": [{"id": "b", "function": {"name": "g", "arguments": "{}"}}]})),
        sse(chunk({"tool_calls": [{"id": "b", "function": {"arguments": ""}}]})),
    ])
    assert [e.index for e in unindexed] == [0, 0, 1, 1]


def test_other_choices_are_ignored_and_ids_move_the_cursor() -> None:
    parser = ChatParser()
    two = {"choices": [{"index": 1, "delta": {"content": "B"}}, {"index": 0, "delta": {"content": "A"}}]}
    assert parser.feed(sse(two, id="7")) == [TextDelta("A")] and parser.cursor == "7"
    assert parser.feed(sse(chunk({"content": None}))) == [] and parser.cursor == "7"


@pytest.mark.parametrize(
    ("item", "retryable"),
    [
        (sse({"error": {"message": "overloaded", "type": "server_error"}}), True),
        (sse({"error": {"message": "bad", "type": "invalid_request_error"}}), False),
        (sse({"message": "upstream failed", "type": "api_error"}, event="error"), True),
        # HTTP statuses in "code" (OpenRouter, llama.cpp, vLLM): retried as the status would be
        (sse({"error": {"message": "Provider returned error", "code": 502}}), True),
        (sse({"error": {"message": "Rate limited upstream", "code": "429"}}), True),
        (sse({"error": {"object": "error", "message": "too long", "type": "BadRequestError", "code": 400}}), False),
        (sse({"error": {"message": "odd", "code": True}}), False),
    ],
)
def test_error_objects_in_the_stream(item: ServerSentEvent, retryable: bool) -> None:
    with pytest.raises(ProviderError) as info:
        ChatParser().feed(item)
    assert info.value.retryable is retryable


@pytest.mark.parametrize(
    ("data", "retryable"),
    [('{"choices": [{"delta": {"content": "x"', True), ("[1, 2]", True),
     ('{"choices": {"0": {}}}', False), ('{"choices": [{"delta": "text"}]}', False)],
)
def test_broken_events_are_protocol_errors(data: str, retryable: bool) -> None:
    with pytest.raises(ProtocolError) as info:
        ChatParser().feed(sse(data))
    assert getattr(info.value, "retryable", False) is retryable
