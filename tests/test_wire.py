"""The SSE wire layer: a WHATWG conformance table, provider streams, limits,
encode_event, and properties against an independent reference decoder.

Every table case runs three ways: the whole stream in one feed, the case's own
chunks, and one byte per feed.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import random
import re
import sys
import time
from typing import NamedTuple

import pytest
import sseclient
from hypothesis import given, settings
from hypothesis import strategies as st

import holysse.wire as wire
from holysse.exceptions import HolySSEError, ProtocolError, UsageError
from holysse.wire import ServerSentEvent, SSEDecoder, encode_event

MODES = ["whole", "chunks", "bytewise"]


def E(data: str, event: str = "message", id: str = "", retry: int | None = None) -> ServerSentEvent:
    return ServerSentEvent(event=event, data=data, id=id, retry=retry)


def split(chunks: list[bytes], mode: str) -> list[bytes]:
    stream = b"".join(chunks)
    if mode == "whole":
        return [stream]
    if mode == "bytewise":
        return [stream[i : i + 1] for i in range(len(stream))]
    return chunks


def decode(chunks: list[bytes], **kwargs: object) -> tuple[list[ServerSentEvent], SSEDecoder]:
    decoder = SSEDecoder(**kwargs)  # type: ignore[arg-type]
    events = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events, decoder


def reference(stream: bytes) -> tuple[list[ServerSentEvent], str, int | None]:
    """A direct reading of the WHATWG algorithm on the whole stream, as text:
    (events, last event ID, reconnection time) after EOF."""
    text = stream.decode("utf-8", "replace")
    text = text[1:] if text.startswith("\ufeff") else text
    lines = re.split("\r\n|\r|\n", text)[:-1]  # the last piece has no line end: discarded
    events: list[ServerSentEvent] = []
    data: list[str] = []
    event_type, id_buffer, last_id, block_retry, reconnect = "", "", "", None, None
    for line in lines:
        if line == "":
            last_id = id_buffer
            if block_retry is not None:
                reconnect = block_retry
            if data:
                events.append(E("\n".join(data), event_type or "message", last_id, block_retry))
            data, event_type, block_retry = [], "", None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            event_type = value
        elif name == "id" and "\0" not in value:
            id_buffer = value
        elif name == "retry" and value and all("0" <= c <= "9" for c in value):
            block_retry = min(int(value), sys.maxsize) if len(value) < 1000 else sys.maxsize
    return events, last_id, reconnect


class Case(NamedTuple):
    chunks: list[bytes]
    events: list[ServerSentEvent]
    last_id: str = ""
    reconnect: int | None = None


LONG = b"x" * 2048

CASES = {
    # -- fields ----------------------------------------------------------------
    "simple": Case([b"data: hel", b"lo\n\n"], [E("hello")]),
    "data-no-space": Case([b"data:hello\n", b"\n"], [E("hello")]),
    "data-one-space-removed": Case([b"data:  two\n\n"], [E(" two")]),
    "data-multi-line": Case([b"data: a\nda", b"ta: b\ndata:\n\n"], [E("a\nb\n")]),
    "wpt-field-data": Case([b"data:\n\ndata\ndata\n\ndata:test"], [E(""), E("\n")]),
    "data-colonless-is-empty-value": Case([b"data\n\n"], [E("")]),
    "data-nul": Case([b"data:\x00\n\n"], [E("\x00")]),
    "data-value-keeps-colons": Case([b"data: a: b:c\n\n"], [E("a: b:c")]),
    "event-type-and-reset": Case(
        [b"event: add\ndata: 1\n\n", b"data: 2\n\n"], [E("1", "add"), E("2")]
    ),
    "event-empty-is-message": Case([b"event: \ndata: x\n\nevent\ndata: y\n\n"], [E("x"), E("y")]),
    "event-last-wins": Case([b"event: a\nevent: b\ndata: x\n\n"], [E("x", "b")]),
    "event-without-data-not-dispatched": Case([b"event: add\n\ndata: x\n\n"], [E("x")]),
    "unknown-fields-ignored": Case(
        [b"foo: bar\nDATA: 1\nData: 2\n data: 3\ndata : 4\neventx: 5\ndata: ok\n\n"], [E("ok")]
    ),
    "comments": Case([b": hi\ndata: 1\n:data: no\n\n", b":\n\n"], [E("1")]),
    "wpt-comments": Case(
        [
            b"data:1\r:\x00\n:\r\ndata:2\n:" + LONG[:700],
            LONG[700:] + b"\rdata:3\n:data:fail\r:" + LONG + b"\ndata:4\n",
            b"\n",
        ],
        [E("1\n2\n3\n4")],
    ),
    "wpt-lines-and-data": Case(
        [b"data:msg\ndata:msg\n\n:\nfalsedata:msg\n\n:\ndata:\n\n:\ndata:end\n\n"],
        [E("msg\nmsg"), E(""), E("end")],
    ),
    "blank-lines-between-blocks": Case([b"\n\n\ndata: 1\n\n\n\n\ndata: 2\n\n\n"], [E("1"), E("2")]),
    # -- BOM ---------------------------------------------------------------------
    "bom": Case([b"\xef\xbb\xbfdata: 1\n\n"], [E("1")]),
    "bom-split": Case([b"\xef", b"\xbb", b"\xbf", b"data: 1\n\n"], [E("1")]),
    "wpt-bom-double": Case(
        [b"\xef\xbb\xbf\xef\xbb\xbfdata:1\n\ndata:2\n\ndata:3"], [E("2")]
    ),
    "bom-prefix-only": Case([b"\xef\xbb", b"data: 1\n\ndata: 2\n\n"], [E("2")]),
    "bom-inside-data-kept": Case([b"data: \xef\xbb\xbfx\n\n"], [E("\ufeffx")]),
    # -- line ends ---------------------------------------------------------------
    "crlf": Case([b"data: a\r\ndata: b\r\n\r\n"], [E("a\nb")]),
    "cr": Case([b"data: a\rdata: b\r\r"], [E("a\nb")]),
    "mixed": Case([b"data: a\r\ndata: b\rdata: c\n\r\n"], [E("a\nb\nc")]),
    "lf-crlf-is-blank-line": Case([b"data: 1\n\r\ndata: 2\n\n"], [E("1"), E("2")]),
    "cr-crlf-is-blank-line": Case([b"data: 1\r\r\ndata: 2\r\n\r\n"], [E("1"), E("2")]),
    "crlf-split-across-feeds": Case(
        [b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"], [E("a\nb")]
    ),
    "cr-then-cr-across-feeds": Case([b"data: a\r", b"\r", b"data: b\r", b"\r\n"], [E("a"), E("b")]),
    "cr-feed-then-lf-feed-alone": Case([b"data: a\n", b"\r", b"\n", b"data: b\n\n"], [E("a"), E("b")]),
    "not-line-ends": Case(
        [b"data: a\xe2\x80\xa8b\xc2\x85c\x0bd\x0ce\x1cf\x1dg\x1eh\xe2\x80\xa9i\n\n"],
        [E("a\u2028b\x85c\x0bd\x0ce\x1cf\x1dg\x1eh\u2029i")],
    ),
    # -- UTF-8 -------------------------------------------------------------------
    "utf8": Case([b"data: ok\xe2\x80\xa6\n\n"], [E("ok\u2026")]),
    "utf8-split-multibyte": Case(
        [b"data: \xe2", b"\x82", b"\xac \xf0\x9f", b"\x98\x80\n\n"], [E("\u20ac \U0001f600")]
    ),
    "utf8-invalid-byte": Case([b"data: a\xffb\n\n"], [E("a\ufffdb")]),
    "utf8-truncated-sequence": Case([b"data: \xe2\x82\n\n"], [E("\ufffd")]),
    "utf8-truncated-at-eol-then-valid": Case([b"data: \xf0\x9f\ndata: \xc3\xa9\n\n"], [E("\ufffd\n\u00e9")]),
    "utf8-surrogate-and-overlong": Case(
        [b"data: \xed\xa0\x80|\xc0\xaf\n\n"], [E("\ufffd\ufffd\ufffd|\ufffd\ufffd")]
    ),
    "utf8-invalid-in-one-event-only": Case(
        [b"data: 1\n\nevent: \xff\ndata: 2\n\nid: \xfe\ndata: 3\n\n"],
        [E("1"), E("2", "\ufffd"), E("3", id="\ufffd")],
        last_id="\ufffd",
    ),
    # -- id ----------------------------------------------------------------------
    "wpt-id-persists": Case([b"id: 1\ndata: 1\n\ndata: 2\n\n"], [E("1", id="1"), E("2", id="1")], "1"),
    "wpt-id-changes": Case(
        [b"id: 1\ndata: 1\n\nid: 2\ndata:2\n\ndata:3\n\n"],
        [E("1", id="1"), E("2", id="2"), E("3", id="2")],
        "2",
    ),
    "wpt-id-resets": Case(
        [b"id: 1\ndata: 1\n\nid:\ndata:2\n\ndata:3\n\n"],
        [E("1", id="1"), E("2"), E("3")],
    ),
    "id-colonless-resets": Case([b"id: 1\n\nid\ndata: x\n\n"], [E("x")]),
    "id-only-block-updates-last-id": Case([b"id: 7\n\n"], [], "7"),
    "id-only-block-then-event": Case([b"id: 7\n\ndata: x\n\n"], [E("x", id="7")], "7"),
    "id-after-data-in-block": Case([b"data: x\nid: 3\n\n"], [E("x", id="3")], "3"),
    "wpt-id-nul-ignored": Case([b"id: \x00\x00\ndata: hello\n\n"], [E("hello")]),
    "id-nul-keeps-previous": Case(
        [b"id: 1\ndata: a\n\nid: 2\x00\ndata: b\n\n"], [E("a", id="1"), E("b", id="1")], "1"
    ),
    "id-nul-last-line-earlier-valid": Case([b"id: 5\nid: 6\x00\ndata: x\n\n"], [E("x", id="5")], "5"),
    "id-keeps-spaces-after-the-first": Case([b"id:  a b \ndata: x\n\n"], [E("x", id=" a b ")], " a b "),
    # -- retry -------------------------------------------------------------------
    "retry": Case([b"retry: 3000\ndata: x\n\ndata: y\n\n"], [E("x", retry=3000), E("y")], reconnect=3000),
    "retry-zero-and-leading-zeros": Case(
        [b"retry: 0\ndata: a\n\nretry: 007\ndata: b\n\n"], [E("a", retry=0), E("b", retry=7)], reconnect=7
    ),
    "retry-only-block": Case([b"retry: 500\n\ndata: x\n\n"], [E("x")], reconnect=500),
    "wpt-retry-bogus-after-valid": Case(
        [b"retry:2000\nretry:1000x\ndata:x\n\n"], [E("x", retry=2000)], reconnect=2000
    ),
    "retry-valid-after-bogus": Case([b"retry: +5\nretry: 40\ndata: x\n\n"], [E("x", retry=40)], reconnect=40),
    "retry-huge-is-clamped": Case(
        [b"retry: " + b"9" * 5000 + b"\ndata: x\n\n"], [E("x", retry=sys.maxsize)], reconnect=sys.maxsize
    ),
    # -- EOF ---------------------------------------------------------------------
    "eof-discards-unterminated": Case([b"data: x\nid: 9\nretry: 100\n"], []),
    "eof-discards-unterminated-line": Case([b"data: x"], []),
    "wpt-data-before-final-empty-line": Case(
        [b"retry:1000\ndata:test1\n\nid:test\ndata:test2"], [E("test1", retry=1000)], reconnect=1000
    ),
}

# int() accepts the first five; also: empty, sign, decimals, hex, NUL, fullwidth and superscript digits
BOGUS_RETRIES = [
    b"+5", b"1_000", b"\xd9\xa3", b" 5", b"5 ", b"", b"-1", b"1.5", b"0x10", b"5\x00", b"\xef\xbc\x95", b"\xc2\xb2"
]
for _value in BOGUS_RETRIES:
    CASES[f"retry-bogus-{_value!r}"] = Case(
        [b"retry: 10\n\nretry: " + _value + b"\ndata: x\n\n"], [E("x")], reconnect=10
    )


def _provider_streams() -> dict[str, Case]:
    streams: dict[str, Case] = {}

    # OpenAI chat completions: one JSON chunk per event, then [DONE].
    def chunk(delta: dict[str, str], finish: str | None = None) -> dict[str, object]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {"id": "c1", "object": "chat.completion.chunk", "choices": [choice]}

    chat = [chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"})]
    chat += [chunk({"content": "lo\n\nwörld"}), chunk({}, "stop")]
    payloads = [json.dumps(c, ensure_ascii=False) for c in chat] + ["[DONE]"]
    body = b"".join(b"data: " + p.encode() + b"\n\n" for p in payloads)
    streams["openai-chat"] = Case([body[:37], body[37:38], body[38:200], body[200:]], [E(p) for p in payloads])

    # Anthropic Messages: named events, a ping, message_stop at the end.
    def delta(text: str) -> tuple[str, dict[str, object]]:
        return "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"text": text}}

    anthropic = [
        ("message_start", {"type": "message_start", "message": {"id": "msg_1", "role": "assistant"}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"text": ""}}),
        ("ping", {"type": "ping"}),
        delta("Hi"),
        delta(" there"),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    body = b"".join(f"event: {name}\ndata: {json.dumps(obj)}\n\n".encode() for name, obj in anthropic)
    cuts = [0, 13, 14, 15, 160, 161, 400, len(body)]
    streams["anthropic"] = Case(
        [body[a:b] for a, b in zip(cuts, cuts[1:])], [E(json.dumps(obj), name) for name, obj in anthropic]
    )

    # OpenRouter: keep-alive comments before and between chunks.
    body = (
        b": OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\n"
        + b'data: {"choices":[{"delta":{"content":"A"}}]}\n\n'
        + b": OPENROUTER PROCESSING\n\n"
        + b'data: {"choices":[{"delta":{"content":"B"}}]}\n\ndata: [DONE]\n\n'
    )
    streams["openrouter-keepalive"] = Case(
        [body[:10], body[10:60], body[60:]],
        [E('{"choices":[{"delta":{"content":"A"}}]}'), E('{"choices":[{"delta":{"content":"B"}}]}'), E("[DONE]")],
    )

    # Gemini (OpenAI-compatible endpoint) sends CRLF line ends; cut inside CRLF.
    gem = ['{"candidates":[{"content":{"parts":[{"text":"x"}]}}]}', '{"candidates":[{"finishReason":"STOP"}]}']
    body = b"".join(b"data: " + g.encode() + b"\r\n\r\n" for g in gem)
    first_cr = body.index(b"\r")
    streams["gemini-crlf"] = Case(
        [body[: first_cr + 1], body[first_cr + 1 : first_cr + 3], body[first_cr + 3 :]], [E(g) for g in gem]
    )

    # OpenAI Responses: named events with a sequence of ids and a server retry.
    body = (
        b"retry: 2500\n\n"
        b'id: 1\nevent: response.created\ndata: {"type":"response.created"}\n\n'
        b'id: 2\nevent: response.output_text.delta\ndata: {"delta":"Hi"}\n\n'
        b'id: 3\nevent: response.completed\ndata: {"type":"response.completed"}\n\n'
    )
    streams["responses-with-ids"] = Case(
        [body[:5], body[5:90], body[90:]],
        [
            E('{"type":"response.created"}', "response.created", "1"),
            E('{"delta":"Hi"}', "response.output_text.delta", "2"),
            E('{"type":"response.completed"}', "response.completed", "3"),
        ],
        last_id="3",
        reconnect=2500,
    )
    return streams


CASES.update(_provider_streams())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(CASES))
def test_conformance(name: str, mode: str) -> None:
    case = CASES[name]
    events, decoder = decode(split(case.chunks, mode))
    assert events == case.events
    assert decoder.close() == []
    assert decoder.last_event_id == case.last_id
    assert decoder.reconnection_time == case.reconnect


@pytest.mark.parametrize("name", list(CASES))
def test_table_agrees_with_reference(name: str) -> None:
    """The hand-written expectations and the reference decoder agree, so the
    property tests below compare against a trustworthy oracle."""
    case = CASES[name]
    assert reference(b"".join(case.chunks)) == (case.events, case.last_id, case.reconnect)


# -- API details ------------------------------------------------------------------


def test_server_sent_event_is_frozen_with_defaults() -> None:
    event = ServerSentEvent()
    assert (event.event, event.data, event.id, event.retry) == ("message", "", "", None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.data = "x"  # type: ignore[misc]
    decoded = SSEDecoder().feed(b"data: x\n\n")[0]
    assert decoded == E("x") and hash(decoded) == hash(E("x"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        decoded.data = "y"  # type: ignore[misc]


@pytest.mark.parametrize("mode", MODES)
def test_pending_bytes(mode: str) -> None:
    decoder = SSEDecoder()
    assert decoder.pending_bytes == 0
    for chunk in split([b"data: ab"], mode):
        decoder.feed(chunk)
    assert decoder.pending_bytes == 8
    for chunk in split([b"\r\n\r\n\n\n"], mode):
        decoder.feed(chunk)
    assert decoder.pending_bytes == 0
    decoder.feed(b"id: 1\n")
    assert decoder.pending_bytes == 6


def test_close_discards_pending_block_and_later_feed_is_a_usage_error() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 1\ndata: a\n\nid: 2\nretry: 9\ndata: b\n") == [E("a", id="1")]
    assert decoder.close() == []
    assert (decoder.last_event_id, decoder.reconnection_time, decoder.pending_bytes) == ("1", None, 0)
    assert decoder.close() == []  # idempotent
    with pytest.raises(UsageError, match="close"):
        decoder.feed(b"\n")
    assert issubclass(UsageError, RuntimeError)


def test_last_event_id_can_be_seeded_for_a_reconnect() -> None:
    decoder = SSEDecoder(last_event_id="41")
    assert decoder.feed(b"data: a\n\nid: 42\ndata: b\n\n") == [E("a", id="41"), E("b", id="42")]


def test_empty_and_non_bytes_feeds() -> None:
    decoder = SSEDecoder()
    buffer = bytearray(b"data: abc")
    assert decoder.feed(b"") == [] and decoder.feed(buffer) == []
    buffer[:] = b"XXXXXXXXX"  # the decoder must not keep the caller's buffer
    assert decoder.feed(memoryview(b"\n\n")) == [E("abc")]


# -- limits -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("line_end", [b"\n", b"\r\n", b"\r"])
def test_max_event_bytes(mode: str, line_end: bytes) -> None:
    # The block "data: xxxx" + one line end is 11 bytes once line ends are LF.
    stream = [b"data: 1" + line_end * 2, b"data: xxxx" + line_end * 2]
    events, _ = decode(split(stream, mode), max_event_bytes=11)
    assert events == [E("1"), E("xxxx")]
    with pytest.raises(ProtocolError, match=r"max_event_bytes=10\b.*SSEDecoder\(max_event_bytes=") as info:
        decode(split(stream, mode), max_event_bytes=10)
    assert isinstance(info.value, HolySSEError)


@pytest.mark.parametrize("mode", MODES)
def test_max_event_bytes_counts_all_lines_of_the_block(mode: str) -> None:
    stream = [b"event: e\nid: 1\ndata: a\ndata: b\n\n"]  # 9 + 6 + 8 + 8 = 31 bytes
    assert decode(split(stream, mode), max_event_bytes=31)[0] == [E("a\nb", "e", "1")]
    with pytest.raises(ProtocolError, match="max_event_bytes"):
        decode(split(stream, mode), max_event_bytes=30)


@pytest.mark.parametrize("mode", MODES)
def test_max_event_bytes_fails_before_the_block_ends(mode: str) -> None:
    decoder = SSEDecoder(max_event_bytes=100)
    with pytest.raises(ProtocolError, match="max_event_bytes"):
        for chunk in split([b"data: " + b"x" * 50 + b"\n"] * 3, mode):
            decoder.feed(chunk)
    with pytest.raises(UsageError):  # a failed decoder is closed
        decoder.feed(b"\n")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("where", ["first", "middle", "last", "unterminated"])
def test_max_line_bytes(mode: str, where: str) -> None:
    long_line = b"data: " + b"y" * 14  # 20 bytes
    lines = {
        "first": [long_line, b"data: a", b"", b""],
        "middle": [b"data: a", long_line, b"data: b", b"", b""],
        "last": [b"data: a", b"", b"data: b", long_line, b"", b""],
        "unterminated": [b"data: a", b"", long_line],
    }[where]
    stream = [b"\n".join(lines)]
    assert decode(split(stream, mode), max_line_bytes=20)[0] == reference(stream[0])[0]
    with pytest.raises(ProtocolError, match=r"max_line_bytes=19\b.*SSEDecoder\(max_line_bytes="):
        decode(split(stream, mode), max_line_bytes=19)


def test_max_line_bytes_defaults_to_max_event_bytes() -> None:
    with pytest.raises(ProtocolError, match="max_line_bytes"):
        SSEDecoder(max_event_bytes=1000).feed(b"data: " + b"z" * 2000)


# -- encode_event -----------------------------------------------------------------


def test_encode_event_format() -> None:
    assert encode_event("a\r\nb\rc\nd", event="delta", id="7", retry=1500) == (
        b"event: delta\nid: 7\nretry: 1500\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
    )
    assert encode_event("") == b"data: \n\n"
    assert encode_event(" x", id="") == b"id: \ndata:  x\n\n"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"event": "a\nb"},
        {"event": "a\rb"},
        {"id": "1\n"},
        {"id": "\r1"},
        {"id": "1\x00"},
        {"retry": -1},
        {"retry": True},
        {"retry": 1.5},
    ],
)
def test_encode_event_refuses_unsafe_fields(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        encode_event("x", **kwargs)  # type: ignore[arg-type]


def test_encode_event_data_cannot_inject_fields() -> None:
    payload = "x\n\nevent: evil\nid: 666\nretry: 1\ndata: y\r\rdata: z"
    events, decoder = decode([encode_event(payload)])
    assert events == [E("x\n\nevent: evil\nid: 666\nretry: 1\ndata: y\n\ndata: z")]
    assert (decoder.last_event_id, decoder.reconnection_time) == ("", None)


def _normalised(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


no_crlf = st.text().filter(lambda s: "\r" not in s and "\n" not in s)
event_item = st.tuples(
    st.text(),
    st.none() | no_crlf,
    st.none() | no_crlf.filter(lambda s: "\0" not in s),
    st.none() | st.integers(0, 10**12),
)


@settings(max_examples=150, deadline=None)
@given(items=st.lists(event_item, min_size=1, max_size=5), cuts=st.lists(st.integers(0, 10**6), max_size=8))
def test_encode_event_round_trip(
    items: list[tuple[str, str | None, str | None, int | None]], cuts: list[int]
) -> None:
    body = b"".join(encode_event(data, event=event, id=id, retry=retry) for data, event, id, retry in items)
    points = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    events, decoder = decode([body[a:b] for a, b in zip(points, points[1:])])
    expected, last_id, reconnect = [], "", None
    for data, event, id, retry in items:
        last_id = id if id is not None else last_id
        reconnect = retry if retry is not None else reconnect
        expected.append(E(_normalised(data), event or "message", last_id, retry))
    assert events == expected
    assert (decoder.last_event_id, decoder.reconnection_time) == (last_id, reconnect)


# -- properties against the reference decoder -------------------------------------------

TOKENS = [
    b"data", b"data:", b"data: ", b"id", b"id:", b"event", b"event:", b"retry:", b"retry", b"eventx",
    b":", b" ", b"\r", b"\n", b"\n", b"\r\n", b"\n\n", b"\x00", b"5", b"12", b"+", b"_", b"x", b"message",
    b"\xef\xbb\xbf", b"\xe2\x80", b"\xa8", b"\xff", b"\xd9\xa3", b"\xc2\x85", b"\x0b", b"\xf0\x9f\x98", b"\x80",
]
streams = st.lists(st.sampled_from(TOKENS), max_size=60).map(b"".join)


def _run_all(chunks: list[bytes]) -> tuple[list[ServerSentEvent], str, int | None]:
    events, decoder = decode(chunks)
    assert decoder.close() == []
    return events, decoder.last_event_id, decoder.reconnection_time


@settings(max_examples=300, deadline=None)
@given(stream=streams, cuts=st.lists(st.integers(0, 400), max_size=10))
def test_matches_reference_in_any_chunking(stream: bytes, cuts: list[int]) -> None:
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    expected = reference(stream)
    assert _run_all([stream[a:b] for a, b in zip(points, points[1:])]) == expected
    assert _run_all([stream[i : i + 1] for i in range(len(stream))]) == expected


@settings(max_examples=100, deadline=None)
@given(stream=streams, limit=st.integers(1, 40), chunk=st.integers(1, 7))
def test_limits_do_not_depend_on_chunking(stream: bytes, limit: int, chunk: int) -> None:
    outcomes: list[object] = []
    for chunks in ([stream], [stream[i : i + chunk] for i in range(0, len(stream), chunk)]):
        for kwargs in ({"max_event_bytes": limit}, {"max_event_bytes": 10**6, "max_line_bytes": limit}):
            try:
                outcomes.append(_run_all(chunks))
            except ProtocolError as exc:
                outcomes.append(str(exc).split("=")[0])
    assert outcomes[:2] == outcomes[2:]


def _big_block(rng: random.Random, size: int) -> bytes:
    """A long block of random field lines (data lines of many lengths, event,
    id and retry lines valid or not, comments), without its blank line."""
    lines: list[bytes] = []
    while sum(map(len, lines)) < size:
        kind = rng.random()
        if kind < 0.6:
            lines.append(b"data: " + b"d" * rng.choice([0, 1, 30, 200, 3000]))
        elif kind < 0.7:
            lines.append(rng.choice([b"event: e%d" % rng.randint(0, 9), b"event:", b"event", b"event: message"]))
        elif kind < 0.8:
            lines.append(rng.choice([b"id: %d" % rng.randint(0, 99), b"id: 1\x002", b"id"]))
        elif kind < 0.9:
            retries = [b"retry: %d" % rng.randint(0, 99), b"retry: +1", b"retry: \xd9\xa3", b"retry"]
            lines.append(rng.choice(retries))
        else:
            lines.append(rng.choice([b": comment", b"junk: 1", b"data: \xff\xfe", b""]))
    return b"\n".join(lines)


@pytest.mark.parametrize("seed", range(6))
def test_big_blocks_match_reference(seed: int) -> None:
    """Blocks far over the sizes sseclient gets in one piece are parsed in
    slices; the merged result must still follow the WHATWG rules."""
    rng = random.Random(seed)
    stream = b"".join(
        _big_block(rng, rng.choice([100, 30_000, 150_000])) + rng.choice([b"\n\n", b"\r\n\r\n", b"\r\r"])
        for _ in range(4)
    )
    chunk = rng.choice([1024, 65536])
    chunks = [stream[i : i + chunk] for i in range(0, len(stream), chunk)]
    assert _run_all(chunks) == reference(stream)
    assert _run_all([stream]) == reference(stream)


@pytest.mark.parametrize("seed", range(4))
def test_big_blocks_of_data_lines_only_match_reference(seed: int) -> None:
    """Big events made only of data lines skip sseclient's per-line work; the
    result must still be the WHATWG one (one space removed, bare ``data``,
    invalid UTF-8, any line ending)."""
    rng = random.Random(seed)
    shapes = [b"data: plain", b"data:no space", b"data:  two spaces", b"data", b"data: \xff\xfe bad",
              b"data: \xe6\x9d\xb1\xe4\xba\xac", b"data: :colon", b"data:"]
    ending = rng.choice([b"\n", b"\r\n", b"\r"])
    block = ending.join(rng.choice(shapes) for _ in range(3000))
    stream = b"id: 7\n\n" + block + ending * 2 + b"data: after\n\n"
    chunk = rng.choice([700, 1024, 65536])
    chunks = [stream[i : i + chunk] for i in range(0, len(stream), chunk)]
    assert _run_all(chunks) == reference(stream)
    events = _run_all(chunks)[0]
    assert len(events) == 2 and events[0].id == "7" and events[1].data == "after"


@pytest.mark.parametrize("shape", ["many-lines", "one-line"])
def test_decoding_a_big_event_is_linear(shape: str) -> None:
    """4 MB vs 400 KB, fed in 1 KiB chunks: linear is about 10x (a bit more
    as 4 MB falls out of the caches), quadratic about 100x."""

    def chunks(size: int) -> list[bytes]:
        if shape == "one-line":
            body = b"data: " + b"y" * size + b"\n\n"
        else:
            body = (b"data: " + b"x" * 94 + b"\n") * (size // 101) + b"\n"
        return [body[i : i + 1024] for i in range(0, len(body), 1024)]

    def seconds(feeds: list[bytes]) -> float:
        start = time.thread_time()  # CPU time of this thread: other load does not count
        events, _ = decode(feeds)
        elapsed = time.thread_time() - start
        assert len(events) == 1
        return elapsed

    small, big = chunks(400_000), chunks(4_000_000)
    seconds(small)  # warm up
    best_small = best_big = float("inf")
    for _ in range(5):  # best of 5, interleaved so that load changes hit both
        best_small = min(best_small, seconds(small))
        best_big = min(best_big, seconds(big))
    ratio = best_big / best_small
    assert ratio < 30, f"4 MB took {ratio:.1f}x the time of 400 KB: not linear"


def test_sseclient_is_imported_by_wire_only() -> None:
    package = pathlib.Path(wire.__file__).parent
    importers = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if re.search(r"^\s*(import|from)\s+sseclient\b", path.read_text(encoding="utf-8"), re.M)
    )
    assert importers == ["wire.py"]
    assert issubclass(wire._BatchParser, sseclient.SSEClient)
