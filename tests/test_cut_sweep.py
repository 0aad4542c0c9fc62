"""The cut sweep: cut a long answer at hundreds of byte offsets, by FIN, RST
and stall, and check that every resume strategy delivers it exactly.

Offsets include every offset within ±3 bytes of 5 event boundaries, offsets
inside multibyte characters, offsets inside HTTP chunk headers (wire bytes),
and an even spread over the whole body: 500 offsets, each cut by FIN, RST
and stall, each resumed by cursor, prefill and replay (4,500 streams). The
server sends longer tokens than a real model (``token_scale``), so the 8 KB
answer travels in about 150 events and the sweep stays fast; the ``slow``
variant cuts at every byte offset of that body (about 48,700), by each kind,
for each strategy.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import pytest

import holysse
from holysse.testing import FakeServer, Fault, RecordedRequest

KINDS = ("fin", "rst", "stall")
STRATEGIES = ("cursor", "prefill", "replay")
BODY = {"model": "fake-1", "messages": [{"role": "user", "content": "A long answer, please."}], "seed": 11}


class CutPlan:
    """A fault for the first request of each case, keyed by ``body["user"]``."""

    def __init__(self) -> None:
        self._faults: dict[str, Fault] = {}
        self._lock = threading.Lock()

    def add(self, case: str, fault: Fault) -> None:
        with self._lock:
            self._faults[case] = fault

    def __call__(self, request: RecordedRequest) -> Fault | None:
        if not isinstance(request.body, dict):
            return None
        with self._lock:
            return self._faults.pop(str(request.body.get("user")), None)


@pytest.fixture(scope="module")
def sweep_server() -> Iterator[tuple[FakeServer, CutPlan]]:
    plan = CutPlan()
    with FakeServer(answer_chars=3000, token_scale=6, faults=plan) as server:
        yield server, plan


def chunk_header_offsets(ends: list[int], count: int) -> list[int]:
    """Wire offsets inside chunk-size lines (each event is one HTTP chunk)."""
    offsets, wire, start = [], 0, 0
    for end in ends:
        size = end - start
        header = len(f"{size:x}\r\n")
        if len(offsets) < count * 2:
            offsets += [wire + 1, wire + header - 1]  # inside the hex digits, between CR and LF
        wire += header + size + 2
        start = end
    return offsets[: count * 2]


def sweep_offsets(payload: bytes, ends: list[int], total: int) -> list[tuple[int, str]]:
    """(offset, unit) pairs covering the cases the sweep promises."""
    chosen: set[tuple[int, str]] = set()
    for k in range(1, 6):
        boundary = ends[len(ends) * k // 6]
        chosen.update((boundary + d, "payload") for d in range(-3, 4))
    continuation = [i for i, b in enumerate(payload) if 0x80 <= b <= 0xBF]
    step = max(1, len(continuation) // 60)
    chosen.update((i, "payload") for i in continuation[::step][:60])
    chosen.update((i, "wire") for i in chunk_header_offsets(ends, 20))
    spread = max(1, len(payload) // (total - len(chosen) + 1))
    offset = 1
    while len(chosen) < total:
        chosen.add((offset, "payload"))
        offset += spread
    return sorted(chosen)


def run_case(server: FakeServer, plan: CutPlan, case: str, fault: Fault, strategy: str) -> tuple[str, str]:
    plan.add(case, fault)
    client = holysse.Client(
        api_key="hs_sweep",
        base_url=server.url,
        resume=strategy,
        provider="vllm",
        timeout=(5, 0.1),
        # A loaded machine may answer slower than the 0.1 s stall timeout many
        # times in a row: keep trying for a while (the retry budget is not
        # what this test is about).
        retry=holysse.RetryPolicy(max_attempts=1000, backoff_initial=0.001, backoff_max=0.002, deadline=60),
        sleep=lambda _s: None,
    )
    with client:
        stream = client.stream(user=case, **BODY)
        received = "".join(event.text for event in stream)
        return received, stream.text


def sweep(
    server: FakeServer, plan: CutPlan, cases: list[tuple[int, str]], kinds: tuple[str, ...],
    strategies: tuple[str, ...] = STRATEGIES,
) -> list[Any]:
    expected = server.expected_text(BODY)
    jobs = [
        (f"{kind}-{strategy}-{unit}-{at}", getattr(Fault, kind)(at, unit=unit), strategy)
        for at, unit in cases for kind in kinds for strategy in strategies
    ]
    def run(job: tuple[str, Fault, str]) -> Any:
        try:
            received, text = run_case(server, plan, *job)
        except holysse.HolySSEError as exc:
            return (job[0], f"{type(exc).__name__}: {exc}", [type(e).__name__ for e in _chain(exc)])
        if received != expected or text != expected:
            return (job[0], len(received), len(text))
        return None

    with ThreadPoolExecutor(max_workers=12) as pool:
        failures = [failure for failure in pool.map(run, jobs) if failure is not None]
    return failures


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    while exc is not None:
        yield exc
        exc = exc.__cause__


def test_sweep_covers_what_it_promises(sweep_server: tuple[FakeServer, CutPlan]) -> None:
    server, _ = sweep_server
    payload = server.body_for(BODY)
    answer = server.expected_text(BODY)
    assert len(answer.encode("utf-8")) >= 8192
    cases = sweep_offsets(payload, server.event_offsets(BODY), 500)
    assert len(cases) >= 500
    assert sum(1 for _, unit in cases if unit == "wire") >= 40


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("kind", KINDS)
def test_cut_sweep(sweep_server: tuple[FakeServer, CutPlan], kind: str, strategy: str) -> None:
    server, plan = sweep_server
    cases = sweep_offsets(server.body_for(BODY), server.event_offsets(BODY), 500)
    failures = sweep(server, plan, cases, (kind,), (strategy,))
    assert failures == []


@pytest.mark.slow
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("kind", KINDS)
def test_cut_sweep_every_byte_offset(sweep_server: tuple[FakeServer, CutPlan], kind: str, strategy: str) -> None:
    server, plan = sweep_server
    payload = server.body_for(BODY)
    cases = [(at, "payload") for at in range(1, len(payload))]
    failures = sweep(server, plan, cases, (kind,), (strategy,))
    assert failures == []
