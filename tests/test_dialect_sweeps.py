"""The cut sweep for the Anthropic Messages and OpenAI Responses dialects.

Each sweep cuts one long answer (thinking, text, then a tool call) at 400
offsets (500 in the slow variant): ±3 bytes around event boundaries, inside multibyte characters,
inside HTTP chunk headers, and an even spread. Each offset is cut by one of
FIN, RST and stall, the kinds taking turns within every class of offset (so
every kind covers every class); the ``slow`` variant cuts every offset by
every kind. Every strategy the dialect supports gets its own sweep:
Anthropic by cursor (SSE ids), prefill and replay; Responses by cursor
(``GET /responses/{id}?stream=true&starting_after=N``) and replay. Every
stream must deliver the whole answer, reasoning and byte-identical tool-call
arguments, with no gap and no duplicate.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Iterator

import pytest

from holysse.testing import FakeServer, Fault

from .sweeping import KINDS, CutPlan, Expected, Outcome, Sweep, failures, offset_classes, rotated

#: Offsets cut in the default run, and in the slow run (by every kind).
OFFSETS, SLOW_OFFSETS = 400, 500
PROMPT = "A long answer with a tool call, please."
ANTHROPIC_TOOLS = [{"name": "lookup", "description": "Look it up.", "input_schema": {"type": "object"}}]
RESPONSES_TOOLS = [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]
MESSAGES = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": PROMPT}], "seed": 5,
            "max_tokens": 8192, "tools": ANTHROPIC_TOOLS}
THINKING = dict(MESSAGES, thinking={"type": "enabled", "budget_tokens": 2048})
RESPONSES = {"model": "gpt-4.1", "input": PROMPT, "seed": 5, "background": True, "tools": RESPONSES_TOOLS}

#: (dialect, strategy, body, the server sends SSE ids, strategies a case may use)
SWEEPS = {
    "anthropic-cursor": ("anthropic", "cursor", THINKING, True, {"retry", "cursor"}),
    "anthropic-prefill": ("anthropic", "prefill", MESSAGES, False, {"retry", "prefill", "replay"}),
    "anthropic-replay": ("anthropic", "replay", THINKING, False, {"retry", "replay"}),
    "responses-cursor": ("openai-responses", "cursor", RESPONSES, True, {"retry", "cursor"}),
    "responses-replay": ("openai-responses", "replay", RESPONSES, True, {"retry", "replay"}),
}


def thinking_of(payload: bytes) -> str:
    """The reasoning text in an Anthropic payload, read with json alone."""
    thinking = ""
    for block in payload.decode("utf-8").split("\n\n"):
        data = "\n".join(line[6:] for line in block.split("\n") if line.startswith("data: "))
        if data:
            delta = json.loads(data).get("delta") or {}
            if delta.get("type") == "thinking_delta":
                thinking += delta["thinking"]
    return thinking


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[bool, tuple[FakeServer, CutPlan]]]:
    """Two fake servers sharing a model: with and without SSE ids."""
    plans = {True: CutPlan(), False: CutPlan()}
    with FakeServer(answer_chars=2000, token_scale=10, ids=True, faults=plans[True]) as with_ids, \
            FakeServer(answer_chars=2000, token_scale=10, ids=False, faults=plans[False]) as without_ids:
        yield {True: (with_ids, plans[True]), False: (without_ids, plans[False])}


def setup_for(servers: dict[bool, tuple[FakeServer, CutPlan]], name: str) -> tuple[Sweep, Expected]:
    dialect, _, body, ids, _ = SWEEPS[name]
    server, plan = servers[ids]
    setup = Sweep(server, plan, body, dialect=dialect, provider=None, read_timeout=0.1)
    payload, _ = setup.payload()
    expected = Expected(setup.expected_text(), thinking_of(payload) if dialect == "anthropic" else "",
                        (server.model.tool_arguments(PROMPT, 5),))
    return setup, expected


def check_strategies(name: str, outcomes: list[Outcome]) -> None:
    _, strategy, _, _, allowed = SWEEPS[name]
    used = [set(o.reconnects) for o in outcomes if o.reconnects]  # a cut after the finish needs none
    assert len(used) >= 0.95 * len(outcomes)
    assert all(u <= allowed for u in used), {frozenset(u) for u in used if not u <= allowed}
    share = sum(strategy in u for u in used) / len(used)
    assert share >= (0.4 if strategy == "prefill" else 0.85), share
    if strategy == "cursor":  # the cursor travels to the server: nothing is generated twice
        assert [o.case for o in outcomes if o.wasted] == []


def test_sweeps_cover_what_they_promise(servers: dict[bool, tuple[FakeServer, CutPlan]]) -> None:
    for name in SWEEPS:
        setup, expected = setup_for(servers, name)
        payload, ends = setup.payload()
        classes = offset_classes(payload, ends, OFFSETS)
        jobs = rotated(classes, KINDS)
        assert len(jobs) >= OFFSETS and len(expected.text) >= 1500 and len(expected.tool_arguments[0]) > 100
        for cases in classes.values():
            kinds = {kind for at, unit, kind in jobs if (at, unit) in set(cases)}
            assert kinds == set(KINDS)
        assert expected.thinking or SWEEPS[name][2] is not THINKING


@pytest.mark.parametrize("name", list(SWEEPS))
def test_dialect_cut_sweep(servers: dict[bool, tuple[FakeServer, CutPlan]], name: str) -> None:
    setup, expected = setup_for(servers, name)
    payload, ends = setup.payload()
    every, outcomes = setup.run_covering(rotated(offset_classes(payload, ends, OFFSETS), KINDS), SWEEPS[name][1])
    assert failures(every, expected) == []
    check_strategies(name, outcomes)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SWEEPS))
def test_dialect_cut_sweep_every_kind(servers: dict[bool, tuple[FakeServer, CutPlan]], name: str) -> None:
    setup, expected = setup_for(servers, name)
    payload, ends = setup.payload()
    cases = sorted({case for cases in offset_classes(payload, ends, SLOW_OFFSETS).values() for case in cases})
    every, outcomes = setup.run_covering([(at, unit, kind) for at, unit in cases for kind in KINDS], SWEEPS[name][1])
    assert failures(every, expected) == []
    check_strategies(name, outcomes)


def test_responses_cursor_resumes_by_get_with_starting_after(
    servers: dict[bool, tuple[FakeServer, CutPlan]],
) -> None:
    setup, expected = setup_for(servers, "responses-cursor")
    _, ends = setup.payload()
    before = len(setup.server.requests)
    patient = dataclasses.replace(setup, read_timeout=2.0)  # no header timeout, even on a loaded machine
    outcome = patient.run_case("one-get", Fault.rst(ends[40] + 9), "cursor")
    assert not outcome.differs(expected) and set(outcome.reconnects) == {"cursor"} and outcome.wasted == 0
    post, *gets = setup.server.requests[before:]  # more than one GET only if a read timed out under load
    assert (post.method, post.path, post.body["user"]) == ("POST", "/v1/responses", "one-get")
    assert gets and all(get.method == "GET" and get.path.startswith("/v1/responses/resp_") for get in gets)
    assert all(get.query == {"stream": "true", "starting_after": "40"} and get.body is None for get in gets)
