"""The Anthropic and Responses dialects against the fake server: requests,
prefill with held-back whitespace, fallbacks when a resume is refused,
selection of the dialect, and provider profiles."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

import holysse
from holysse import ProfileRule, Reconnecting, Resumed
from holysse.dialects.anthropic import AnthropicParser
from holysse.dialects.openai_responses import ResponsesParser
from holysse.dialects.profiles import PROFILES, guess_profile
from holysse.events import Finished, TextDelta, ToolCallDelta
from holysse.wire import ServerSentEvent
from holysse.testing import FakeServer, Fault, RecordedRequest

from .conftest import Sleeps, make_client

PROMPT = "Tell me about streams."
MESSAGES = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": PROMPT}], "seed": 3,
            "max_tokens": 4096}
RESPONSES = {"model": "gpt-4.1", "input": PROMPT, "seed": 3, "background": True}


def collect(stream: holysse.Stream) -> list[Any]:
    return list(stream)


def test_anthropic_request_headers_defaults_and_system_prompt(server: FakeServer) -> None:
    client = make_client(server, dialect="anthropic")
    body = {"model": "claude-sonnet-4-5", "seed": 3,
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}]}
    stream = client.stream(**body)
    assert stream.final().text == server.expected_text(dict(body, max_tokens=4096), dialect="anthropic")
    request = server.requests[-1]
    assert request.path == "/v1/messages" and request.header("x-api-key") == "hs_" + "k" * 32
    assert request.header("anthropic-version") == "2023-06-01" and request.header("Authorization") is None
    assert request.body["max_tokens"] == 4096 and request.body["stream"] is True
    assert request.body["system"] == "Be brief." and request.body["messages"] == [body["messages"][1]]
    client.stream(model="m", max_completion_tokens=7, messages=[{"role": "user", "content": PROMPT}]).final()
    assert server.requests[-1].body["max_tokens"] == 7 and "max_completion_tokens" not in server.requests[-1].body


def test_responses_request_accepts_chat_style_arguments(server: FakeServer) -> None:
    client = make_client(server)
    stream = client.responses.stream(model="gpt-4.1", messages=[{"role": "user", "content": PROMPT}], max_tokens=5)
    assert stream.final().finish_reason == "length"
    request = server.requests[-1]
    assert request.path == "/v1/responses" and request.header("Authorization") == "Bearer hs_" + "k" * 32
    assert request.body["input"] == [{"role": "user", "content": PROMPT}] and request.body["max_output_tokens"] == 5
    assert "messages" not in request.body and "max_tokens" not in request.body


def test_messages_entry_point_and_per_stream_dialect(server: FakeServer) -> None:
    client = make_client(server)
    assert client.messages.stream(**MESSAGES).final().text == server.expected_text(MESSAGES, dialect="anthropic")
    assert client.stream(dialect="messages", **MESSAGES).final().finish_reason == "stop"
    assert [r.path for r in server.requests] == ["/v1/messages", "/v1/messages"]
    with pytest.raises(holysse.UsageError, match="Unknown dialect"):
        client.stream(dialect="gemini", **MESSAGES)


def whitespace_cut(server: FakeServer) -> tuple[int, str]:
    """A cut right after the 5th or a later text event whose text ends in
    whitespace, and the text delivered by then (read from the payload)."""
    payload = server.body_for(MESSAGES, dialect="anthropic")
    delivered, end, count = "", 0, 0
    for block in payload.split(b"\n\n")[:-1]:
        end += len(block) + 2
        data = json.loads(block.decode("utf-8").split("data: ", 1)[1])
        text = (data.get("delta") or {}).get("text")
        if text:
            delivered, count = delivered + text, count + 1
            if count >= 5 and text != text.rstrip():
                return end, delivered
    raise AssertionError("no text event ends in whitespace")


def test_anthropic_prefill_holds_back_trailing_whitespace(sleeps: Sleeps) -> None:
    with FakeServer(answer_chars=600, ids=False) as server:
        at, delivered = whitespace_cut(server)
        server.set_faults([Fault.fin(at)])
        stream = make_client(server, sleeps, dialect="anthropic").stream(**MESSAGES)
        events = collect(stream)
        prefill = server.requests[-1].body["messages"][-1]
    assert "".join(e.text for e in events) == stream.text == server.expected_text(MESSAGES, dialect="anthropic")
    assert prefill == {"role": "assistant", "content": delivered.rstrip()} and delivered != delivered.rstrip()
    resumed = [e for e in events if isinstance(e, Resumed)]
    assert resumed == [Resumed("prefill", 1, len(delivered) - len(delivered.rstrip()))]
    assert stream.metrics.wasted_output_tokens <= 1 and stream.metrics.reconnects == {"prefill": 1}


def test_anthropic_prefill_refused_falls_back_to_replay(sleeps: Sleeps) -> None:
    with FakeServer(answer_chars=600, ids=False) as server:
        ends = server.event_offsets(MESSAGES, dialect="anthropic")
        server.set_faults([Fault.rst(ends[30] + 5), Fault.status(400)])
        stream = make_client(server, sleeps, dialect="anthropic").stream(**MESSAGES)
        events = collect(stream)
        assert stream.text == server.expected_text(MESSAGES, dialect="anthropic")
        assert [r.body["messages"][-1]["role"] for r in server.requests] == ["user", "assistant", "user"]
    cut, fallback = [i for i, e in enumerate(events) if isinstance(e, Reconnecting)]
    assert "refused the prefill resume: 400" in events[fallback].reason
    assert "falling back to replay" in events[fallback].reason and events[fallback].delay == 0
    delivered = "".join(e.text for e in events[:cut])
    assert [e for e in events if isinstance(e, Resumed)] == [Resumed("replay", 2, len(delivered))]
    assert stream.metrics.reconnects == {"prefill": 1, "replay": 1}


def test_expired_background_response_falls_back_to_replay(sleeps: Sleeps) -> None:
    with FakeServer(answer_chars=600) as server:
        ends = server.event_offsets(RESPONSES)

        def plan(request: RecordedRequest) -> Fault | None:
            if request.method == "GET":
                server.expire_responses()  # the response expired while we were away
                return None
            return Fault.fin(ends[40] + 3) if request.index == 0 else None

        server.set_faults(plan)
        stream = make_client(server, sleeps, dialect="openai-responses").stream(**RESPONSES)
        events = collect(stream)
        assert [(r.method, r.path.rsplit("/", 1)[-1][:5]) for r in server.requests] == [
            ("POST", "respo"), ("GET", "resp_"), ("POST", "respo")]
        assert stream.text == "".join(e.text for e in events) == server.expected_text(RESPONSES)
    reasons = [e.reason for e in events if isinstance(e, Reconnecting)]
    assert len(reasons) == 2 and "refused the cursor resume: 404" in reasons[1]
    assert [e.strategy for e in events if isinstance(e, Resumed)] == ["replay"]
    assert stream.metrics.reconnects == {"cursor": 1, "replay": 1} and stream.metrics.wasted_output_tokens > 0


def test_a_cursor_resume_that_is_never_possible_is_not_tried_again(sleeps: Sleeps) -> None:
    with FakeServer(answer_chars=600, resume=False) as server:  # GET /responses/{id} always 404
        ends = server.event_offsets(RESPONSES)
        server.set_faults([Fault.fin(ends[20] + 3), None, Fault.fin(ends[60] + 3)])
        stream = make_client(server, sleeps, dialect="openai-responses").stream(**RESPONSES)
        assert stream.final().text == server.expected_text(RESPONSES)
        assert [r.method for r in server.requests] == ["POST", "GET", "POST", "POST"]
    assert stream.metrics.reconnects == {"cursor": 1, "replay": 2}


def feed(parser: Any, *events: dict[str, Any]) -> list[Any]:
    return [out for event in events for out in parser.feed(ServerSentEvent(data=json.dumps(event)))]


def test_anthropic_parser_tolerates_whole_tool_input_and_unknown_events() -> None:
    events = feed(
        AnthropicParser(),
        {"type": "content_block_start", "index": 0, "content_block": {"type": "redacted_thinking", "data": "x"}},
        {"type": "content_block_start", "index": 1,
         "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1, "é"]}}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "citations_delta", "citation": {}}},
        {"type": "content_block_stop", "index": 1},
        {"type": "some_future_event"},
        {"type": "content_block_delta", "index": 7, "delta": {"type": "input_json_delta", "partial_json": "{"}},
    )
    assert events == [ToolCallDelta(0, "toolu_1", "f", ""), ToolCallDelta(0, None, None, '{"a":[1,"é"]}')]
    with pytest.raises(holysse.ProtocolError, match="Malformed JSON") as info:
        AnthropicParser().feed(ServerSentEvent(data='{"type": "content_blo'))
    assert info.value.retryable


def test_responses_parser_refusals_and_unknown_items() -> None:
    parser = ResponsesParser()
    events = feed(
        parser,
        {"type": "response.created", "sequence_number": 0, "response": {"id": "resp_1", "background": True}},
        {"type": "response.refusal.delta", "sequence_number": 1, "delta": "I can't help with that."},
        {"type": "response.function_call_arguments.delta", "sequence_number": 2, "item_id": "fc_x", "delta": "{"},
        {"type": "response.completed", "sequence_number": 3, "response": {"status": "completed"}},
    )
    assert events == [TextDelta("I can't help with that."), Finished("stop", "completed")]
    assert parser.done and str(parser.cursor) == "resp_1@3"


# -- provider profiles ----------------------------------------------------------


@pytest.mark.parametrize(("base_url", "model", "dialect", "expected"), [
    ("https://api.anthropic.com/v1", "claude-sonnet-4-5", "anthropic", "anthropic"),
    ("https://api.deepseek.com/beta", "deepseek-chat", "openai-chat", "deepseek"),
    ("https://api.deepseek.com/v1", "deepseek-chat", "openai-chat", "deepseek-std"),
    ("https://api.mistral.ai/v1", "mistral-large-latest", "openai-chat", "mistral"),
    ("https://api.openai.com/v1", "gpt-4.1", "openai-responses", "openai"),
    ("https://api.holysheep.ai/v1", "claude-sonnet-4-5", "anthropic", "anthropic"),
    ("https://api.holysheep.ai/v1", "anthropic/Claude-Sonnet-4.5", "anthropic", "anthropic"),
    ("https://api.holysheep.ai/v1", "claude-sonnet-4-5", "openai-chat", "holysheep"),
    ("https://api.holysheep.ai/v1", "deepseek-chat", "openai-chat", "holysheep"),
    ("https://api.holysheep.ai/v1", "gpt-4.1", "openai-responses", "holysheep"),
    ("http://localhost:8000/v1", "llama-3", "openai-chat", "generic"),
    ("http://localhost:8000/v1", "claude-x", "anthropic", "anthropic"),
])
def test_profiles_are_guessed_per_host_and_model_family(base_url: str, model: str, dialect: str,
                                                        expected: str) -> None:
    assert guess_profile(base_url, model, dialect) == PROFILES[expected]


def test_unknown_providers_fall_back_safely() -> None:
    generic = guess_profile("https://llm.example.com/v1", "some-model", "openai-chat")
    assert generic.prefill_flavour is None and generic.strategies == ("cursor", "replay")


def test_user_rules_and_profiles_override_the_guess(server: FakeServer, sleeps: Sleeps) -> None:
    continuing = dataclasses.replace(PROFILES["vllm"], name="my-vllm")
    rules = [ProfileRule(continuing, models=("fake-",))]
    assert guess_profile(server.url, "fake-1", "openai-chat", rules) is continuing
    assert guess_profile(server.url, "other", "openai-chat", rules) is PROFILES["generic"]
    body = {"model": "fake-1", "messages": [{"role": "user", "content": PROMPT}], "seed": 3}
    with FakeServer(answer_chars=400, ids=False) as srv:
        srv.set_faults([Fault.rst(srv.event_offsets(body)[30] + 2)])
        stream = make_client(srv, sleeps, provider=rules).stream(**body)
        assert stream.final().text == srv.expected_text(body)
        assert stream.metrics.reconnects == {"prefill": 1}  # auto: the rule allowed prefill
    with pytest.raises(holysse.UsageError, match="ProfileRule"):
        make_client(server, provider=[("fake-", "vllm")])
    with pytest.raises(holysse.UsageError, match="Unknown provider"):
        make_client(server, provider="nobody")


def test_a_query_in_the_base_url_stays_on_every_request(sleeps: Sleeps) -> None:
    """Azure-style base URLs carry ``?api-version=``: it must end every URL
    (the POST, the cursor resume's GET, ``/models``), not sit before the path."""
    with FakeServer(answer_chars=600) as server:
        ends = server.event_offsets(RESPONSES)
        server.set_faults([Fault.rst(ends[40] + 3)])
        client = holysse.Client(api_key="hs_" + "k" * 32, base_url=server.url + "/?api-version=2024-10-21",
                                dialect="openai-responses", sleep=sleeps)
        stream = client.stream(**RESPONSES)
        assert stream.final().text == server.expected_text(RESPONSES)
        assert client.models()
        post, get, models = server.requests
        assert (post.method, post.path, post.query) == ("POST", "/v1/responses", {"api-version": "2024-10-21"})
        assert get.method == "GET" and get.path.startswith("/v1/responses/resp_")
        assert get.query == {"api-version": "2024-10-21", "stream": "true", "starting_after": "40"}
        assert (models.path, models.query) == ("/v1/models", {"api-version": "2024-10-21"})
