"""Soak: many streams through random faults, and what is left afterwards.

Streams ``--streams`` answers (10,000 by default) from a fake server running
in a child process (so that memory, file descriptors and threads counted here
are the client's alone), through :class:`holysse.testing.RandomFaults`: FIN,
RST and stalls at random offsets, 429 with ``Retry-After``, 500/502/503,
up to three per stream. ``--workers`` threads share one :class:`Client`;
resume strategies rotate (auto, cursor, prefill, replay). Reports:

- lost streams (ended with an error) and streams whose text is not the answer;
- duplicated and missing characters over all streams;
- peak traced memory (tracemalloc) and traced memory at start, every 10 %, end;
- open file descriptors and threads at start, every 10 %, end.

Target: 0 lost, 0 duplicated, 0 missing, memory and fds and threads flat.
Backoff sleeps are skipped (``Client(sleep=...)``); stalls cost the read
timeout. Run: ``python benchmarks/soak.py [--streams N] [--workers W] [--seed S]``.
"""

from __future__ import annotations

import argparse
import difflib
import gc
import json
import os
import queue
import subprocess
import sys
import threading
import time
import tracemalloc
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import holysse
from holysse.testing import FakeServer, RandomFaults

STRATEGIES = ("auto", "cursor", "prefill", "replay")
SEEDS = 97  # distinct answers (the expected texts are computed once each)


@dataclass
class Sample:
    """The client's resources after ``done`` streams."""

    done: int
    traced_bytes: int
    fds: int
    threads: int


@dataclass
class SoakReport:
    streams: int
    seconds: float
    lost: int = 0
    wrong: int = 0
    duplicated_chars: int = 0
    missing_chars: int = 0
    resets: int = 0
    reconnects: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    peak_traced_bytes: int = 0
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def start(self) -> Sample:
        return self.samples[0]

    @property
    def end(self) -> Sample:
        return self.samples[-1]

    def summary(self) -> str:
        mib = 1 / 2**20
        lines = [
            f"streams {self.streams} in {self.seconds:.1f}s; faults {sum(self.faults.values())} {self.faults}; "
            f"reconnects {self.reconnects}; resets {self.resets}",
            f"lost {self.lost}; wrong text {self.wrong}; duplicated chars {self.duplicated_chars}; "
            f"missing chars {self.missing_chars}",
            f"traced memory: peak {self.peak_traced_bytes * mib:.2f} MiB; "
            + ", ".join(f"{s.done}: {s.traced_bytes * mib:.2f}" for s in self.samples) + " MiB",
            "fds: " + ", ".join(f"{s.done}: {s.fds}" for s in self.samples),
            "threads: " + ", ".join(f"{s.done}: {s.threads}" for s in self.samples),
        ]
        return "\n".join(lines + [f"first errors: {self.errors[:3]}"] * bool(self.errors))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def body_for(i: int) -> dict[str, Any]:
    seed = i % SEEDS
    question = f"Soak question {seed}: describe stream {seed}."
    return {"model": "fake-1", "messages": [{"role": "user", "content": question}], "seed": seed, "user": f"s{i}"}


def char_errors(received: str, expected: str) -> tuple[int, int]:
    """(duplicated or extra characters, missing characters) of ``received``."""
    if received == expected:
        return 0, 0
    extra = missing = 0
    for tag, a1, a2, b1, b2 in difflib.SequenceMatcher(None, received, expected, autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            extra += a2 - a1
        if tag in ("replace", "insert"):
            missing += b2 - b1
    return extra, missing


# -- the server, in a child process -------------------------------------------------


def serve(seed: int, answer_chars: int, span: int) -> None:
    """Child process: run the fake server until stdin closes; print its URL,
    then the faults it injected as JSON."""
    faults = RandomFaults(seed, rate=0.5, max_faults=3, span=span)
    with FakeServer(answer_chars=answer_chars, faults=faults) as server:
        print(server.url, flush=True)
        sys.stdin.read()
    print(json.dumps(dict(faults.injected)), flush=True)


class ServerProcess:
    """The fake server in a child process, stopped by closing its stdin."""

    def __init__(self, seed: int, answer_chars: int, span: int) -> None:
        command = [sys.executable, os.path.abspath(__file__), "--serve", "--seed", str(seed),
                   "--answer-chars", str(answer_chars), "--span", str(span)]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        self.url = self._process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.stop()
            raise RuntimeError(f"the soak server did not start (said {self.url!r})")

    def stop(self) -> dict[str, int]:
        """Stop the child (bounded) and return the faults it injected."""
        try:
            out, _ = self._process.communicate(input="", timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.communicate()
            return {}
        return json.loads(out.strip() or "{}")


# -- the client side --------------------------------------------------------------------


def run_soak(streams: int = 10_000, *, workers: int = 8, seed: int = 1, answer_chars: int = 300,
             read_timeout: float = 0.5, trace: bool = True,
             progress: Callable[[str], None] | None = None) -> SoakReport:
    """Run the soak and return its report (see the module docstring).

    :param read_timeout: what a stall costs (and the longest silence tolerated).
    """
    reference = FakeServer(answer_chars=answer_chars)  # never started: computes the expected answers
    expected = [reference.expected_text(body_for(i)) for i in range(SEEDS)]
    span = len(reference.body_for(body_for(0)))  # cuts land anywhere in the body
    server = ServerProcess(seed, answer_chars, span)
    report = SoakReport(streams=streams, seconds=0.0)
    lock = threading.Lock()
    if trace:
        tracemalloc.start()
    try:
        gc.collect()
        report.samples.append(_sample(0))
        started = time.monotonic()
        client = holysse.Client(
            api_key="hs_" + "s" * 32, base_url=server.url, provider="vllm",
            timeout=holysse.Timeout(connect=10, read=read_timeout),
            retry=holysse.RetryPolicy(max_attempts=10, backoff_initial=0.01), sleep=lambda _delay: None,
        )
        jobs: queue.Queue[int] = queue.Queue()
        for i in range(streams):
            jobs.put(i)
        marks = {streams * k // 10 for k in range(1, 10)}
        done = [0]

        def one(i: int) -> None:
            stream = client.stream(resume=STRATEGIES[i % len(STRATEGIES)], **body_for(i))
            want = expected[i % SEEDS]
            received = ""
            try:
                for event in stream:
                    if isinstance(event, holysse.Reset):
                        received = ""
                    received += event.text
            except holysse.HolySSEError as exc:
                with lock:
                    report.lost += 1
                    report.errors.append(f"stream {i}: {exc!r}"[:300])
                return
            extra, missing = char_errors(received, want)
            with lock:
                report.wrong += received != want or stream.text != want
                report.duplicated_chars += extra
                report.missing_chars += missing
                report.resets += stream.metrics.resets
                report.reconnects += stream.metrics.total_reconnects

        def worker() -> None:
            while True:
                try:
                    i = jobs.get_nowait()
                except queue.Empty:
                    return
                one(i)
                with lock:
                    done[0] += 1
                    count = done[0]
                if count in marks:
                    sample = _sample(count)
                    with lock:
                        report.samples.append(sample)
                    if progress is not None:
                        progress(f"{count}/{streams} streams, {sample.traced_bytes / 2**20:.2f} MiB traced, "
                                 f"{sample.fds} fds, {sample.threads} threads")

        threads = [threading.Thread(target=worker, name=f"soak-{n}") for n in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        client.close()
        report.seconds = time.monotonic() - started
        gc.collect()
        report.samples.sort(key=lambda s: s.done)
        report.samples.append(_sample(streams))
        if trace:
            report.peak_traced_bytes = tracemalloc.get_traced_memory()[1]
    finally:
        if trace:
            tracemalloc.stop()
        report.faults = server.stop()
    return report


def _sample(done: int) -> Sample:
    traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0
    return Sample(done, traced, open_fds(), threading.active_count())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--answer-chars", type=int, default=300)
    parser.add_argument("--read-timeout", type=float, default=0.5)
    parser.add_argument("--span", type=int, default=10_000, help=argparse.SUPPRESS)
    parser.add_argument("--no-trace", action="store_true", help="skip tracemalloc (faster; no memory figures)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.seed, args.answer_chars, args.span)
        return 0
    report = run_soak(args.streams, workers=args.workers, seed=args.seed, answer_chars=args.answer_chars,
                      read_timeout=args.read_timeout, trace=not args.no_trace, progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(asdict(report), indent=1) if args.json else report.summary())
    return 0 if report.lost == report.wrong == report.duplicated_chars == report.missing_chars == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
