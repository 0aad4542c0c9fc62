"""A server that ignores a prefill and answers afresh must not make the
answer repeat itself (seen with llama-cpp-python, which ignores
``continue_final_message``)."""

from __future__ import annotations

import logging

import pytest

from holysse import Finished, Reset, TextDelta, ThinkingDelta, Usage
from holysse._resume import PrefillGuard
from holysse.testing import FakeServer, Fault

from .conftest import CHAT, Sleeps, make_client


def test_a_continuation_is_released_at_its_first_different_character() -> None:
    guard = PrefillGuard("Hello world. ")
    assert guard.feed([TextDelta("Hel")]) == []  # could be a restart: held
    out = guard.feed([TextDelta("p is here"), Usage(output_tokens=2)])
    assert out == [TextDelta("Hel"), TextDelta("p is here"), Usage(output_tokens=2)]
    assert not guard.active and not guard.restarted
    assert guard.feed([TextDelta("x")]) == [TextDelta("x")]


def test_a_repetition_of_the_whole_delivered_text_is_a_restart() -> None:
    guard = PrefillGuard("Hello world.")
    assert guard.feed([TextDelta("Hello "), TextDelta("wor")]) == []
    out = guard.feed([TextDelta("ld. And more"), Finished("stop")])
    assert out == [TextDelta("Hello "), TextDelta("wor"), TextDelta("ld. And more"), Finished("stop")]
    assert guard.restarted and not guard.active


@pytest.mark.parametrize(
    ("events", "restarted"),
    [
        ([TextDelta("Hello"), Finished("length")], True),  # ended inside the delivered text
        ([Finished("stop")], False),
        ([ThinkingDelta("hmm"), TextDelta("Hello")], False),
        ([TextDelta(" world")], False),
    ],
)
def test_other_endings(events: list[object], restarted: bool) -> None:
    guard = PrefillGuard("Hello world.")
    out = guard.feed(events)  # type: ignore[arg-type]
    assert out == events and guard.restarted is restarted


def test_end_of_stream_while_holding() -> None:
    guard = PrefillGuard("Hello world.")
    assert guard.feed([TextDelta("Hello")]) == []
    assert guard.end() == [TextDelta("Hello")] and guard.restarted
    assert PrefillGuard("abc").end() == []


@pytest.mark.parametrize("kind", ["fin", "rst"])
def test_a_server_ignoring_the_prefill_does_not_duplicate_the_answer(
    sleeps: Sleeps, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    caplog.set_level(logging.INFO, logger="holysse")
    with FakeServer(answer_chars=600, prefill=False, ids=False) as server:
        server.set_faults([getattr(Fault, kind)(server.event_offsets(CHAT)[40] + 3)])
        stream = make_client(server, sleeps, resume="prefill", provider="vllm").stream(**CHAT)
        events = list(stream)
        expected = server.expected_text(CHAT)
        assert server.requests[-2].body["messages"][-1]["role"] == "assistant"  # a prefill was sent...
        # ...answered by a new turn to the prefilled prompt: the original request is sent again (issue 12 case 9)
        assert server.requests[-1].body["messages"][-1]["role"] == "user"
    received = "".join(event.text for event in events)
    assert received == stream.text == expected  # ...and nothing repeated
    assert not any(isinstance(event, Reset) for event in events)
    assert stream.metrics.wasted_output_tokens > 0
    assert stream.metrics.reconnects == {"prefill": 1, "replay": 1}
    assert any("ignored the prefill" in record.getMessage() for record in caplog.records)
