r"""Recorded-shape streams of each provider, replayed over a real socket.

The streams follow the shapes in the providers' public documentation
(Anthropic "Streaming Messages" with extended thinking and tool use, OpenAI
chat completions streaming with tool calls and ``include_usage``, OpenAI
Responses streaming events with function calls); ids, numbers and texts are
our own. Every typed event the client yields is checked, in order.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

import holysse
from holysse import Finished, Reconnecting, Resumed, TextDelta, ThinkingDelta, ToolCallDelta, Usage

from .recorded import RecordedServer

ANTHROPIC_THINKING_AND_TOOLS = r"""event: message_start
data: {"type":"message_start","message":{"id":"msg_01BKqcjHkD3jcNnRDv5M2m4R","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":2}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user wants the weather"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":" and the time; two tools.\n\n"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Okay, let's check"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":" the weather for San Francisco, CA:"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: ping
data: {"type": "ping"}

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"location\":"}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":" \"San Francisco, CA\", \"unit\": \"fahrenheit\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

event: content_block_start
data: {"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_01JbNmAqTmqLswyqW1CZm6Ed","name":"get_time","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\"timezone\": \"America/Los_Angeles\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":3}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}

"""

ANTHROPIC_OVERLOADED = r"""event: message_start
data: {"type":"message_start","message":{"id":"msg_01A","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":20,"output_tokens":1}}}

event: ping
data: {"type": "ping"}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello, here is "}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"the first part.\n\n"}}

event: error
data: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}

"""

ANTHROPIC_CONTINUATION = r"""event: message_start
data: {"type":"message_start","message":{"id":"msg_01B","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":31,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\n\nAnd the second."}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":6}}

event: message_stop
data: {"type":"message_stop"}

"""

CHAT_HEAD = '"object":"chat.completion.chunk","created":1729000000,"model":"gpt-4.1-2025-04-14","system_fingerprint":"fp_a1b2c3"'
CHAT_TOOL_CALLS = r"""data: {"id":"chatcmpl-AB1",HEAD,"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-AB1",HEAD,"choices":[{"index":0,"delta":{"content":"Checking both."},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-AB1",HEAD,"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_DdmO9pD3xa9XTPNJ32zg2hcA","type":"function","function":{"name":"get_weather","arguments":""}}]},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-AB1",HEAD,"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"location\": \"Paris\"}"}}]},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-AB1",HEAD,"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_ABvQ2Y7sE4zCw3sWqX8pLm0n","type":"function","function":{"name":"get_time","arguments":""}}]},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-AB1",HEAD,"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"tz\":"}}]},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-AB1",HEAD,"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":" \"Europe/Paris\"}"}}]},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-AB1",HEAD,"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}],"usage":null}

data: {"id":"chatcmpl-AB1",HEAD,"choices":[],"usage":{"prompt_tokens":82,"completion_tokens":38,"total_tokens":120,"prompt_tokens_details":{"cached_tokens":64,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}

data: [DONE]

""".replace("HEAD", CHAT_HEAD)

RESPONSE = ('"id":"resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b","object":"response",'
            '"created_at":1741476542,"background":false,"error":null,"model":"gpt-4.1-2025-04-14"')
RESPONSES_FUNCTION_CALLS = r"""event: response.created
data: {"type":"response.created","sequence_number":0,"response":{RESPONSE,"status":"in_progress","incomplete_details":null,"output":[],"usage":null}}

event: response.in_progress
data: {"type":"response.in_progress","sequence_number":1,"response":{RESPONSE,"status":"in_progress","incomplete_details":null,"output":[],"usage":null}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"msg_67ccd2bf","type":"message","status":"in_progress","role":"assistant","content":[]}}

event: response.content_part.added
data: {"type":"response.content_part.added","sequence_number":3,"item_id":"msg_67ccd2bf","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_67ccd2bf","output_index":0,"content_index":0,"delta":"Let me check","logprobs":[]}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":5,"item_id":"msg_67ccd2bf","output_index":0,"content_index":0,"delta":" both.","logprobs":[]}

event: response.output_text.done
data: {"type":"response.output_text.done","sequence_number":6,"item_id":"msg_67ccd2bf","output_index":0,"content_index":0,"text":"Let me check both.","logprobs":[]}

event: response.content_part.done
data: {"type":"response.content_part.done","sequence_number":7,"item_id":"msg_67ccd2bf","output_index":0,"content_index":0,"part":{"type":"output_text","text":"Let me check both.","annotations":[]}}

event: response.output_item.done
data: {"type":"response.output_item.done","sequence_number":8,"output_index":0,"item":{"id":"msg_67ccd2bf","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Let me check both.","annotations":[]}]}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":9,"output_index":1,"item":{"id":"fc_12345xyz","type":"function_call","status":"in_progress","arguments":"","call_id":"call_12345xyz","name":"get_weather"}}

event: response.function_call_arguments.delta
data: {"type":"response.function_call_arguments.delta","sequence_number":10,"item_id":"fc_12345xyz","output_index":1,"delta":"{\"location\":"}

event: response.function_call_arguments.delta
data: {"type":"response.function_call_arguments.delta","sequence_number":11,"item_id":"fc_12345xyz","output_index":1,"delta":"\"Paris, France\"}"}

event: response.function_call_arguments.done
data: {"type":"response.function_call_arguments.done","sequence_number":12,"item_id":"fc_12345xyz","output_index":1,"arguments":"{\"location\":\"Paris, France\"}"}

event: response.output_item.done
data: {"type":"response.output_item.done","sequence_number":13,"output_index":1,"item":{"id":"fc_12345xyz","type":"function_call","status":"completed","arguments":"{\"location\":\"Paris, France\"}","call_id":"call_12345xyz","name":"get_weather"}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":14,"output_index":2,"item":{"id":"fc_67890abc","type":"function_call","status":"in_progress","arguments":"","call_id":"call_67890abc","name":"get_time"}}

event: response.function_call_arguments.delta
data: {"type":"response.function_call_arguments.delta","sequence_number":15,"item_id":"fc_67890abc","output_index":2,"delta":"{\"tz\":\"Europe/Paris\"}"}

event: response.function_call_arguments.done
data: {"type":"response.function_call_arguments.done","sequence_number":16,"item_id":"fc_67890abc","output_index":2,"arguments":"{\"tz\":\"Europe/Paris\"}"}

event: response.output_item.done
data: {"type":"response.output_item.done","sequence_number":17,"output_index":2,"item":{"id":"fc_67890abc","type":"function_call","status":"completed","arguments":"{\"tz\":\"Europe/Paris\"}","call_id":"call_67890abc","name":"get_time"}}

event: response.completed
data: {"type":"response.completed","sequence_number":18,"response":{RESPONSE,"status":"completed","incomplete_details":null,"output":[],"usage":{"input_tokens":291,"input_tokens_details":{"cached_tokens":0},"output_tokens":43,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":334}}}

""".replace("{RESPONSE,", "{" + RESPONSE + ",")


def client_for(server: RecordedServer, dialect: str, sleeps: list[float] | None = None) -> holysse.Client:
    return holysse.Client(
        api_key="sk-ant-recorded-key", base_url=server.url, dialect=dialect, timeout=(2, 2),
        retry=holysse.RetryPolicy(backoff_initial=0.01, jitter=False), sleep=(sleeps if sleeps is not None else []).append,
    )


def read(stream: holysse.Stream) -> list[Any]:
    return list(stream)


def test_anthropic_thinking_tool_use_and_ping() -> None:
    with RecordedServer([ANTHROPIC_THINKING_AND_TOOLS]) as server:
        stream = client_for(server, "anthropic").stream(
            model="claude-sonnet-4-5", max_tokens=1024, messages=[{"role": "user", "content": "Weather?"}])
        events = read(stream)
    assert events == [
        Usage(472, 2, 474, 0),
        ThinkingDelta("The user wants the weather"),
        ThinkingDelta(" and the time; two tools.\n\n"),
        TextDelta("Okay, let's check"),
        TextDelta(" the weather for San Francisco, CA:"),
        ToolCallDelta(0, "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather", ""),
        ToolCallDelta(0, None, None, '{"location":'),
        ToolCallDelta(0, None, None, ' "San Francisco, CA", "unit": "fahrenheit"}'),
        ToolCallDelta(1, "toolu_01JbNmAqTmqLswyqW1CZm6Ed", "get_time", ""),
        ToolCallDelta(1, None, None, '{"timezone": "America/Los_Angeles"}'),
        Finished("tool_calls", "tool_use"),
        Usage(472, 89, 561, 0),
    ]
    assert stream.text == "Okay, let's check the weather for San Francisco, CA:"
    assert stream.thinking == "The user wants the weather and the time; two tools.\n\n"
    calls = stream.tool_calls
    assert [(c.index, c.id, c.name) for c in calls] == [
        (0, "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather"), (1, "toolu_01JbNmAqTmqLswyqW1CZm6Ed", "get_time")]
    assert calls[0].parsed_arguments() == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert stream.finish_reason == "tool_calls" and stream.raw_finish_reason == "tool_use" and stream.usage == Usage(472, 89, 561, 0)


def test_anthropic_overloaded_error_resumes_by_prefill_holding_back_whitespace() -> None:
    sleeps: list[float] = []
    with RecordedServer([ANTHROPIC_OVERLOADED, ANTHROPIC_CONTINUATION]) as server:
        stream = client_for(server, "anthropic", sleeps).stream(
            model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "Two parts."}])
        events = read(stream)
        first, second = server.requests
    reconnecting = events[3]
    assert isinstance(reconnecting, Reconnecting) and "overloaded_error" in reconnecting.reason
    assert events[:3] + events[4:] == [
        Usage(20, 1, 21, None),
        TextDelta("Hello, here is "),
        TextDelta("the first part.\n\n"),
        Resumed("prefill", 1, 2),
        Usage(31, 1, 32, None),
        TextDelta("And the second."),
        Finished("stop", "end_turn"),
        Usage(31, 6, 37, None),
    ]
    assert stream.text == "Hello, here is the first part.\n\nAnd the second." and sleeps == [0.01]
    assert second.body["messages"] == [*first.body["messages"],
                                       {"role": "assistant", "content": "Hello, here is the first part."}]
    assert second.body["max_tokens"] == 98  # two content events already spent
    tokens = stream.metrics.cost.tokens
    assert (tokens.input_tokens, tokens.reread_input_tokens, tokens.output_tokens) == (20, 31, 6 + 2)


@pytest.mark.parametrize("kind", ["invalid_request_error", "api_error"])
def test_anthropic_other_errors_are_not_retried(kind: str) -> None:
    recording = ANTHROPIC_OVERLOADED.replace("overloaded_error", kind)
    with RecordedServer([recording, ANTHROPIC_CONTINUATION]) as server:
        stream = client_for(server, "anthropic").stream(model="m", max_tokens=100, messages=[])
        with pytest.raises(holysse.ProviderError) as info:
            read(stream)
        assert len(server.requests) == 1
    assert info.value.error_type == kind and not info.value.retryable and kind in str(info.value)
    assert info.value.partial == "Hello, here is the first part.\n\n"


def test_chat_tool_calls_and_usage() -> None:
    with RecordedServer([CHAT_TOOL_CALLS]) as server:
        stream = client_for(server, "openai-chat").stream(model="gpt-4.1", messages=[], tools=[])
        events = read(stream)
    assert events == [
        TextDelta("Checking both."),
        ToolCallDelta(0, "call_DdmO9pD3xa9XTPNJ32zg2hcA", "get_weather", ""),
        ToolCallDelta(0, None, None, '{"location": "Paris"}'),
        ToolCallDelta(1, "call_ABvQ2Y7sE4zCw3sWqX8pLm0n", "get_time", ""),
        ToolCallDelta(1, None, None, '{"tz":'),
        ToolCallDelta(1, None, None, ' "Europe/Paris"}'),
        Finished("tool_calls", "tool_calls"),
        Usage(82, 38, 120, 64, 0),
    ]
    assert [c.parsed_arguments() for c in stream.tool_calls] == [{"location": "Paris"}, {"tz": "Europe/Paris"}]
    cost = stream.metrics.cost  # gpt-4.1: $2 in, $0.50 cached, $8 out per million
    assert cost.total == Decimal(18 * 2 + 64 * 0.5 + 38 * 8) / 1_000_000 == Decimal("0.000372")


def test_responses_function_calls() -> None:
    with RecordedServer([RESPONSES_FUNCTION_CALLS]) as server:
        stream = client_for(server, "openai-responses").stream(model="gpt-4.1", input="Weather and time?")
        events = read(stream)
        request = server.requests[0]
    assert events == [
        TextDelta("Let me check"),
        TextDelta(" both."),
        ToolCallDelta(0, "call_12345xyz", "get_weather", ""),
        ToolCallDelta(0, None, None, '{"location":'),
        ToolCallDelta(0, None, None, '"Paris, France"}'),
        ToolCallDelta(1, "call_67890abc", "get_time", ""),
        ToolCallDelta(1, None, None, '{"tz":"Europe/Paris"}'),
        Finished("tool_calls", "completed"),
        Usage(291, 43, 334, 0, 0),
    ]
    assert [c.parsed_arguments() for c in stream.tool_calls] == [{"location": "Paris, France"}, {"tz": "Europe/Paris"}]
    assert (request.method, request.path, request.body["stream"]) == ("POST", "/v1/responses", True)
    assert request.headers["authorization"] == "Bearer sk-ant-recorded-key"


def responses_recording(*events: str) -> str:
    """A Responses stream: ``response.created`` then ``events`` (type, JSON tail) numbered in order."""
    created = '{"type":"response.created","sequence_number":0,"response":{' + RESPONSE + ',"status":"in_progress"}}'
    blocks = [f"event: response.created\ndata: {created}\n\n"]
    for number, event in enumerate(events, start=1):
        kind, _, tail = event.partition(" ")
        blocks.append(f'event: {kind}\ndata: {{"type":"{kind}","sequence_number":{number},{tail}}}\n\n')
    return "".join(blocks)


def text_delta(text: str) -> str:
    return f'response.output_text.delta "item_id":"msg_1","output_index":0,"content_index":0,"delta":"{text}"'


def test_responses_incomplete_ends_with_length() -> None:
    incomplete = ('response.incomplete "response":{"status":"incomplete","incomplete_details":'
                  '{"reason":"max_output_tokens"},"usage":{"input_tokens":5,"output_tokens":2,"total_tokens":7}}')
    with RecordedServer([responses_recording(text_delta("Cut"), text_delta(" short"), incomplete)]) as server:
        stream = client_for(server, "openai-responses").stream(model="gpt-4.1", input="x", max_output_tokens=2)
        events = read(stream)
    assert events == [TextDelta("Cut"), TextDelta(" short"), Finished("length", "max_output_tokens"), Usage(5, 2, 7)]


@pytest.mark.parametrize("error", [
    'error "code":"invalid_prompt","message":"Bad prompt.","param":null',
    'error "error":{"code":"invalid_prompt","message":"Bad prompt.","param":null}',
    'response.failed "response":{"status":"failed","error":{"code":"invalid_prompt","message":"Bad prompt."}}',
])
def test_responses_errors_raise_with_the_partial(error: str) -> None:
    with RecordedServer([responses_recording(text_delta("Partial"), error)]) as server:
        with pytest.raises(holysse.ProviderError) as info:
            read(client_for(server, "openai-responses").stream(model="gpt-4.1", input="x"))
    assert info.value.code == "invalid_prompt" and "Bad prompt." in str(info.value)
    assert info.value.partial == "Partial" and not info.value.retryable


def test_responses_server_error_is_retried_by_replay_and_repeated_sequence_numbers_are_dropped() -> None:
    failed = 'response.failed "response":{"status":"failed","error":{"code":"server_error","message":"Oops."}}'
    completed = 'response.completed "response":{"status":"completed","usage":null}'
    repeated = responses_recording(text_delta("Partial"), text_delta(" answer."), completed)
    repeated = repeated.replace("event: response.completed", "event: response.output_text.delta\ndata: "
                                '{"type":"response.output_text.delta","sequence_number":2,"delta":" answer."}\n\n'
                                "event: response.completed")
    with RecordedServer([responses_recording(text_delta("Partial"), failed), repeated]) as server:
        stream = client_for(server, "openai-responses").stream(model="gpt-4.1", input="x")
        events = read(stream)
    assert [type(e).__name__ for e in events] == [
        "TextDelta", "Reconnecting", "Resumed", "TextDelta", "Finished"]
    assert stream.text == "Partial answer." and events[2] == Resumed("replay", 1, len("Partial"))
