"""Property-based tests of the SSE decoder (hypothesis).

1. Random event streams, built as values (unicode data, empty data,
   multi-line data, event types, ids with and without NUL, valid and bogus
   ``retry``, comments, unknown fields, blocks without data, blank lines
   between blocks, an unterminated block at EOF), are written with random
   line ends (LF, CR, CRLF, mixed per line), an optional BOM, and split at
   random byte positions: the decoder yields exactly the events the values
   say, and ends with the expected last event ID and reconnection time.
2. Arbitrary bytes, split anywhere, with random limits, never raise anything
   but the documented :class:`ProtocolError` (then the decoder is closed:
   :class:`UsageError`), and every event is well formed.

The default run keeps example counts small; ``pytest --runslow`` runs the
same properties with many more examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from holysse.exceptions import ProtocolError, UsageError
from holysse.wire import ServerSentEvent, SSEDecoder

DEFAULT_EXAMPLES = 200
SLOW_EXAMPLES = 20_000

# -- the model: a stream as values -------------------------------------------------

#: Characters that must stay inside a line: the decoder splits only on CR and LF.
TRICKY = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x00", "\ufeff", ":", " ", "\t", "é", "😀", "\ufffd"]
line_text = st.text(
    alphabet=st.one_of(st.characters(codec="utf-8", exclude_characters="\r\n"), st.sampled_from(TRICKY)),
    max_size=12,
)
digits = st.integers(0, 10**15).map(str)
bogus_retry = st.sampled_from(["+5", "1_000", "\u0663", "5x", "", " 5", "-1", "0x10", "1.5", "\uff15"])
unknown_name = st.sampled_from(["foo", "Data", "ID", "dat", "eventx", "retry2", "x y", "\u00e9"])


@dataclass(frozen=True)
class Line:
    """One field or comment line: ``name`` is ``""`` for a comment."""

    name: str
    value: str
    colon: str = ": "  # ": ", ":" or "" (a colonless line: empty value)

    def encode(self) -> str:
        if not self.name:
            return ":" + self.value
        if self.colon == "" and self.value == "":
            return self.name
        colon = ":" if self.colon == ":" and not self.value.startswith(" ") else ": "
        return self.name + colon + self.value


def _line(name: str, value: st.SearchStrategy[str]) -> st.SearchStrategy[Line]:
    return st.builds(Line, st.just(name), value, st.sampled_from([": ", ":", ""]))


field_line = st.one_of(
    _line("data", line_text),
    _line("data", line_text),
    _line("event", line_text),
    _line("id", line_text),
    _line("retry", st.one_of(digits, bogus_retry)),
    st.builds(Line, st.just(""), line_text),
    st.builds(Line, unknown_name, line_text),
)
block = st.lists(field_line, max_size=6)


@dataclass
class Expected:
    events: list[ServerSentEvent]
    last_id: str
    reconnect: int | None


def expected(blocks: list[list[Line]]) -> Expected:
    """What the WHATWG rules make of complete ``blocks``, read from the values."""
    events, id_buffer, reconnect = [], "", None
    for lines in blocks:
        data, event_type, retry = [], "", None
        for line in lines:
            value = "" if line.colon == "" and line.value == "" else line.value
            if line.name == "data":
                data.append(value)
            elif line.name == "event":
                event_type = value
            elif line.name == "id" and "\0" not in value:
                id_buffer = value
            elif line.name == "retry" and value.isascii() and value.isdigit():
                retry = reconnect = int(value)
        if data:
            events.append(ServerSentEvent(event_type or "message", "\n".join(data), id_buffer, retry))
    return Expected(events, id_buffer, reconnect)


ENDINGS = {"lf": ["\n"], "cr": ["\r"], "crlf": ["\r\n"], "mixed": ["\n", "\r", "\r\n"]}


def write(blocks: list[list[Line]], tail: list[Line], endings: list[str], blank_runs: list[int],
          bom: bool) -> bytes:
    """The stream's bytes: each block's lines then a blank line (sometimes
    more), then ``tail`` unterminated. ``endings`` gives the line end of
    each line in turn (cycled)."""
    out: list[str] = ["\ufeff"] if bom else []
    previous = ""
    count = 0

    def end_line(text: str) -> None:
        nonlocal previous, count
        ending = endings[count % len(endings)]
        count += 1
        if text == "" and previous == "\r" and ending == "\n":
            ending = "\r\n"  # CR then a lone LF would read as one CRLF line end
        out.append(text + ending)
        previous = ending

    for lines, blanks in zip(blocks, blank_runs):
        for line in lines:
            end_line(line.encode())
        for _ in range(blanks):
            end_line("")
    for number, line in enumerate(tail):
        if number < len(tail) - 1:
            end_line(line.encode())
        else:
            out.append(line.encode())  # the last line of the tail has no line end
    return "".join(out).encode("utf-8")


def split(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(stream) + 1) for cut in cuts} | {0, len(stream)})
    return [stream[a:b] for a, b in zip(points, points[1:])]


def decode_all(chunks: list[bytes], **limits: int) -> tuple[list[ServerSentEvent], SSEDecoder]:
    decoder = SSEDecoder(**limits)
    events = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    assert decoder.close() == []
    return events, decoder


@st.composite
def encoded_streams(draw: st.DrawFn) -> tuple[bytes, Expected]:
    blocks = draw(st.lists(block, max_size=8))
    tail = draw(st.lists(field_line, max_size=3))
    style = draw(st.sampled_from(sorted(ENDINGS)))
    endings = draw(st.lists(st.sampled_from(ENDINGS[style]), min_size=1, max_size=24))
    blank_runs = draw(st.lists(st.sampled_from([1, 1, 1, 2, 3]), min_size=len(blocks), max_size=len(blocks)))
    stream = write(blocks, tail, endings, blank_runs, draw(st.booleans()))
    return stream, expected(blocks)


def check_round_trip(case: tuple[bytes, Expected], cuts: list[int]) -> None:
    stream, want = case
    for chunks in (split(stream, cuts), [stream]):
        events, decoder = decode_all(chunks)
        assert events == want.events
        assert (decoder.last_event_id, decoder.reconnection_time) == (want.last_id, want.reconnect)


# -- arbitrary bytes ------------------------------------------------------------------

noise = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from([b"data:", b"id: 1", b"retry: 9", b"\r", b"\n", b"\r\n", b"\xef\xbb\xbf", b":",
                              b"\xff", b"\xf0\x9f", b"x" * 40, b"event: e", b"\x00"]), max_size=40).map(b"".join),
)
limits = st.fixed_dictionaries({}, optional={"max_event_bytes": st.integers(1, 200),
                                             "max_line_bytes": st.integers(1, 100)})


def check_never_raises_other_errors(stream: bytes, cuts: list[int], kwargs: dict[str, int]) -> None:
    decoder = SSEDecoder(**kwargs)
    for chunk in split(stream, cuts):
        try:
            events = decoder.feed(chunk)
        except ProtocolError as exc:
            assert "max_" in str(exc)
            with pytest.raises(UsageError):
                decoder.feed(b"data: more\n\n")
            return
        for event in events:
            assert isinstance(event, ServerSentEvent)
            assert all(isinstance(part, str) for part in (event.event, event.data, event.id))
            assert "\r" not in event.data and "\0" not in event.id
            assert event.retry is None or event.retry >= 0
    assert decoder.close() == []


# -- the tests: default counts, and the slow profile -------------------------------------

_common = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
_cuts = st.lists(st.integers(0, 10**6), max_size=12)


def round_trip(examples: int) -> Callable[..., None]:
    @settings(max_examples=examples, **_common)  # type: ignore[arg-type]
    @given(case=encoded_streams(), cuts=_cuts)
    def test(case: tuple[bytes, Expected], cuts: list[int]) -> None:
        check_round_trip(case, cuts)

    return test


def noise_only_raises_protocol_error(examples: int) -> Callable[..., None]:
    @settings(max_examples=examples, **_common)  # type: ignore[arg-type]
    @given(stream=noise, cuts=_cuts, kwargs=limits)
    def test(stream: bytes, cuts: list[int], kwargs: dict[str, int]) -> None:
        check_never_raises_other_errors(stream, cuts, kwargs)

    return test


test_encoded_events_decode_exactly = round_trip(DEFAULT_EXAMPLES)
test_arbitrary_bytes_raise_only_protocol_error = noise_only_raises_protocol_error(DEFAULT_EXAMPLES)
test_encoded_events_decode_exactly_long = pytest.mark.slow(round_trip(SLOW_EXAMPLES))
test_arbitrary_bytes_raise_only_protocol_error_long = pytest.mark.slow(noise_only_raises_protocol_error(SLOW_EXAMPLES))


def test_the_model_itself_on_known_cases() -> None:
    """The expected-value function against hand-checked streams, so a wrong
    model cannot make the property pass vacuously."""
    blocks = [[Line("id", "7"), Line("data", "a"), Line("data", "", "")], [Line("retry", "+5"), Line("event", "")],
              [Line("id", "x\0y"), Line("retry", "12"), Line("data", " b", ":"), Line("event", "e")]]
    want = expected(blocks)
    assert want.events == [ServerSentEvent("message", "a\n", "7"), ServerSentEvent("e", " b", "7", 12)]
    assert (want.last_id, want.reconnect) == ("7", 12)
    stream = write(blocks, [Line("data", "lost")], ["\r"], [1, 1, 2], True)
    assert stream == b"\xef\xbb\xbfid: 7\rdata: a\rdata\r\rretry: +5\revent: \r\rid: x\x00y\rretry: 12\rdata:  b\revent: e\r\r\rdata: lost"
    events, decoder = decode_all([stream])
    assert events == want.events and decoder.last_event_id == "7"
