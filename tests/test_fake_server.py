"""The fake server, tested with raw sockets and http.client only (no holysse client).

Every check reads real bytes from a real socket on 127.0.0.1: stream shapes of
the three dialects, the fake model, prefill, resume, every fault kind, gzip,
close-delimited bodies, keep-alive, authentication, recording and shutdown.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import sys
import threading
import time
import zlib
from typing import Any, Iterator

import pytest

from holysse.testing import FakeModel, FakeServer, Fault, RecordedRequest
from holysse.testing.model import split_tokens

PROMPT = "Tell me about streams."
CHAT = {"model": "fake-1", "messages": [{"role": "user", "content": PROMPT}], "seed": 3, "stream": True,
        "stream_options": {"include_usage": True}}
MESSAGES = {"model": "claude-fake", "messages": [{"role": "user", "content": PROMPT}], "seed": 3,
            "stream": True, "max_tokens": 4096}
RESPONSES = {"model": "fake-1", "input": PROMPT, "seed": 3, "stream": True, "background": True}
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}},
         {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]


# -- raw HTTP helpers -----------------------------------------------------------


def open_request(server: FakeServer, path: str, body: Any = None, method: str = "POST",
                 headers: dict[str, str] | None = None, timeout: float = 5.0) -> socket.socket:
    """Send one request on a fresh socket and return the socket."""
    data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", f"Content-Length: {len(data)}",
             "Content-Type: application/json", "Connection: close",
             *(f"{k}: {v}" for k, v in (headers or {}).items())]
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
    return sock


def read_all(sock: socket.socket) -> tuple[bytes, BaseException | None]:
    """Everything until EOF, and the error that ended the read (None for a clean EOF)."""
    received = bytearray()
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return bytes(received), None
            received += data
    except OSError as exc:
        return bytes(received), exc
    finally:
        sock.close()


def split_head(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def dechunk(wire: bytes) -> tuple[bytes, list[bytes], bool]:
    """(payload, chunks, complete) from a chunked body, tolerating a cut anywhere."""
    chunks, pos = [], 0
    while True:
        end = wire.find(b"\r\n", pos)
        if end < 0:
            return b"".join(chunks), chunks, False
        size = int(wire[pos:end], 16)
        if size == 0:
            return b"".join(chunks), chunks, wire[end:end + 4] == b"\r\n\r\n"
        data = wire[end + 2:end + 2 + size]
        chunks.append(data)
        if len(data) < size or wire[end + 2 + size:end + 4 + size] != b"\r\n":
            return b"".join(chunks), chunks, False
        pos = end + 4 + size


def parse_sse(payload: bytes) -> list[dict[str, str]]:
    """Complete SSE events (``event``, ``id``, ``data``) of a payload; comments skipped."""
    blocks = payload.decode("utf-8", errors="replace").split("\n\n")[:-1]  # the last piece is unterminated
    events = []
    for block in blocks:
        fields: dict[str, list[str]] = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields.setdefault(name, []).append(value[1:] if value.startswith(" ") else value)
        if "data" in fields:
            events.append({"event": fields.get("event", ["message"])[-1], "id": fields.get("id", [""])[-1],
                           "data": "\n".join(fields["data"])})
    return events


def normalise(data: bytes) -> bytes:
    """Blank out generation ids and timestamps, which differ per request but not in width."""
    data = re.sub(rb"[0-9a-f]{24}", b"G" * 24, data)
    return re.sub(rb'"(created|created_at)":\d+', lambda m: re.sub(rb"\d", b"0", m.group()), data)


def unmask(got: bytes, template: bytes) -> bytes:
    """``got`` with the bytes at ``template``'s generation ids and timestamps
    copied from ``template`` (they differ per request, not in width); ``got``
    may be any prefix of a body shaped like ``template``."""
    out = bytearray(got)
    for match in re.finditer(rb'0{24}|(?<="created":)\d+|(?<="created_at":)\d+', template):
        start, end = match.start(), min(match.end(), len(out))
        out[start:end] = template[start:end]
    return bytes(out)


def stream(server: FakeServer, path: str, body: Any, headers: dict[str, str] | None = None
           ) -> tuple[int, dict[str, str], bytes]:
    """One complete response (a POST with ``body``, a GET without): (status,
    headers, payload with any chunked framing removed)."""
    method = "GET" if body is None else "POST"
    status, head, wire = split_head(read_all(open_request(server, path, body, method, headers))[0])
    if head.get("transfer-encoding") == "chunked":
        payload, _, complete = dechunk(wire)
        assert complete
        return status, head, payload
    return status, head, wire


def chat_text(events: list[dict[str, str]]) -> str:
    text = ""
    for event in events:
        if event["data"] != "[DONE]":
            for choice in json.loads(event["data"])["choices"]:
                text += choice["delta"].get("content") or ""
    return text


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(answer_chars=400) as srv:
        yield srv


# -- the fake model -------------------------------------------------------------


def test_model_text_is_deterministic_varied_and_stressful() -> None:
    model = FakeModel(seed=0)
    text = model.answer("p", seed=1, length=20000)
    assert len(text) == 20000 and text == model.answer("p", seed=1, length=20000)
    assert text != model.answer("p", seed=2, length=20000) != FakeModel(seed=5).answer("p", seed=1, length=20000)
    assert "\r" not in text and "\n\n" in text and re.search(r"[^\n]\n[^\n]", text)
    assert "data: " in text and "\u200d" in text and "\ufe0f" in text
    assert re.search("[\u3040-\u309f]", text) and re.search("[\u30a0-\u30ff]", text)
    assert re.search("[\u4e00-\u9fff]", text) and re.search("[a-z]{4}", text)
    assert any(len(ch.encode()) == 4 for ch in text)
    first, second = (model.answer("p", temperature=1.0, length=300) for _ in range(2))
    assert first != second
    assert model.answer("p", seed=4, temperature=1.0, length=300) == model.answer("p", seed=4, temperature=1.0,
                                                                               length=300)


def test_model_tokens_are_short_stable_and_position_aligned() -> None:
    model = FakeModel()
    text = model.answer("q", seed=9, length=3000)
    tokens = model.tokens(text)
    assert "".join(tokens) == text and tokens == model.tokens(text)
    assert all(1 <= len(token) <= 6 for token in tokens)
    assert len({len(token) for token in tokens}) == 6
    boundary = sum(map(len, tokens[:100]))  # a continuation from a token boundary splits like the rest
    assert split_tokens(text[boundary:], boundary) == tokens[100:]
    arguments = model.tool_arguments("q", 9)
    value = json.loads(arguments)
    assert arguments == model.tool_arguments("q", 9) != model.tool_arguments("q", 10)
    assert any(isinstance(v, dict) for v in value.values()) and any(ord(c) > 127 for c in arguments)
    fragments = model.fragments(arguments)
    assert "".join(fragments) == arguments and all(1 <= len(f) <= 5 for f in fragments)


# -- OpenAI chat ------------------------------------------------------------------


def test_chat_stream_shape_ids_usage_and_done(server: FakeServer) -> None:
    status, head, wire = split_head(read_all(open_request(server, "/v1/chat/completions", CHAT))[0])
    assert status == 200 and head["content-type"] == "text/event-stream; charset=utf-8"
    assert head["cache-control"] == "no-cache" and head["x-request-id"] and head["transfer-encoding"] == "chunked"
    payload, chunks, complete = dechunk(wire)
    assert complete and all(chunk.endswith(b"\n\n") and chunk.count(b"\n\n") == 1 for chunk in chunks)
    events = parse_sse(payload)
    assert len(events) == len(chunks) and events[-1]["data"] == "[DONE]"
    gen_id = events[0]["id"].rsplit("-", 1)[0]
    assert [e["id"] for e in events] == [f"{gen_id}-{n}" for n in range(len(events))]
    chunks_json = [json.loads(e["data"]) for e in events[:-1]]
    assert all(c["id"] == f"chatcmpl-{gen_id}" and c["object"] == "chat.completion.chunk" for c in chunks_json)
    assert all(c["model"] == "fake-1" and isinstance(c["created"], int) for c in chunks_json)
    assert chunks_json[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks_json[-2]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    usage = chunks_json[-1]
    assert usage["choices"] == []
    contents = [c["choices"][0]["delta"]["content"] for c in chunks_json[1:-2]]
    assert all(1 <= len(token) <= 6 for token in contents)
    text = "".join(contents)
    assert len(text) == 400 and text == server.expected_text(CHAT) == server.answers[-1]
    assert usage["usage"]["completion_tokens"] == len(contents)
    assert usage["usage"]["total_tokens"] == usage["usage"]["prompt_tokens"] + len(contents) > len(contents)
    assert normalise(payload) == normalise(server.body_for(CHAT))
    assert server.event_offsets(CHAT) == [sum(map(len, chunks[:i + 1])) for i in range(len(chunks))]


def test_chat_without_ids_usage_and_with_max_tokens() -> None:
    with FakeServer(answer_chars=400, ids=False) as srv:
        body = {k: v for k, v in CHAT.items() if k != "stream_options"}
        body["max_tokens"] = 7
        events = parse_sse(stream(srv, "/v1/chat/completions", body)[2])
    assert all(e["id"] == "" for e in events)
    chunks = [json.loads(e["data"]) for e in events[:-1]]
    assert all(c["choices"] for c in chunks)  # no usage chunk
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert len(chunks) == 1 + 7 + 1 and len(chat_text(events)) < 400


def test_tool_calls_reassemble_to_the_model_arguments(server: FakeServer) -> None:
    body = dict(CHAT, tools=TOOLS)
    events = parse_sse(stream(server, "/v1/chat/completions", body)[2])
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for event in events[:-1]:
        for choice in json.loads(event["data"])["choices"]:
            finish = choice["finish_reason"] or finish
            for call in choice["delta"].get("tool_calls", ()):
                entry = calls.setdefault(call["index"], {"name": "", "arguments": "", "id": ""})
                entry["id"] += call.get("id", "")
                entry["name"] += call.get("function", {}).get("name", "")
                entry["arguments"] += call["function"]["arguments"]
    assert finish == "tool_calls" and sorted(calls) == [0, 1]
    assert calls[0]["name"] == "lookup" and calls[1]["name"] == "weather"
    assert calls[0]["arguments"] == server.model.tool_arguments(PROMPT, 3)
    assert calls[0]["id"].startswith("call_") and calls[0]["id"] != calls[1]["id"]
    assert json.loads(calls[1]["arguments"]) and chat_text(events) == server.expected_text(body)
    none = parse_sse(stream(server, "/v1/chat/completions", dict(body, tool_choice="none"))[2])
    assert "tool_calls" not in json.dumps([json.loads(e["data"]) for e in none[:-1]])


def test_seed_decides_and_temperature_without_seed_varies(server: FakeServer) -> None:
    texts = [chat_text(parse_sse(stream(server, "/v1/chat/completions", dict(CHAT, seed=s))[2])) for s in (5, 5, 6)]
    assert texts[0] == texts[1] != texts[2]
    hot = {"model": "fake-1", "messages": CHAT["messages"], "temperature": 1.0, "stream": True}
    first, second = (chat_text(parse_sse(stream(server, "/v1/chat/completions", hot)[2])) for _ in range(2))
    assert first != second and server.answers[-2:] == [first, second]


def test_non_streaming_completion_and_models(server: FakeServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", "/v1/chat/completions", json.dumps(dict(CHAT, stream=False)))
    answer = json.loads(conn.getresponse().read())
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["content"] == server.expected_text(CHAT)
    conn.request("GET", "/v1/models")
    models = json.loads(conn.getresponse().read())
    assert models["object"] == "list" and all(m["object"] == "model" for m in models["data"])
    conn.close()


# -- prefill --------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["prefix", "continue"])
def test_chat_prefill_continues_the_full_answer(server: FakeServer, flavour: str) -> None:
    events = parse_sse(stream(server, "/v1/chat/completions", CHAT)[2])
    full = chat_text(events)
    partial = chat_text(events[:41])  # role delta and 40 tokens
    message: dict[str, Any] = {"role": "assistant", "content": partial}
    body = dict(CHAT)
    if flavour == "prefix":
        message["prefix"] = True
    else:
        body.update(continue_final_message=True, add_generation_prompt=False)
    body["messages"] = [*CHAT["messages"], message]
    rest = chat_text(parse_sse(stream(server, "/v1/chat/completions", body)[2]))
    assert partial and rest and partial + rest == full
    assert server.answers[-1] == full


def test_prefill_of_a_foreign_partial_and_prefill_disabled() -> None:
    partial = {"role": "assistant", "content": "Not the model's", "prefix": True}
    foreign = dict(CHAT, messages=[*CHAT["messages"], partial])
    with FakeServer(answer_chars=400) as srv:
        full = srv.expected_text(CHAT)
        first, second = (chat_text(parse_sse(stream(srv, "/v1/chat/completions", foreign)[2])) for _ in range(2))
        assert first == second and first and not full.endswith(first)
    with FakeServer(answer_chars=400, prefill=False) as srv:
        body = dict(CHAT, messages=[*CHAT["messages"], {"role": "assistant", "content": full[:50], "prefix": True}])
        assert chat_text(parse_sse(stream(srv, "/v1/chat/completions", body)[2])) == full


# -- Anthropic Messages ---------------------------------------------------------


def anthropic_events(server: FakeServer, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    events = parse_sse(stream(server, "/v1/messages", body)[2])
    decoded = [(e["event"], json.loads(e["data"])) for e in events]
    assert all(name == data["type"] for name, data in decoded)
    return decoded


def test_anthropic_stream_shape(server: FakeServer) -> None:
    events = anthropic_events(server, MESSAGES)
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert "ping" in names and names.count("ping") >= len(names) // 25
    start = events[0][1]["message"]
    assert start["id"].startswith("msg_") and start["model"] == "claude-fake" and start["usage"]["input_tokens"] > 0
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert text == server.expected_text(MESSAGES, dialect="anthropic")
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
    limited = anthropic_events(server, dict(MESSAGES, max_tokens=5))
    assert limited[-2][1]["delta"]["stop_reason"] == "max_tokens" and limited[-2][1]["usage"]["output_tokens"] == 5


def test_anthropic_requires_max_tokens(server: FakeServer) -> None:
    body = {k: v for k, v in MESSAGES.items() if k != "max_tokens"}
    status, head, raw = split_head(read_all(open_request(server, "/v1/messages", body))[0])
    assert status == 400 and json.loads(raw)["error"] == {"type": "invalid_request_error",
                                                          "message": "max_tokens: Field required"}


def test_anthropic_thinking_and_tool_use(server: FakeServer) -> None:
    tools = [{"name": "lookup", "input_schema": {"type": "object"}}]
    body = dict(MESSAGES, thinking={"type": "enabled", "budget_tokens": 1024}, tools=tools)
    events = anthropic_events(server, body)
    starts = [d["content_block"]["type"] for n, d in events if n == "content_block_start"]
    assert starts == ["thinking", "text", "tool_use"]
    deltas = [d["delta"] for n, d in events if n == "content_block_delta"]
    assert any(d["type"] == "thinking_delta" and d["thinking"] for d in deltas)
    assert [d["type"] for d in deltas].count("signature_delta") == 1
    arguments = "".join(d["partial_json"] for d in deltas if d["type"] == "input_json_delta")
    assert arguments == server.model.tool_arguments(PROMPT, 3)
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_anthropic_prefill_and_trailing_whitespace(server: FakeServer) -> None:
    full = server.expected_text(MESSAGES, dialect="anthropic")
    partial = "".join(server.model.tokens(full)[:30]).rstrip()
    body = dict(MESSAGES, messages=[*MESSAGES["messages"], {"role": "assistant", "content": partial}])
    events = anthropic_events(server, body)
    rest = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert partial + rest == full
    body["messages"][-1] = {"role": "assistant", "content": [{"type": "text", "text": partial + " "}]}
    status, head, raw = split_head(read_all(open_request(server, "/v1/messages", body))[0])
    error = json.loads(raw)
    assert status == 400 and head["content-type"] == "application/json"
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert "trailing whitespace" in error["error"]["message"]


# -- OpenAI Responses -----------------------------------------------------------


def test_responses_stream_shape_and_sequence_numbers(server: FakeServer) -> None:
    events = parse_sse(stream(server, "/v1/responses", dict(RESPONSES, tools=TOOLS[:1]))[2])
    decoded = [json.loads(e["data"]) for e in events]
    assert [d["sequence_number"] for d in decoded] == list(range(len(decoded)))
    assert all(e["event"] == d["type"] for e, d in zip(events, decoded))
    assert decoded[0]["type"] == "response.created" and decoded[0]["response"]["status"] == "in_progress"
    assert decoded[0]["response"]["background"] is True and decoded[1]["type"] == "response.in_progress"
    text = "".join(d["delta"] for d in decoded if d["type"] == "response.output_text.delta")
    assert text == server.expected_text(RESPONSES)
    arguments = "".join(d["delta"] for d in decoded if d["type"] == "response.function_call_arguments.delta")
    assert arguments == server.model.tool_arguments(PROMPT, 3)
    done = decoded[-1]
    assert done["type"] == "response.completed" and done["response"]["output"][0]["content"][0]["text"] == text
    usage = done["response"]["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    cut = [json.loads(e["data"]) for e in parse_sse(stream(server, "/v1/responses",
                                                            dict(RESPONSES, max_output_tokens=3))[2])]
    assert cut[-1]["type"] == "response.incomplete"


def test_responses_resume_with_starting_after_and_expiry(server: FakeServer) -> None:
    payload = stream(server, "/v1/responses", RESPONSES)[2]
    events = parse_sse(payload)
    response_id = json.loads(events[0]["data"])["response"]["id"]
    status, _, again = stream(server, f"/v1/responses/{response_id}?stream=true&starting_after=9", None)
    assert status == 200 and again == payload[server.event_offsets(RESPONSES)[9]:]
    assert [json.loads(e["data"])["sequence_number"] for e in parse_sse(again)][0] == 10
    status, _, final = stream(server, f"/v1/responses/{response_id}", None)
    assert status == 200 and json.loads(final)["status"] == "completed"
    foreground = json.loads(parse_sse(stream(server, "/v1/responses", dict(RESPONSES, background=False))[2])[0]["data"])
    status, _, missing = stream(server, f"/v1/responses/{foreground['response']['id']}?stream=true", None)
    assert status == 404 and json.loads(missing)["error"]["type"] == "invalid_request_error"
    server.expire_responses()
    assert stream(server, f"/v1/responses/{response_id}?stream=true&starting_after=9", None)[0] == 404


# -- resume by Last-Event-ID ----------------------------------------------------


def test_last_event_id_resumes_the_same_generation(server: FakeServer) -> None:
    payload = stream(server, "/v1/chat/completions", CHAT)[2]
    events = parse_sse(payload)
    answers = len(server.answers)
    resumed = stream(server, "/v1/chat/completions", CHAT, {"Last-Event-ID": events[30]["id"]})[2]
    assert resumed == payload[server.event_offsets(CHAT)[30]:] and len(server.answers) == answers
    fresh = parse_sse(stream(server, "/v1/chat/completions", CHAT, {"Last-Event-ID": "unknown-3"})[2])
    assert fresh[0]["id"].endswith("-0") and fresh[0]["id"] != events[0]["id"]
    server.set_faults([Fault.drop_ids()])
    dropped = parse_sse(stream(server, "/v1/chat/completions", CHAT, {"Last-Event-ID": events[30]["id"]})[2])
    assert dropped[0]["id"].endswith("-0") and chat_text(dropped) == chat_text(events)
    anthropic = parse_sse(stream(server, "/v1/messages", MESSAGES)[2])
    again = parse_sse(stream(server, "/v1/messages", MESSAGES, {"Last-Event-ID": anthropic[5]["id"]})[2])
    assert again == anthropic[6:]
    with FakeServer(answer_chars=200, resume=False) as srv:
        first = parse_sse(stream(srv, "/v1/chat/completions", CHAT)[2])
        second = parse_sse(stream(srv, "/v1/chat/completions", CHAT, {"Last-Event-ID": first[3]["id"]})[2])
        assert second[0]["id"].endswith("-0") and second[0]["id"] != first[0]["id"]


# -- faults ---------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [True, False])
def test_fin_is_a_clean_eof_after_exactly_at_payload_bytes(chunked: bool) -> None:
    with FakeServer(answer_chars=400, chunked=chunked) as srv:
        full = srv.body_for(CHAT)
        ends = srv.event_offsets(CHAT)
        inside_char = next(i for i in range(ends[5], ends[20]) if 0x80 <= full[i] <= 0xBF)
        for at in (0, 1, ends[10], ends[10] + 7, inside_char, len(full) - 1):
            srv.set_faults([Fault.fin(at)])
            raw, error = read_all(open_request(srv, "/v1/chat/completions", CHAT))
            status, _, wire = split_head(raw)
            payload = dechunk(wire)[0] if chunked else wire
            assert error is None and status == 200, at
            assert unmask(payload, full) == full[:at], at


def test_rst_resets_the_connection_after_exactly_at_bytes(server: FakeServer) -> None:
    full = server.body_for(CHAT)
    ends = server.event_offsets(CHAT)
    for at in (ends[12] + 3, ends[-3]):
        server.set_faults([Fault.rst(at)])
        raw, error = read_all(open_request(server, "/v1/chat/completions", CHAT))
        assert isinstance(error, ConnectionResetError)
        got = unmask(dechunk(split_head(raw)[2])[0], full)
        if sys.platform.startswith("linux"):  # the server waits for the ACK of every byte before the RST
            assert got == full[:at]
        else:
            assert full.startswith(got)


def test_stall_goes_silent_after_at_bytes(server: FakeServer) -> None:
    at = server.event_offsets(CHAT)[4] + 2
    server.set_faults([Fault.stall(at)])
    sock = open_request(server, "/v1/chat/completions", CHAT, timeout=0.3)
    received = bytearray()
    with pytest.raises(socket.timeout):
        while True:
            data = sock.recv(65536)
            assert data, "the server closed a stalled connection"
            received += data
    sock.close()
    full = server.body_for(CHAT)
    assert unmask(dechunk(split_head(bytes(received))[2])[0], full) == full[:at]
    server.set_faults([Fault.stall(at, seconds=0.05)])
    raw, error = read_all(open_request(server, "/v1/chat/completions", CHAT, timeout=5))
    assert error is None and len(dechunk(split_head(raw)[2])[0]) == at  # ended after the timed stall


def test_headers_stall_sends_nothing(server: FakeServer) -> None:
    server.set_faults([Fault.headers_stall()])
    sock = open_request(server, "/v1/chat/completions", CHAT, timeout=0.2)
    with pytest.raises(socket.timeout):
        sock.recv(1)
    sock.close()


def test_wire_offsets_can_land_inside_chunk_headers(server: FakeServer) -> None:
    complete = split_head(read_all(open_request(server, "/v1/chat/completions", CHAT))[0])[2]
    ends = server.event_offsets(CHAT)
    header_start = (ends[2] + 2 * 3) + sum(len(f"{ends[i] - (ends[i - 1] if i else 0):x}\r\n") for i in range(3))
    assert complete[header_start - 2:header_start] == b"\r\n" and complete[header_start:header_start + 1] != b"\r"
    for at in (header_start + 1, header_start + len(f"{ends[3] - ends[2]:x}") + 1, len(complete) - 3):
        server.set_faults([Fault.fin(at, unit="wire")])
        raw, error = read_all(open_request(server, "/v1/chat/completions", CHAT))
        assert error is None and normalise(split_head(raw)[2]) == normalise(complete[:at]), at


def test_status_faults_carry_retry_after_and_provider_shapes(server: FakeServer) -> None:
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    server.set_faults([Fault.status(429, retry_after=3, retry_after_ms=3000, headers={"X-Extra": "1"}),
                       Fault.status(503, retry_after=date), Fault.status(500, body={"error": {"message": "own"}})])
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", "/v1/chat/completions", json.dumps(CHAT))
    first = conn.getresponse()
    error = json.loads(first.read())
    assert first.status == 429 and first.getheader("Retry-After") == "3" and first.getheader("retry-after-ms") == "3000"
    assert first.getheader("X-Extra") == "1" and set(error["error"]) >= {"message", "type", "code"}
    conn.request("POST", "/v1/messages", json.dumps(MESSAGES))
    second = conn.getresponse()
    anthropic = json.loads(second.read())
    assert second.status == 503 and second.getheader("Retry-After") == date
    assert anthropic["type"] == "error" and set(anthropic["error"]) == {"type", "message"}
    conn.request("POST", "/v1/chat/completions", json.dumps(CHAT))
    third = conn.getresponse()
    assert third.status == 500 and json.loads(third.read()) == {"error": {"message": "own"}}
    conn.request("POST", "/v1/chat/completions", json.dumps(CHAT))  # the plan is exhausted: a normal answer
    assert conn.getresponse().read().endswith(b"data: [DONE]\n\n")
    conn.close()


def test_wrong_content_type(server: FakeServer) -> None:
    server.set_faults([Fault.content_type("text/html"), Fault.content_type("application/json", body=b'{"x": 1}')])
    status, head, body = stream(server, "/v1/chat/completions", CHAT)
    assert status == 200 and head["content-type"] == "text/html" and body.startswith(b"<!DOCTYPE html>")
    status, head, body = stream(server, "/v1/chat/completions", CHAT)
    assert head["content-type"] == "application/json" and body == b'{"x": 1}'


def test_malformed_json_breaks_exactly_one_event(server: FakeServer) -> None:
    server.set_faults([Fault.malformed_json(5)])
    events = parse_sse(stream(server, "/v1/chat/completions", CHAT)[2])
    broken = []
    for index, event in enumerate(events[:-1]):
        try:
            json.loads(event["data"])
        except ValueError:
            broken.append(index)
    assert broken == [5] and events[-1]["data"] == "[DONE]"


def test_error_events_in_each_dialect(server: FakeServer) -> None:
    server.set_faults([Fault.error_event(10, message="boom"), Fault.error_event(10, message="busy"),
                       Fault.error_event(10, error_type="invalid_request_error", message="bad", retryable=False)])
    chat = parse_sse(stream(server, "/v1/chat/completions", CHAT)[2])
    assert len(chat) == 11 and json.loads(chat[-1]["data"])["error"] == {
        "message": "boom", "type": "server_error", "param": None, "code": None}
    anthropic = parse_sse(stream(server, "/v1/messages", MESSAGES)[2])
    assert len(anthropic) == 11 and anthropic[-1]["event"] == "error"
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    assert json.loads(anthropic[-1]["data"]) == error
    responses = parse_sse(stream(server, "/v1/responses", RESPONSES)[2])
    assert [e["event"] for e in responses[-2:]] == ["error", "response.failed"]
    assert json.loads(responses[-2]["data"])["code"] == "invalid_request_error"
    assert json.loads(responses[-1]["data"])["response"]["status"] == "failed"


def test_callable_plan_and_none_entries(server: FakeServer) -> None:
    def plan(request: RecordedRequest) -> Fault | None:
        return Fault.status(418) if request.body.get("user") == "teapot" else None

    server.set_faults([None, Fault.status(409)])
    assert [stream(server, "/v1/chat/completions", CHAT)[0] for _ in range(3)] == [200, 409, 200]
    server.set_faults(plan)
    assert stream(server, "/v1/chat/completions", dict(CHAT, user="teapot"))[0] == 418
    assert stream(server, "/v1/chat/completions", dict(CHAT, user="other"))[0] == 200
    with pytest.raises(TypeError):
        server.set_faults(["fin"])  # type: ignore[list-item]


# -- body shapes and connections -------------------------------------------------


def test_gzip_is_flushed_per_event_and_decompresses_to_the_payload() -> None:
    with FakeServer(answer_chars=300, gzip=True) as srv:
        status, head, wire = split_head(read_all(open_request(srv, "/v1/chat/completions", CHAT))[0])
        compressed, chunks, complete = dechunk(wire)
        assert status == 200 and head["content-encoding"] == "gzip" and complete
        decompressor = zlib.decompressobj(wbits=31)
        pieces = [decompressor.decompress(chunk) for chunk in chunks]
        assert decompressor.eof and normalise(b"".join(pieces)) == normalise(srv.body_for(CHAT))
        assert all(piece.endswith(b"\n\n") for piece in pieces[:-1])  # every chunk decodes whole events
        at = srv.event_offsets(CHAT)[7] + 3
        srv.set_faults([Fault.fin(at)])
        cut = dechunk(split_head(read_all(open_request(srv, "/v1/chat/completions", CHAT))[0])[2])[0]
        assert len(zlib.decompressobj(wbits=31).decompress(cut)) == at


def test_close_delimited_body() -> None:
    with FakeServer(answer_chars=300, chunked=False) as srv:
        raw, error = read_all(open_request(srv, "/v1/chat/completions", CHAT))
        status, head, body = split_head(raw)
        assert error is None and status == 200 and head["connection"] == "close"
        assert "transfer-encoding" not in head and "content-length" not in head
        assert normalise(body) == normalise(srv.body_for(CHAT))


def test_keepalive_comments_ride_inside_event_chunks() -> None:
    with FakeServer(answer_chars=200, keepalive_comments=True) as srv:
        _, _, wire = split_head(read_all(open_request(srv, "/v1/chat/completions", CHAT))[0])
        payload, chunks, _ = dechunk(wire)
        events = parse_sse(payload)
        assert payload.count(b": keep-alive\n\n") == len(events) // 8 > 0
        assert len(chunks) == len(events) and chat_text(events) == srv.expected_text(CHAT)
        assert srv.event_offsets(CHAT)[-1] == len(payload)


def test_keep_alive_serves_two_streams_on_one_connection(server: FakeServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    bodies, sockets = [], []
    for seed in (1, 2):
        conn.request("POST", "/v1/chat/completions", json.dumps(dict(CHAT, seed=seed)))
        response = conn.getresponse()
        bodies.append(response.read())
        sockets.append(conn.sock)
    conn.close()
    assert sockets[0] is sockets[1] is not None
    assert [chat_text(parse_sse(b)) for b in bodies] == [server.expected_text(dict(CHAT, seed=s)) for s in (1, 2)]


def test_api_key_is_required() -> None:
    with FakeServer(answer_chars=100, api_key="sk-right") as srv:
        assert stream(srv, "/v1/chat/completions", CHAT, {"Authorization": "Bearer sk-right"})[0] == 200
        status, _, body = stream(srv, "/v1/chat/completions", CHAT, {"Authorization": "Bearer sk-wrong"})
        assert status == 401 and json.loads(body)["error"]["code"] == "invalid_api_key" and b"sk-" not in body
        status, _, body = stream(srv, "/v1/messages", MESSAGES)
        assert status == 401 and json.loads(body)["error"]["type"] == "authentication_error"
        assert stream(srv, "/v1/messages", MESSAGES, {"x-api-key": "sk-right"})[0] == 200
        assert stream(srv, "/v1/models", None, {"x-api-key": "sk-right"})[0] == 401


def test_requests_are_recorded_and_errors_are_json(server: FakeServer) -> None:
    stream(server, "/v1/chat/completions?trace=1", CHAT, {"X-Custom-Thing": "yes"})
    status, _, body = stream(server, "/v1/chat/completions", b"{not json")
    assert status == 400 and "error" in json.loads(body)
    status, _, body = stream(server, "/v1/nowhere", None)
    assert status == 404 and json.loads(body)["error"]["type"] == "invalid_request_error"
    first, second, third = server.requests
    assert (first.method, first.path, first.query, first.index) == ("POST", "/v1/chat/completions", {"trace": "1"}, 0)
    assert "X-Custom-Thing" in first.headers and first.header("x-custom-thing") == "yes"
    assert first.body == CHAT and json.loads(first.raw_body) == CHAT and first.header("missing") is None
    assert second.body is None and second.raw_body == b"{not json" and second.index == 1
    assert third.method == "GET" and third.path == "/v1/nowhere"
    with pytest.raises(AttributeError):
        first.method = "GET"  # type: ignore[misc]


def test_concurrent_streams_are_each_right(server: FakeServer) -> None:
    results: dict[int, str] = {}

    def run(seed: int) -> None:
        results[seed] = chat_text(parse_sse(stream(server, "/v1/chat/completions", dict(CHAT, seed=seed))[2]))

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert all(results[s] == server.expected_text(dict(CHAT, seed=s)) for s in range(10))
    assert sorted(r.index for r in server.requests) == list(range(10))


# -- shutdown -------------------------------------------------------------------


def test_close_ends_stalls_and_delays_quickly_and_leaves_no_thread() -> None:
    baseline = threading.active_count()
    plan = {"stall": Fault.stall(10), "silent": Fault.headers_stall()}
    srv = FakeServer(answer_chars=300, token_delay=30.0, faults=lambda r: plan.get(r.body.get("user"))).start()
    stalled = open_request(srv, "/v1/chat/completions", dict(CHAT, user="stall"))
    silent = open_request(srv, "/v1/chat/completions", dict(CHAT, user="silent"))
    delayed = open_request(srv, "/v1/chat/completions", CHAT)
    assert delayed.recv(65536).startswith(b"HTTP/1.1 200")  # the first event, then a 30 s pause
    assert stalled.recv(65536).startswith(b"HTTP/1.1 200")
    idle = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    idle.request("GET", "/v1/models")
    idle.getresponse().read()  # a kept-alive idle connection
    started = time.monotonic()
    srv.close()
    assert time.monotonic() - started < 1.0
    assert threading.active_count() == baseline, threading.enumerate()
    for sock in (stalled, silent, delayed):
        sock.settimeout(2)
        rest, error = read_all(sock)
        assert not isinstance(error, socket.timeout), "the server side is gone: EOF or reset, never a hang"
    idle.close()
    srv.close()  # idempotent
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()
