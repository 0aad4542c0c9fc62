"""LatencyMonitor: percentiles, thread safety, the report, and the
``on_metrics`` hook of a real client."""

from __future__ import annotations

import random
import statistics
import threading

import pytest

import holysse
from holysse.monitor import LatencyMonitor, Stats, StreamSample, cost_value, percentile
from holysse.testing import FakeServer, Fault

from .conftest import CHAT, make_client


def metrics(i: int, *, error: str | None = None, cost: object = None,
            reconnects: dict[str, int] | None = None) -> holysse.StreamMetrics:
    """Synthetic metrics of stream ``i``: every figure derived from ``i``."""
    m = holysse.StreamMetrics(started=100.0 + i, ended=100.0 + i + 1.0 + i / 1000)
    m.ttfb, m.ttft = 0.010 + i / 10_000, 0.020 + i / 10_000
    m.gaps = [0.001 * (1 + (i + k) % 5) for k in range(4)]
    m.text_events, m._last_text_at = 5, m.started + m.ttft + sum(m.gaps)
    m.reconnects, m.error, m.cost = dict(reconnects or {}), error, cost
    return m


def test_percentile_matches_statistics_quantiles_inclusive() -> None:
    rng = random.Random(4)
    for size in (2, 3, 10, 101, 997):
        values = sorted(rng.expovariate(20) for _ in range(size))
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        assert percentile(values, 0.50) == pytest.approx(cuts[49])
        assert percentile(values, 0.90) == pytest.approx(cuts[89])
        assert percentile(values, 0.99) == pytest.approx(cuts[98])
        assert (percentile(values, 0.0), percentile(values, 1.0)) == (values[0], values[-1])
    assert percentile([7.0], 0.99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 0.5)
    with pytest.raises(ValueError):
        percentile([1.0], 1.5)


def test_stats_of_values_empty_and_single() -> None:
    stats = Stats.of([4.0, 1.0, 3.0, 2.0])
    assert (stats.count, stats.min, stats.p50, stats.max, stats.mean) == (4, 1.0, 2.5, 4.0, 2.5)
    assert stats.stdev == pytest.approx(statistics.stdev([1, 2, 3, 4]))
    assert Stats.of([]) == Stats() and Stats.of([]).p50 is None
    assert Stats.of([2.0]).stdev == 0.0


def test_records_from_many_threads_are_all_counted() -> None:
    monitor = LatencyMonitor(window=None)
    start = threading.Barrier(8)

    def worker(offset: int) -> None:
        start.wait(5)
        for i in range(offset, 2000, 8):
            monitor.record(metrics(i, error="ReadTimeout" if i % 100 == 0 else None,
                                   reconnects={"cursor": 1} if i % 10 == 0 else None))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(monitor) == monitor.recorded == 2000
    every = [metrics(i) for i in range(2000)]
    assert monitor.stats("ttfb") == Stats.of(m.ttfb for m in every)  # type: ignore[misc]
    assert monitor.stats("gap") == Stats.of(g for m in every for g in m.gaps)
    assert monitor.stats("gap").count == 8000
    report = monitor.report()
    assert report["streams"] == 2000 and report["completed"] == 1980 and report["errors"] == {"ReadTimeout": 20}
    assert report["reconnects"]["total"] == report["reconnects"]["streams"] == 200
    assert report["reconnects"]["by_strategy"] == {"cursor": 200}


def test_window_keeps_the_most_recent_streams() -> None:
    monitor = LatencyMonitor(window=10)
    for i in range(25):
        monitor.record(metrics(i))
    assert len(monitor) == 10 and monitor.recorded == 25
    assert monitor.stats("ttfb").min == pytest.approx(0.010 + 15 / 10_000)
    monitor.reset()
    assert len(monitor) == 0 and monitor.stats("total") == Stats()
    with pytest.raises(ValueError):
        LatencyMonitor(window=0)
    with pytest.raises(ValueError, match="Unknown figure"):
        monitor.stats("latency")


def test_report_cost_and_target() -> None:
    monitor = LatencyMonitor()
    for i, cost in enumerate([0.25, None, "unknown", 0.5]):
        monitor.record(metrics(i * 100, cost=cost))
    report = monitor.report(target_ttfb=0.015)
    assert report["cost"] == {"total": 0.75, "known": 2, "unknown": 2}
    # TTFBs are 10, 20, 30 and 40 ms (+ 1 ms per 10 streams): three over 15 ms.
    assert report["target_ttfb"] == {"seconds": 0.015, "streams_missed": 3, "over": ["p50", "p90", "p99", "max"]}
    assert cost_value(True) is None and cost_value(float("nan")) is None and cost_value(2) == 2.0


def test_sample_arrivals_rebuild_the_token_times() -> None:
    sample = StreamSample.from_metrics(metrics(0))
    assert sample.arrivals() == pytest.approx([0.020, 0.021, 0.023, 0.026, 0.030])
    assert StreamSample.from_metrics(holysse.StreamMetrics()).arrivals() == []


def test_on_metrics_feeds_a_monitor_with_real_streams(server: FakeServer) -> None:
    monitor = LatencyMonitor()
    client = make_client(server, on_metrics=monitor.record)
    server.set_faults([Fault.fin(server.event_offsets(CHAT)[20] + 5), None, None, Fault.status(400)])
    for _ in range(2):
        assert client.stream(**CHAT).final().text == server.expected_text(CHAT)
    with pytest.raises(holysse.HTTPStatusError):
        client.stream(**CHAT).final()
    report = monitor.report()
    assert report["streams"] == 3 and report["errors"] == {"HTTPStatusError": 1}
    assert report["reconnects"]["by_strategy"] == {"cursor": 1}
    assert report["ttft"]["count"] == 2 and report["ttft"]["max"] < report["total"]["max"]
    events = [s.text_events for s in monitor.samples()]
    assert events[0] == events[1] > 0 and events[2] == 0
