"""Prices, the cost of an answer with its resume waste, and the demo summary
checked against a hand computation."""

from __future__ import annotations

import argparse
import io
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import holysse
from holysse.commands.console import Console
from holysse.commands.demo import demo, demo_body
from holysse.metrics import StreamMetrics, TokenCount
from holysse.pricing import Cost, Price, PriceTable
from holysse.testing import FakeServer
from holysse.testing.scenarios import demo_faults
from holysse.events import Usage

# Published prices, USD per million tokens (input, output).
PUBLISHED = {"gpt-4.1": (2, 8), "claude-sonnet-4-5": (3, 15), "gemini-2.5-flash": (Decimal("0.30"), Decimal("2.50")),
             "deepseek-chat": (Decimal("0.28"), Decimal("0.42"))}


@pytest.mark.parametrize(("name", "expected"), [
    ("gpt-4.1", "gpt-4.1"),
    ("gpt-4.1-2025-04-14", "gpt-4.1"),
    ("openai/GPT-4.1", "gpt-4.1"),
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
    ("anthropic/claude-sonnet-4.5", "claude-sonnet-4-5"),
    ("google/gemini-2.5-flash", "gemini-2.5-flash"),
    ("deepseek-chat", "deepseek-chat"),
])
def test_models_are_found_by_family_name(name: str, expected: str) -> None:
    price = PriceTable().lookup(name)
    assert price is not None and (price.input, price.output) == tuple(map(Decimal, PUBLISHED[expected]))


@pytest.mark.parametrize("name", ["gpt-4.1-mini", "claude-opus-4-1", "demo-model", "", None])
def test_unknown_models_are_unknown_not_guessed(name: str | None) -> None:
    table = PriceTable()
    assert table.lookup(name) is None
    cost = table.cost(name, TokenCount(100, 200))
    assert cost.total is None and not cost.known and str(cost).startswith("unknown (no price for model")


def test_user_prices_from_a_dict_or_json_file_override_and_extend(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"gpt-4.1": {"input": 1, "output": 4}, "my-model": {"input": "0.1", "output": 0.2}}))
    for table in (PriceTable.load(path), PriceTable.load(str(path)),
                  PriceTable.load({"gpt-4.1": (1, 4), "my-model": Price(Decimal("0.1"), Decimal("0.2"))})):
        assert table.lookup("gpt-4.1") == Price(Decimal(1), Decimal(4))
        assert table.lookup("my-model") == Price(Decimal("0.1"), Decimal("0.2"))
        assert table.lookup("claude-sonnet-4-5") is not None  # the built-in prices stay
    assert PriceTable({"x": (1, 2)}, defaults=False).lookup("gpt-4.1") is None
    for bad in ({"m": {"input": 1}}, {"m": {"input": -1, "output": 1}}, {"m": "cheap"}, {"m": (1, "NaN")}):
        with pytest.raises(holysse.UsageError, match="price"):
            PriceTable(bad)
    path.write_text("[1, 2]")
    with pytest.raises(holysse.UsageError, match="JSON object"):
        PriceTable.load(path)
    with pytest.raises(holysse.UsageError, match="Could not read prices"):
        PriceTable.load(tmp_path / "missing.json")


def test_cost_by_hand() -> None:
    tokens = TokenCount(input_tokens=1200, output_tokens=800, cached_input_tokens=200,
                        reread_input_tokens=2400, wasted_output_tokens=150)
    cost = PriceTable().cost("gpt-4.1", tokens)
    assert cost.answer == Decimal("0.0085")   # (1000 * 2 + 200 * 0.50 + 800 * 8) / 1e6
    assert cost.waste == Decimal("0.006")     # (2400 * 2 + 150 * 8) / 1e6
    assert cost.total == Decimal("0.0145")
    assert str(cost) == "$0.014500 (answer $0.008500 + resume waste $0.006000)"
    assert "≈" in str(Cost("gpt-4.1", TokenCount(1, 1, estimated=True), cost.price))
    figures = json.loads(json.dumps(cost.as_dict()))
    assert figures["total"] == "0.014500" and figures["reread_input_tokens"] == 2400 and figures["currency"] == "USD"
    assert PriceTable().cost("nobody", tokens).as_dict()["total"] is None


def test_tokens_follow_generations_across_connections() -> None:
    metrics = StreamMetrics()
    metrics._begin_leg("first", 0)          # cut before its usage
    metrics._begin_leg("cursor", 10)        # continues the first generation, reports it
    metrics._record_usage(Usage(50, 40))
    metrics._begin_leg("replay", 40)        # started over: read the prompt again
    metrics._record_usage(Usage(50, None))  # cut after its input was reported
    metrics._begin_leg("prefill", 60)       # the prompt plus 60 delivered tokens
    metrics._record_usage(Usage(110, 30))
    metrics.wasted_output_tokens = 40
    assert metrics.tokens(delivered=90) == TokenCount(50, 30 + 60, 0, 50 + 110, 40, False)
    assert metrics.billed_input_tokens == 210 and metrics.billed_output_tokens == 70
    bare = StreamMetrics()
    bare._begin_leg("first", 0)
    assert bare.tokens(delivered=12) == TokenCount(0, 12, 0, 0, 0, True)


# -- the demo summary -----------------------------------------------------------


def run_demo(dialect: str, resume: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    args = argparse.Namespace(resume=resume, dialect=dialect, chars=1800, token_delay=0.0, quiet=True)
    status = demo(args, Console(out, err))
    return status, err.getvalue()


def events_of(payload: bytes) -> list[tuple[int, dict[str, Any]]]:
    """(end offset, JSON data) of every event in a payload, read with json alone."""
    events, end = [], 0
    for block in payload.split(b"\n\n")[:-1]:
        end += len(block) + 2
        data = block.decode("utf-8").split("data: ", 1)[1]
        if data != "[DONE]":
            events.append((end, json.loads(data)))
    return events


def is_text(data: dict[str, Any]) -> bool:
    """Whether an event of any of the three dialects carries answer text."""
    if "choices" in data:
        return bool(data["choices"] and data["choices"][0]["delta"].get("content"))
    if data.get("type") == "content_block_delta":
        return bool(data["delta"].get("text"))
    return data.get("type") == "response.output_text.delta" and bool(data["delta"])


def usage_of(events: list[tuple[int, dict[str, Any]]]) -> tuple[int, int]:
    """(prompt, output) tokens as the provider reports them at the end of the stream."""
    last = events[-1][1]
    if "choices" in last:
        return last["usage"]["prompt_tokens"], last["usage"]["completion_tokens"]
    if last.get("type") == "response.completed":
        return last["response"]["usage"]["input_tokens"], last["response"]["usage"]["output_tokens"]
    start, delta = events[0][1], events[-2][1]
    return start["message"]["usage"]["input_tokens"], delta["usage"]["output_tokens"]


def by_hand(dialect: str, resume: str) -> tuple[int, int, int, int, Decimal]:
    """(prompt, output, re-read prompt, regenerated, total USD) for the demo's
    four faults (FIN, RST, stall, 429), computed from the fake server's payload."""
    body = demo_body(dialect)
    with FakeServer(answer_chars=1800) as server:
        cuts = [fault.at for _, fault in demo_faults(server, body, dialect=dialect) if fault.is_cut]
        streamed = dict(body, stream_options={"include_usage": True}) if dialect == "openai-chat" else body
        events = events_of(server.body_for(streamed, dialect))
    prompt, output = usage_of(events)
    if resume == "replay":  # each replay reads the prompt again and regenerates what was delivered
        reread = len(cuts) * prompt
        regenerated = sum(sum(1 for end, data in events if end <= cut and is_text(data)) for cut in cuts)
    else:                   # a cursor continues the same generation
        reread = regenerated = 0
    price_in, price_out = map(Decimal, PUBLISHED[body["model"]])
    total = ((prompt + reread) * price_in + (output + regenerated) * price_out) / 1_000_000
    return prompt, output, reread, regenerated, total


@pytest.mark.parametrize(("dialect", "resume"), [
    ("openai-chat", "replay"), ("anthropic", "replay"), ("openai-responses", "replay"),
    ("openai-responses", "auto"), ("anthropic", "auto"),
])
def test_demo_works_offline_and_its_cost_matches_a_hand_computation(dialect: str, resume: str) -> None:
    status, summary = run_demo(dialect, resume)
    assert status == 0 and "identical to the server's full answer (1800 characters): yes" in summary
    strategy = re.search(r"reconnects\s+4 \((\w+): 4\)", summary)
    assert strategy is not None, summary
    cost = re.search(r"cost\s+≈?\$(\S+) \(answer \$(\S+) \+ resume waste \$(\S+)\)\n\s+(\d+) prompt \+ (\d+) "
                     r"output tokens; waste: (\d+) prompt tokens re-read, (\d+) output tokens regenerated", summary)
    assert cost is not None, summary
    total, answer, waste = map(Decimal, cost.groups()[:3])
    assert total == answer + waste
    if strategy.group(1) == "prefill":  # Anthropic's default: nothing regenerated, the partial re-read
        assert int(cost.group(7)) == 0 and int(cost.group(6)) > 3 * int(cost.group(4))
        return
    prompt, output, reread, regenerated, expected = by_hand(dialect, resume)
    assert strategy.group(1) == ("replay" if resume == "replay" else "cursor")
    assert tuple(map(int, cost.groups()[3:])) == (prompt, output, reread, regenerated)
    assert f"wasted tokens   {regenerated} re-sent and dropped" in summary
    assert total == expected.quantize(Decimal("0.000001")) and (regenerated > 0) == (resume == "replay")
