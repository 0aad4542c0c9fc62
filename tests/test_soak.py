"""The soak (``benchmarks/soak.py``): streams through random FIN, RST, stall,
429 and 5xx faults, from a fake server in a child process. Every stream must
be exactly its answer, and the client's memory, file descriptors and threads
must come back to where they started. The default run soaks 200 streams; the
``slow`` one 10,000."""

from __future__ import annotations

import importlib.util
import pathlib
import sys
from types import ModuleType

import pytest

SOAK_PATH = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "soak.py"


def load_soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("holysse_soak", SOAK_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


soak = load_soak()


def check(report: object, streams: int) -> None:
    assert isinstance(report, soak.SoakReport), report
    assert (report.lost, report.wrong, report.duplicated_chars, report.missing_chars) == (0, 0, 0, 0), report.summary()
    assert set(report.faults) == {"fin", "rst", "stall", "429", "5xx"}, report.faults
    assert sum(report.faults.values()) >= streams // 2 and report.reconnects >= streams // 3
    start, end = report.start, report.end
    assert (start.done, end.done) == (0, streams)
    assert end.fds == start.fds and end.threads == start.threads, report.summary()
    during = report.samples[1:-1]
    assert max(s.threads for s in during) <= start.threads + 8  # the 8 workers, nothing more
    assert max(s.fds for s in during) <= start.fds + 2 * 8 + 4  # a socket or two per worker
    assert end.traced_bytes - start.traced_bytes < 1 << 20, report.summary()
    assert report.peak_traced_bytes < 16 << 20, report.summary()


def test_soak_a_few_hundred_streams() -> None:
    report = soak.run_soak(200, workers=8, seed=3)
    check(report, 200)


@pytest.mark.slow
def test_soak_ten_thousand_streams() -> None:
    streams = 10_000
    report = soak.run_soak(streams, workers=8, seed=1)
    print(report.summary())
    check(report, streams)
    tenth = report.samples[1]
    assert max(s.traced_bytes for s in report.samples[1:-1]) - tenth.traced_bytes < 2 << 20, report.summary()
