"""holysse.openai: an unmodified openai-python snippet, with only its import
line changed, gets the exact answer through cuts and a 429 (with openai's own
types when openai is installed, light objects when it is not)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import holysse.openai
from holysse.testing import FakeServer, Fault

from .conftest import Sleeps

openai = pytest.importorskip("openai", reason="the comparison with openai's own types needs openai (the test extra)")

KEY = "sk-" + "d" * 40
ROOT = Path(__file__).resolve().parent.parent

#: Ordinary openai-python code: streaming with tools, usage, a with block, except openai.RateLimitError.
SNIPPET = '''
{import_line}


def ask(base_url, api_key, max_retries=2):
    client = openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=max_retries)
    tools = [{{"type": "function", "function": {{
        "name": "get_weather", "description": "Weather of a city",
        "parameters": {{"type": "object", "properties": {{"city": {{"type": "string"}}}}}}}}}}]
    text, calls, usage, finish, chunks = [], {{}}, None, None, []
    try:
        with client.chat.completions.create(
            model="fake-1",
            messages=[{{"role": "user", "content": "What is the weather in Oslo?"}}],
            tools=tools,
            seed=7,
            stream=True,
            stream_options={{"include_usage": True}},
        ) as stream:
            for chunk in stream:
                chunks.append(chunk)
                if chunk.usage:
                    usage = chunk.usage
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta
                if delta.content:
                    text.append(delta.content)
                for call in delta.tool_calls or []:
                    entry = calls.setdefault(call.index, {{"id": None, "name": "", "arguments": ""}})
                    if call.id:
                        entry["id"] = call.id
                    if call.function.name:
                        entry["name"] += call.function.name
                    if call.function.arguments:
                        entry["arguments"] += call.function.arguments
                finish = chunk.choices[0].finish_reason or finish
    except openai.RateLimitError as exc:
        return {{"rate_limited": exc.status_code, "request_id": exc.request_id}}
    client.close()
    return {{"text": "".join(text), "calls": calls, "finish": finish, "chunks": chunks,
             "usage": [usage.prompt_tokens, usage.completion_tokens, usage.total_tokens]}}
'''


def load(import_line: str) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(SNIPPET.format(import_line=import_line), "<snippet>", "exec"), namespace)  # noqa: S102 - test code
    return namespace["ask"]


ORIGINAL = load("import openai")
DROP_IN = load("import holysse.openai as openai")


def cut_and_429(server: FakeServer, body: dict[str, Any]) -> list[Fault]:
    offsets = server.event_offsets(body)
    return [Fault.status(429), Fault.rst(offsets[len(offsets) // 3] + 2), Fault.fin(offsets[len(offsets) // 2] + 1)]


SENT = {"model": "fake-1", "messages": [{"role": "user", "content": "What is the weather in Oslo?"}], "seed": 7,
        "stream_options": {"include_usage": True}, "stream": True,
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]}


def reference(server: FakeServer) -> dict[str, Any]:
    """What the real openai SDK gets from the same server without faults."""
    result = ORIGINAL(server.url, KEY)
    assert result["text"] == server.expected_text(SENT) and result["finish"] == "tool_calls"
    return result


def without_chunks(result: dict[str, Any]) -> dict[str, Any]:
    """The answer without the chunks and the tool-call ids (each generation has its own)."""
    calls = {index: {**call, "id": call["id"][:5]} for index, call in result["calls"].items()}
    return {**{key: value for key, value in result.items() if key != "chunks"}, "calls": calls}


def test_the_snippet_gets_the_exact_answer_through_a_429_and_cuts_with_openais_own_types() -> None:
    with FakeServer(answer_chars=600) as server:
        expected = reference(server)
        server.set_faults(cut_and_429(server, SENT))
        result = DROP_IN(server.url, KEY, max_retries=3)
        statuses = len(server.requests)
    assert without_chunks(result) == without_chunks(expected)  # text, tool calls, finish, usage
    assert statuses == 1 + 4  # the reference, then the 429, two cut connections and the last one
    chunks = result["chunks"]
    assert all(type(chunk) is openai.types.chat.ChatCompletionChunk for chunk in chunks)
    for chunk in chunks:  # openai's own validation accepts every chunk as it is
        assert openai.types.chat.ChatCompletionChunk.model_validate(chunk.model_dump(by_alias=True)) == chunk
    assert len({chunk.id for chunk in chunks}) == 1 and chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


def test_the_snippet_catches_openai_rate_limit_error() -> None:
    with FakeServer(answer_chars=200) as server:
        server.set_faults([Fault.status(429, retry_after=1)])
        result = DROP_IN(server.url, KEY, max_retries=0)
    assert result["rate_limited"] == 429 and result["request_id"].startswith("req_")


BLOCKED_RUN = """
import json, sys
sys.modules["openai"] = None  # openai is not installed, as far as this process can tell
{snippet}
result = ask(sys.argv[1], sys.argv[2], max_retries=int(sys.argv[3]))
chunks = result.pop("chunks", [])
result["chunk_types"] = sorted({{type(chunk).__name__ for chunk in chunks}})
result["calls"] = {{str(k): v for k, v in result.get("calls", {{}}).items()}}
result["imported"] = sorted(name for name in ("httpx", "httpx2", "pydantic") if name in sys.modules)
print(json.dumps(result))
"""


def run_blocked(url: str, max_retries: int) -> dict[str, Any]:
    script = BLOCKED_RUN.format(snippet=SNIPPET.format(import_line="import holysse.openai as openai"))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", script, url, KEY, str(max_retries)], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_without_openai_the_same_snippet_works_on_light_objects() -> None:
    with FakeServer(answer_chars=600) as server:
        expected = reference(server)
        server.set_faults(cut_and_429(server, SENT))
        result = run_blocked(server.url, 3)
        assert len(server.requests) == 1 + 4  # the faults happened: a 429 and two cuts
        server.set_faults([Fault.status(429)])
        limited = run_blocked(server.url, 0)
    assert result["text"] == expected["text"] and result["finish"] == "tool_calls"
    assert {k: {**v, "id": v["id"][:5]} for k, v in result["calls"].items()} == {
        str(k): {**v, "id": v["id"][:5]} for k, v in expected["calls"].items()}
    assert result["usage"] == expected["usage"]
    assert result["chunk_types"] == ["ChatCompletionChunk"] and result["imported"] == []
    assert limited["rate_limited"] == 429


def test_a_diverged_replay_raises_api_error_with_the_partial_never_a_reset(sleeps: Sleeps) -> None:
    body = {"model": "fake-1", "messages": [{"role": "user", "content": "Be creative."}], "temperature": 1.0}
    with FakeServer(answer_chars=500, ids=False) as server:
        server.set_faults([Fault.fin(4000)])
        client = holysse.openai.OpenAI(api_key=KEY, base_url=server.url, resume="replay", sleep=sleeps)
        shown = ""
        with pytest.raises(openai.APIError) as info:
            for chunk in client.chat.completions.create(stream=True, **body):
                shown += (chunk.choices[0].delta.content or "") if chunk.choices else ""
        assert shown and info.value.partial == shown and server.answers[0].startswith(shown)
        assert isinstance(info.value.__cause__, holysse.StreamDiverged)
        with pytest.raises(TypeError, match="cannot take text back"):
            holysse.openai.OpenAI(api_key=KEY, base_url=server.url, on_divergence="reset")


def test_stream_false_returns_a_chat_completion_read_through_cuts(sleeps: Sleeps) -> None:
    body = {"model": "fake-1", "messages": [{"role": "user", "content": "Tell me."}], "seed": 2}
    with FakeServer(answer_chars=600) as server:
        offsets = server.event_offsets({**body, "stream_options": {"include_usage": True}})
        server.set_faults([Fault.rst(offsets[10] + 1)])
        client = holysse.openai.OpenAI(api_key=KEY, base_url=server.url, sleep=sleeps)
        completion = client.chat.completions.create(**body, extra_body={"top_k": 3})
        assert server.requests[-1].body["top_k"] == 3
    assert type(completion) is openai.types.chat.ChatCompletion
    assert completion.choices[0].message.content == server.expected_text(body)
    assert completion.choices[0].finish_reason == "stop" and completion.usage.completion_tokens > 0
    assert openai.types.chat.ChatCompletion.model_validate(completion.model_dump(by_alias=True)) == completion


@pytest.mark.parametrize("stream", [True, False])
def test_responses_create_rebuilds_the_events_through_a_cut(sleeps: Sleeps, stream: bool) -> None:
    body = {"model": "fake-1", "input": "Weather?", "seed": 5, "background": True,
            "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]}
    with FakeServer(answer_chars=400) as server:
        offsets = server.event_offsets(body, dialect="openai-responses")
        server.set_faults([Fault.rst(offsets[8] + 2)])
        client = holysse.openai.OpenAI(api_key=KEY, base_url=server.url, sleep=sleeps)
        result = client.responses.create(stream=stream, **body)
        events = list(result) if stream else []
        expected = server.expected_text(body, dialect="openai-responses")
        assert server.requests[-1].method == "GET"  # resumed by cursor
    final = events[-1].response if stream else result
    assert type(final) is openai.types.responses.Response and final.status == "completed"
    assert final.output_text == expected and final.usage.output_tokens > 0
    assert [item.type for item in final.output] == ["message", "function_call"]
    if stream:
        assert events[0].type == "response.created" and events[-1].type == "response.completed"
        assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == expected
        assert [e.sequence_number for e in events] == list(range(len(events)))
        for event in events:
            assert type(event).model_validate(event.model_dump(by_alias=True)) == event


@pytest.mark.parametrize(
    ("fault", "name"),
    [(Fault.status(400), "BadRequestError"), (Fault.status(401), "AuthenticationError"),
     (Fault.status(403), "PermissionDeniedError"), (Fault.status(404), "NotFoundError"),
     (Fault.status(422), "UnprocessableEntityError"), (Fault.status(503), "InternalServerError")],
)
def test_errors_are_openais_classes(fault: Fault, name: str, sleeps: Sleeps) -> None:
    with FakeServer(answer_chars=100) as server:
        server.set_faults([fault] * 3)
        client = holysse.openai.OpenAI(api_key=KEY, base_url=server.url, max_retries=1, sleep=sleeps)
        with pytest.raises(getattr(openai, name)) as info:
            client.chat.completions.create(model="fake-1", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == fault.status_code and info.value.request_id.startswith("req_")
    assert isinstance(info.value.__cause__, holysse.HolySSEError) and KEY not in repr(info.value.body)


def test_an_unreachable_server_is_an_api_connection_error(sleeps: Sleeps) -> None:
    with FakeServer() as server:
        url = server.url
    client = holysse.openai.OpenAI(api_key=KEY, base_url=url, max_retries=1, sleep=sleeps, timeout=2)
    with pytest.raises(openai.APIConnectionError) as info:
        list(client.chat.completions.create(model="m", messages=[], stream=True))
    assert info.value.partial == ""


def test_holysse_never_imports_openai_or_opentelemetry() -> None:
    code = "import sys, holysse; print(*sorted(m for m in sys.modules if m.split('.')[0] in ('openai', " \
           "'opentelemetry', 'httpx', 'httpx2', 'pydantic')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.stdout.split() == []


def test_no_key_is_openais_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(openai.OpenAIError, match="OPENAI_API_KEY"):
        holysse.openai.OpenAI()
    assert holysse.openai.USING_OPENAI_TYPES and holysse.openai.RateLimitError is openai.RateLimitError
