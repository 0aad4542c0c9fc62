"""The cut sweep: cut a long answer at hundreds of byte offsets, by FIN, RST
and stall, and check that every resume strategy delivers it exactly.

Offsets include every offset within ±3 bytes of 5 event boundaries, offsets
inside multibyte characters, offsets inside HTTP chunk headers (wire bytes),
and an even spread over the whole body: 400 offsets, each cut by FIN, RST
and stall, each resumed by cursor, prefill and replay (3,600 streams). The
server sends longer tokens than a real model (``token_scale``), so the 8.7 KB
answer travels in 85 events (31.6 KB of body) and the sweep stays fast; the
``slow`` variant cuts at every byte offset of a body of 148 events (48,697
bytes), by each kind, for each strategy (438,264 streams).
"""

from __future__ import annotations

from typing import Iterator

import pytest

from holysse.testing import FakeServer

from .sweeping import KINDS, CutPlan, Expected, Sweep, failures, sweep_offsets

STRATEGIES = ("cursor", "prefill", "replay")
BODY = {"model": "fake-1", "messages": [{"role": "user", "content": "A long answer, please."}], "seed": 11}

#: Offsets cut in the default run (the slow variant cuts every one).
OFFSETS = 400


@pytest.fixture(scope="module")
def sweep_server() -> Iterator[tuple[FakeServer, CutPlan]]:
    plan = CutPlan()
    with FakeServer(answer_chars=3000, token_scale=10, faults=plan) as server:
        yield server, plan


@pytest.fixture(scope="module")
def every_byte_server() -> Iterator[tuple[FakeServer, CutPlan]]:
    """Shorter tokens than :func:`sweep_server`: more event boundaries to cut at."""
    plan = CutPlan()
    with FakeServer(answer_chars=3000, token_scale=6, faults=plan) as server:
        yield server, plan


def sweep(
    server: FakeServer, plan: CutPlan, cases: list[tuple[int, str]], kinds: tuple[str, ...],
    strategies: tuple[str, ...] = STRATEGIES,
) -> list[tuple[str, int, int, str]]:
    setup = Sweep(server, plan, BODY)
    outcomes = setup.run([(at, unit, kind) for at, unit in cases for kind in kinds], strategies)
    return failures(outcomes, Expected(setup.expected_text()))


def test_sweep_covers_what_it_promises(sweep_server: tuple[FakeServer, CutPlan]) -> None:
    server, _ = sweep_server
    payload = server.body_for(BODY)
    answer = server.expected_text(BODY)
    assert len(answer.encode("utf-8")) >= 8192
    cases = sweep_offsets(payload, server.event_offsets(BODY), OFFSETS)
    assert len(cases) >= OFFSETS
    assert sum(1 for _, unit in cases if unit == "wire") >= 40


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("kind", KINDS)
def test_cut_sweep(sweep_server: tuple[FakeServer, CutPlan], kind: str, strategy: str) -> None:
    server, plan = sweep_server
    cases = sweep_offsets(server.body_for(BODY), server.event_offsets(BODY), OFFSETS)
    failures = sweep(server, plan, cases, (kind,), (strategy,))
    assert failures == []


@pytest.mark.slow
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("kind", KINDS)
def test_cut_sweep_every_byte_offset(every_byte_server: tuple[FakeServer, CutPlan], kind: str, strategy: str) -> None:
    server, plan = every_byte_server
    payload = server.body_for(BODY)
    cases = [(at, "payload") for at in range(1, len(payload))]
    failures = sweep(server, plan, cases, (kind,), (strategy,))
    assert failures == []
