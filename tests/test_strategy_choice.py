"""The choice of the next resume strategy (:func:`holysse._strategy.choose_strategy`),
fed with what was delivered: no sockets, no client."""

from __future__ import annotations

import pytest

from holysse._delivered import Delivered
from holysse._strategy import STRATEGIES, check_strategy, choose_strategy
from holysse.accumulator import Accumulator
from holysse.dialects import get_dialect
from holysse.dialects.profiles import PROFILES
from holysse.events import TextDelta, ToolCallDelta
from holysse.exceptions import UsageError

CHAT, ANTHROPIC = get_dialect("openai-chat"), get_dialect("anthropic")


def delivered(text: str = "", cursor: str | None = None, tool: bool = False) -> Delivered:
    out = Delivered(Accumulator(), None)
    if text:
        out.add(TextDelta(text))
    if tool:
        out.add(ToolCallDelta(0, "call_1", "lookup", "{"))
    if cursor is not None:
        out.move_cursor(cursor)
    return out


def test_nothing_delivered_is_a_new_request() -> None:
    assert choose_strategy(delivered(), CHAT, PROFILES["vllm"], "auto", set()) == "retry"
    # a cursor before any content is worth nothing on chat (it names no stored generation)
    assert choose_strategy(delivered(cursor="7"), CHAT, PROFILES["vllm"], "auto", set()) == "retry"


@pytest.mark.parametrize(
    ("profile", "cursor", "refused", "expected"),
    [
        ("vllm", "7", set(), "cursor"),
        ("vllm", None, set(), "prefill"),
        ("vllm", "7", {"cursor"}, "prefill"),
        ("vllm", "7", {"cursor", "prefill"}, "replay"),
        ("generic", None, set(), "replay"),  # no prefill flavour known
        ("generic", "7", {"cursor"}, "replay"),
        ("openai", "7", set(), "cursor"),
    ],
)
def test_auto_takes_the_first_strategy_the_server_supports_and_was_not_caught_ignoring(
    profile: str, cursor: str | None, refused: set[str], expected: str
) -> None:
    assert choose_strategy(delivered("Hello", cursor), CHAT, PROFILES[profile], "auto", refused) == expected


def test_after_a_failed_strategy_only_later_ones_qualify() -> None:
    state = delivered("Hello", "7")
    assert choose_strategy(state, ANTHROPIC, PROFILES["anthropic"], "auto", set(), after="cursor") == "prefill"
    assert choose_strategy(state, ANTHROPIC, PROFILES["anthropic"], "auto", set(), after="prefill") == "replay"
    assert choose_strategy(state, ANTHROPIC, PROFILES["anthropic"], "auto", set(), after="replay") == "replay"


def test_an_open_tool_call_is_never_prefilled() -> None:
    state = delivered("Let me look.", tool=True)
    assert choose_strategy(state, CHAT, PROFILES["vllm"], "auto", set()) == "replay"


def test_an_explicit_strategy_comes_first_even_when_auto_would_not_pick_it() -> None:
    # with a cursor, auto resumes by cursor; a user who asks for prefill gets it
    assert choose_strategy(delivered("Hello", "7"), CHAT, PROFILES["vllm"], "auto", set()) == "cursor"
    assert choose_strategy(delivered("Hello", "7"), CHAT, PROFILES["vllm"], "prefill", set()) == "prefill"
    assert choose_strategy(delivered("Hello", "7"), CHAT, PROFILES["generic"], "replay", set()) == "replay"
    # ...and one the dialect cannot do falls through to the others
    assert choose_strategy(delivered("Hello"), CHAT, PROFILES["generic"], "cursor", set()) == "replay"


def test_check_strategy_names_the_accepted_values() -> None:
    for name in ("auto", "none", *STRATEGIES):
        check_strategy(name, "reset")
    with pytest.raises(UsageError, match="'auto'.*'replay'"):
        check_strategy("resend", "reset")
    with pytest.raises(UsageError, match="'reset' or 'raise'"):
        check_strategy("auto", "ignore")
