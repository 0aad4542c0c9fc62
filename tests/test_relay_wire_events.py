"""The relay's per-event encoding: the fast paths write exactly what the
general ones do (a text event's JSON, a one-line SSE frame), and a browser's
decoder gets the text back unchanged."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from holysse import TextDelta, ThinkingDelta
from holysse.relay.wire_events import from_wire, relay_json, to_wire
from holysse.wire import SSEDecoder, encode_event

TRICKY = ["", "plain", 'quote " and \\ backslash', "line\nbreak\r\nand\rcr", "\x00\x1f\x7f", "é 日本 🎉",
          "\u2028\u2029\u0085", "</script>", "\ud800 lone surrogate"]


@given(text=st.one_of(st.sampled_from(TRICKY), st.text()))
def test_a_text_or_thinking_event_is_the_json_relay_json_writes(text: str) -> None:
    assert to_wire(TextDelta(text)) == ("text", relay_json({"text": text}))
    assert to_wire(ThinkingDelta(text)) == ("thinking", relay_json({"text": text}))
    _, data = to_wire(TextDelta(text))  # type: ignore[misc]
    assert "\n" not in data and "\r" not in data  # one SSE data line, always
    assert from_wire("text", data) == TextDelta(text)


@given(text=st.one_of(st.sampled_from(TRICKY), st.text()).filter(lambda t: "\ud800" not in t))
def test_a_one_line_frame_is_what_the_line_splitting_path_writes_and_decodes_back(text: str) -> None:
    data = json.dumps({"text": text}, ensure_ascii=False)
    framed = encode_event(data, event="text", id="42")
    assert framed == f"event: text\nid: 42\ndata: {data}\n\n".encode()
    [event] = SSEDecoder().feed(framed)
    assert (event.event, event.id, event.data) == ("text", "42", data)
    assert json.loads(event.data)["text"] == text


def test_multi_line_data_is_still_split_into_data_lines() -> None:
    assert encode_event("a\r\nb\rc\nd", event="e") == b"event: e\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
    assert encode_event("one line", id="1") == b"id: 1\ndata: one line\n\n"
