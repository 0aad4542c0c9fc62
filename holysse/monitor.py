"""Latency figures over many streams: :class:`LatencyMonitor`.

A monitor collects the :class:`~holysse.metrics.StreamMetrics` of finished
streams from any number of threads and reports the figures ``holysse bench``
shows: TTFB, time to first token, inter-token gap and total time (min, p50,
p90, p99, max, stdev), tokens per second, reconnects, errors and cost::

    monitor = LatencyMonitor()
    client = holysse.Client(on_metrics=monitor.record)
    ...                                 # streams from any number of threads
    print(monitor.stats("ttft").p90, monitor.report()["errors"])

Percentiles interpolate linearly between the closest ranks (numpy's default,
``statistics.quantiles(method="inclusive")``). No I/O happens here.
"""

from __future__ import annotations

import math
import statistics
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from .exceptions import UsageError
from .metrics import StreamMetrics

__all__ = ["LatencyMonitor", "Stats", "StreamSample", "percentile", "cost_value"]

#: The timing figures :meth:`LatencyMonitor.stats` knows.
FIGURES = ("ttfb", "ttft", "gap", "total", "tokens_per_second")


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (``0 <= q <= 1``) of sorted values, interpolating
    linearly between the two closest ranks.

    :raises UsageError: for no values or ``q`` outside ``[0, 1]``.
    """
    if not sorted_values:
        raise UsageError("percentile of no values")
    if not 0.0 <= q <= 1.0:
        raise UsageError(f"q must be within [0, 1], not {q!r}")
    position = (len(sorted_values) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = position - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


@dataclass(frozen=True)
class Stats:
    """Summary statistics of one figure, in its own unit (seconds for
    times). Every field but ``count`` is ``None`` when there were no values."""

    count: int = 0
    min: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None
    mean: float | None = None
    #: Sample standard deviation (``0.0`` for a single value).
    stdev: float | None = None

    #: The order in which reports show the fields.
    COLUMNS = ("min", "p50", "p90", "p99", "max", "stdev")

    @classmethod
    def of(cls, values: Iterable[float]) -> Stats:
        """The statistics of ``values`` (any order)."""
        ordered = sorted(values)
        if not ordered:
            return cls()
        return cls(
            count=len(ordered),
            min=ordered[0],
            p50=percentile(ordered, 0.50),
            p90=percentile(ordered, 0.90),
            p99=percentile(ordered, 0.99),
            max=ordered[-1],
            mean=statistics.fmean(ordered),
            stdev=statistics.stdev(ordered) if len(ordered) > 1 else 0.0,
        )

    def as_dict(self) -> dict[str, float | int | None]:
        """The statistics as a plain dict (for JSON)."""
        return {name: getattr(self, name) for name in ("count", "min", "p50", "p90", "p99", "max", "mean", "stdev")}


def cost_value(cost: Any) -> float | None:
    """A stream's cost as a number, or ``None`` when it is unknown (``None``,
    or a value that is not a number such as ``"unknown"``)."""
    if cost is None or isinstance(cost, (str, bytes, bool)):
        return None
    try:
        value = float(cost)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class StreamSample:
    """The figures of one finished stream, as the monitor keeps them.

    ``started`` is the stream's :func:`time.monotonic` start; the other times
    are seconds from it.
    """

    started: float
    ttfb: float | None
    ttft: float | None
    duration: float | None
    gaps: tuple[float, ...]
    text_events: int
    tokens_per_second: float | None
    reconnects: tuple[tuple[str, int], ...]
    resets: int
    wasted_output_tokens: int
    error: str | None
    cost: float | None

    @classmethod
    def from_metrics(cls, metrics: StreamMetrics) -> StreamSample:
        """Copy the figures out of ``metrics`` (which stays the stream's)."""
        return cls(
            started=metrics.started,
            ttfb=metrics.ttfb,
            ttft=metrics.ttft,
            duration=metrics.duration,
            gaps=tuple(metrics.gaps),
            text_events=metrics.text_events,
            tokens_per_second=metrics.tokens_per_second,
            reconnects=tuple(sorted(metrics.reconnects.items())),
            resets=metrics.resets,
            wasted_output_tokens=metrics.wasted_output_tokens,
            error=metrics.error,
            cost=cost_value(metrics.cost),
        )

    @property
    def total_reconnects(self) -> int:
        """Reconnects of this stream, whatever the strategy."""
        return sum(count for _, count in self.reconnects)

    def arrivals(self) -> list[float]:
        """When each text event arrived, in seconds from the stream's start."""
        if self.ttft is None:
            return []
        times = [self.ttft]
        for gap in self.gaps:
            times.append(times[-1] + gap)
        return times

    def figure(self, name: str) -> list[float]:
        """The values this stream contributes to figure ``name``."""
        if name == "gap":
            return list(self.gaps)
        value = self.duration if name == "total" else getattr(self, name)
        return [] if value is None else [value]


class LatencyMonitor:
    """Aggregates the metrics of many streams; thread-safe.

    Use :meth:`record` as the client's hook (``Client(on_metrics=monitor.record)``)
    or call it yourself with ``stream.metrics`` after a stream ended.

    :param window: how many of the most recent streams the statistics cover
        (``None``: all of them; memory then grows with every stream, which
        suits a benchmark, not a server that runs for weeks).
    """

    def __init__(self, window: int | None = 1000) -> None:
        if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
            raise UsageError(f"window must be a positive int or None, not {window!r}")
        self._lock = threading.Lock()
        self._samples: deque[StreamSample] = deque(maxlen=window)
        self._recorded = 0
        self.window = window

    def __repr__(self) -> str:
        return f"<holysse.LatencyMonitor streams={len(self)} recorded={self.recorded} window={self.window}>"

    def __len__(self) -> int:
        """Streams in the window."""
        with self._lock:
            return len(self._samples)

    @property
    def recorded(self) -> int:
        """Streams recorded since the monitor was made (or reset)."""
        with self._lock:
            return self._recorded

    def record(self, metrics: StreamMetrics) -> None:
        """Add one finished stream. Safe from any thread."""
        sample = StreamSample.from_metrics(metrics)
        with self._lock:
            self._samples.append(sample)
            self._recorded += 1

    def reset(self) -> None:
        """Forget every stream."""
        with self._lock:
            self._samples.clear()
            self._recorded = 0

    def samples(self) -> list[StreamSample]:
        """The streams in the window, oldest first (a copy)."""
        with self._lock:
            return list(self._samples)

    def stats(self, figure: str) -> Stats:
        """Statistics of one figure over the window: ``"ttfb"``, ``"ttft"``,
        ``"gap"`` (every inter-token gap of every stream), ``"total"`` (stream
        duration) or ``"tokens_per_second"`` (one value per stream).

        :raises UsageError: for another name.
        """
        if figure not in FIGURES:
            raise UsageError(f"Unknown figure {figure!r}; use one of {', '.join(FIGURES)}.")
        return Stats.of(value for sample in self.samples() for value in sample.figure(figure))

    def report(self, *, target_ttfb: float | None = None) -> dict[str, Any]:
        """Everything ``holysse bench`` reports, as a plain dict (JSON-ready).

        :param target_ttfb: a TTFB target in seconds: the report then says
            how many streams missed it (a stream with no first byte misses)
            and which TTFB percentiles are over it.
        """
        samples = self.samples()
        report: dict[str, Any] = {
            "streams": len(samples),
            "completed": sum(1 for s in samples if s.error is None),
            "errors": _count(s.error for s in samples if s.error is not None),
        }
        for figure in FIGURES:
            report[figure] = Stats.of(v for s in samples for v in s.figure(figure)).as_dict()
        report["reconnects"] = {
            "total": sum(s.total_reconnects for s in samples),
            "streams": sum(1 for s in samples if s.total_reconnects),
            "by_strategy": _sum_pairs(pair for s in samples for pair in s.reconnects),
            "resets": sum(s.resets for s in samples),
            "wasted_output_tokens": sum(s.wasted_output_tokens for s in samples),
        }
        known = [s.cost for s in samples if s.cost is not None]
        report["cost"] = {"total": sum(known) if known else None, "known": len(known),
                          "unknown": len(samples) - len(known)}
        if target_ttfb is not None:
            report["target_ttfb"] = _target(report["ttfb"], samples, target_ttfb)
        return report


def _count(names: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return counts


def _sum_pairs(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for name, count in pairs:
        totals[name] = totals.get(name, 0) + count
    return totals


def _target(ttfb: dict[str, Any], samples: list[StreamSample], target: float) -> dict[str, Any]:
    over = [name for name in Stats.COLUMNS if name != "stdev" and ttfb[name] is not None and ttfb[name] > target]
    missed = sum(1 for s in samples if s.ttfb is None or s.ttfb > target)
    return {"seconds": target, "streams_missed": missed, "over": over}
