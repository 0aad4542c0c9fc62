"""Timing and cost figures of one stream (:attr:`Stream.metrics`).

Times are seconds from :func:`time.monotonic`, measured by the stream that
owns the object; read them after the stream ended, or read a consistent copy
with :meth:`StreamMetrics.copy` while it runs.
"""

from __future__ import annotations

import copy as _copy
import statistics
from dataclasses import dataclass, field
from typing import Any

__all__ = ["StreamMetrics"]


@dataclass
class StreamMetrics:
    """What happened to one stream.

    ``ttfb`` is the time to the first body byte and ``ttft`` to the first
    answer text, both from the start of the stream; ``gaps`` are the times
    between consecutive text events; ``reconnects`` counts resumed connections
    per strategy (``"retry"`` for attempts before any answer arrived).
    ``resent_chars`` and ``wasted_output_tokens`` count what servers sent again
    (verified and dropped); ``reread_input_tokens`` is the prompt read again by
    resumed requests (from their usage, when reported). ``error`` is the class
    name of the exception that ended the stream (``None`` when it completed).
    """

    started: float = 0.0
    ended: float | None = None
    ttfb: float | None = None
    ttft: float | None = None
    text_events: int = 0
    chars: int = 0
    gaps: list[float] = field(default_factory=list)
    reconnects: dict[str, int] = field(default_factory=dict)
    reconnect_time: float = 0.0
    resets: int = 0
    resent_chars: int = 0
    wasted_output_tokens: int = 0
    reread_input_tokens: int = 0
    billed_input_tokens: int = 0
    billed_output_tokens: int = 0
    cost: Any = None
    error: str | None = None
    _last_text_at: float | None = field(default=None, repr=False)

    @property
    def total_reconnects(self) -> int:
        """All reconnects, whatever the strategy."""
        return sum(self.reconnects.values())

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (``None`` while running)."""
        return None if self.ended is None else self.ended - self.started

    @property
    def tokens_per_second(self) -> float | None:
        """Text events per second between the first and the last one."""
        if self.ttft is None or self._last_text_at is None or self.text_events < 2:
            return None
        span = self._last_text_at - (self.started + self.ttft)
        return (self.text_events - 1) / span if span > 0 else None

    @property
    def gap_p50(self) -> float | None:
        """Median inter-token gap."""
        return statistics.median(self.gaps) if self.gaps else None

    @property
    def gap_max(self) -> float | None:
        """Longest inter-token gap."""
        return max(self.gaps) if self.gaps else None

    def record_text(self, now: float, chars: int) -> None:
        """Count one text event of ``chars`` characters received at ``now``."""
        if self.ttft is None:
            self.ttft = now - self.started
        elif self._last_text_at is not None:
            self.gaps.append(now - self._last_text_at)
        self._last_text_at = now
        self.text_events += 1
        self.chars += chars

    def copy(self) -> StreamMetrics:
        """A snapshot that will not change."""
        return _copy.deepcopy(self)

    def summary(self) -> dict[str, Any]:
        """The figures as a plain dict (for logs and JSON)."""
        return {
            "ttfb": self.ttfb,
            "ttft": self.ttft,
            "duration": self.duration,
            "text_events": self.text_events,
            "chars": self.chars,
            "tokens_per_second": self.tokens_per_second,
            "gap_p50": self.gap_p50,
            "gap_max": self.gap_max,
            "reconnects": dict(self.reconnects),
            "reconnect_time": self.reconnect_time,
            "resets": self.resets,
            "resent_chars": self.resent_chars,
            "wasted_output_tokens": self.wasted_output_tokens,
            "reread_input_tokens": self.reread_input_tokens,
            "cost": self.cost,
            "error": self.error,
        }

    def __str__(self) -> str:
        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value * 1000:.0f} ms"

        tps = self.tokens_per_second
        return (
            f"TTFB {ms(self.ttfb)}, TTFT {ms(self.ttft)}, {self.text_events} text events"
            f", {'-' if tps is None else f'{tps:.0f}'} tokens/s, {self.total_reconnects} reconnects"
            f", {self.wasted_output_tokens} wasted tokens"
        )
