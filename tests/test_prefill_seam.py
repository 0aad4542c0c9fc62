"""The prefill seam: whitespace held back from a prefilled message (pure data)."""

from __future__ import annotations

import pytest

from holysse.events import Event, Finished, TextDelta
from holysse._resume import Expectation, ResendFilter, ResumeMismatch


def run(held: str, events: list[Event]) -> list[Event]:
    flt = ResendFilter(Expectation(text=held), "prefill", "reset", "Delivered." + held)
    out = [e for event in events for e in flt.feed(event)]
    return out + flt.end()


@pytest.mark.parametrize(("held", "sent", "delivered"), [
    ("\n\n", ["\n\nNext"], "Next"),                # the model writes the held whitespace again
    ("\n\n", ["\n", "\n", "Next", " more"], "Next more"),  # ...over several events
    ("\n\n", ["\nNext"], "Next"),                  # less whitespace: the delivered one stays
    (" ", ["\n\nNext"], "Next"),                   # other whitespace: the delivered one stays
    (" ", ["   Next"], "  Next"),                  # more whitespace: the extra is new text
])
def test_whitespace_at_the_seam_is_never_repeated(held: str, sent: list[str], delivered: str) -> None:
    out = run(held, [TextDelta(text) for text in sent])
    assert "".join(e.text for e in out) == delivered


def test_an_answer_that_ends_at_the_seam_is_complete() -> None:
    assert run("\n", [TextDelta("\n"), Finished("end_turn")]) == [Finished("end_turn")]
    assert run("\n", [Finished("end_turn")]) == [Finished("end_turn")]


def test_held_text_that_is_not_whitespace_must_match() -> None:
    with pytest.raises(ResumeMismatch):
        run("ab", [TextDelta("xy")])
