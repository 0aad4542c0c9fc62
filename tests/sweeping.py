"""Helpers for cut sweeps: where to cut a body, and running many cut streams
against one fake server in parallel (used by ``test_cut_sweep.py`` and
``test_dialect_sweeps.py``)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable

import holysse
from holysse.testing import FakeServer, Fault, RecordedRequest

KINDS = ("fin", "rst", "stall")


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


def offset_classes(payload: bytes, ends: list[int], total: int) -> dict[str, list[tuple[int, str]]]:
    """(offset, unit) pairs by the kind of place they cut, ``total`` in all:
    every offset within ±3 bytes of 5 event boundaries, inside multibyte
    characters, inside HTTP chunk headers (wire bytes), and an even spread."""
    classes: dict[str, list[tuple[int, str]]] = {}
    classes["boundary"] = [(ends[len(ends) * k // 6] + d, "payload") for k in range(1, 6) for d in range(-3, 4)]
    continuation = [i for i, b in enumerate(payload) if 0x80 <= b <= 0xBF]
    step = max(1, len(continuation) // 60)
    classes["multibyte"] = [(i, "payload") for i in continuation[::step][:60]]
    classes["chunk-header"] = [(i, "wire") for i in chunk_header_offsets(ends, 20)]
    chosen = {case for cases in classes.values() for case in cases}
    spread_cases: list[tuple[int, str]] = []
    spread = max(1, len(payload) // (total - len(chosen) + 1))
    offset = 1
    while len(chosen) < total:
        if (offset, "payload") not in chosen:
            chosen.add((offset, "payload"))
            spread_cases.append((offset, "payload"))
        offset += spread
    classes["spread"] = spread_cases
    return classes


def sweep_offsets(payload: bytes, ends: list[int], total: int) -> list[tuple[int, str]]:
    """The (offset, unit) pairs of :func:`offset_classes`, sorted."""
    return sorted({case for cases in offset_classes(payload, ends, total).values() for case in cases})


def rotated(classes: dict[str, list[tuple[int, str]]], kinds: tuple[str, ...]) -> list[tuple[int, str, str]]:
    """(offset, unit, kind): each offset cut by one kind, the kinds taking
    turns within every class, so every kind covers every class of offset."""
    jobs: dict[tuple[int, str], str] = {}
    for cases in classes.values():
        turn = 0
        for case in cases:
            if case not in jobs:
                jobs[case] = kinds[turn % len(kinds)]
                turn += 1
    return [(at, unit, kind) for (at, unit), kind in sorted(jobs.items())]


@dataclass(frozen=True)
class Expected:
    """What every cut stream must end with."""

    text: str
    thinking: str = ""
    tool_arguments: tuple[str, ...] = ()


@dataclass
class Outcome:
    """What one cut stream delivered."""

    case: str
    received: str
    text: str
    thinking: str
    tool_arguments: tuple[str, ...]
    reconnects: dict[str, int] = field(default_factory=dict)
    wasted: int = 0
    #: The error that ended the stream (``""``: none), with its causes.
    error: str = ""

    def differs(self, expected: Expected) -> bool:
        return (bool(self.error) or self.received != expected.text or self.text != expected.text
                or self.thinking != expected.thinking or self.tool_arguments != expected.tool_arguments)


@dataclass(frozen=True)
class Sweep:
    """One sweep's setup: the server, its plan, the request and the client."""

    server: FakeServer
    plan: CutPlan
    body: dict[str, Any]
    dialect: str = "openai-chat"
    provider: str | None = "vllm"
    #: The read timeout (stall detection, and the wait for response headers).
    read_timeout: float = 0.1
    #: A loaded machine may answer slower than a short read timeout many times
    #: in a row: keep trying for a while (the retry budget is not what a sweep
    #: is about; a stream that cannot finish still fails the sweep).
    attempts: int = 1000
    deadline: float = 60.0

    def expected_text(self) -> str:
        return self.server.expected_text(self.body, dialect=self.dialect)

    def payload(self) -> tuple[bytes, list[int]]:
        return self.server.body_for(self.body, self.dialect), self.server.event_offsets(self.body, self.dialect)

    def client(self) -> holysse.Client:
        """A client for the sweep (one connection pool shared by its threads)."""
        return holysse.Client(
            api_key="hs_sweep",
            base_url=self.server.url,
            dialect=self.dialect,
            provider=self.provider,
            timeout=(5, self.read_timeout),
            retry=holysse.RetryPolicy(max_attempts=self.attempts, backoff_initial=0.001, backoff_max=0.002,
                                      deadline=self.deadline),
            sleep=lambda _s: None,
        )

    def run_case(self, case: str, fault: Fault, strategy: str, client: holysse.Client | None = None) -> Outcome:
        if client is None:
            with self.client() as own:
                return self.run_case(case, fault, strategy, own)
        self.plan.add(case, fault)
        stream = client.stream(user=case, resume=strategy, **self.body)
        received = ""
        try:
            for event in stream:
                received += event.text
        except holysse.HolySSEError as exc:
            return Outcome(case, received, stream.text, stream.thinking, (), error=_describe(exc))
        return Outcome(case, received, stream.text, stream.thinking,
                       tuple(call.arguments for call in stream.tool_calls),
                       dict(stream.metrics.reconnects), stream.metrics.wasted_output_tokens)

    def run(self, jobs: Iterable[tuple[int, str, str]], strategies: tuple[str, ...]) -> list[Outcome]:
        """Cut a stream per (offset, unit, kind) and strategy, 12 at a time."""
        cases = [
            (f"{kind}-{strategy}-{unit}-{at}", getattr(Fault, kind)(at, unit=unit), strategy)
            for at, unit, kind in jobs for strategy in strategies
        ]
        return self._run_cases(cases)

    def _run_cases(self, cases: list[tuple[str, Fault, str]]) -> list[Outcome]:
        with self.client() as client, ThreadPoolExecutor(max_workers=12) as pool:
            return list(pool.map(lambda case: self.run_case(*case, client=client), cases))

    def run_covering(self, jobs: Iterable[tuple[int, str, str]], strategy: str,
                     rounds: int = 2) -> tuple[list[Outcome], list[Outcome]]:
        """Like :meth:`run` with one strategy, then run again (up to ``rounds``
        times) the cases that never used it: on a loaded machine a response
        can miss the read timeout for its headers, and the retry that follows
        gets no fault. Returns (every outcome, the last outcome of each case)."""
        cases = [(f"{kind}-{strategy}-{unit}-{at}", getattr(Fault, kind)(at, unit=unit), strategy)
                 for at, unit, kind in jobs]
        outcomes = self._run_cases(cases)
        every, last = list(outcomes), dict(zip((c[0] for c in cases), outcomes))
        for round_ in range(1, rounds + 1):
            again = [(f"{name}-again{round_}", fault, strategy) for name, fault, strategy in cases
                     if strategy not in last[name].reconnects and "retry" in last[name].reconnects]
            if not again:
                break
            for case, outcome in zip(again, self._run_cases(again)):
                every.append(outcome)
                last[case[0].rsplit("-again", 1)[0]] = outcome
        return every, list(last.values())


def failures(outcomes: list[Outcome], expected: Expected) -> list[tuple[str, int, int, str]]:
    """The cases whose delivered answer differs from ``expected`` or that failed."""
    return [(o.case, len(o.received), len(o.text), o.error) for o in outcomes if o.differs(expected)]


def _describe(exc: BaseException) -> str:
    chain = []
    cause: BaseException | None = exc
    while cause is not None:
        chain.append(type(cause).__name__)
        cause = cause.__cause__
    return f"{' <- '.join(chain)}: {exc}"

