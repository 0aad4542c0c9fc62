"""Timing and cost figures of one stream (:attr:`Stream.metrics`).

Times are seconds from :func:`time.monotonic`, measured by the stream that
owns the object; read them after the stream ended, or read a consistent copy
with :meth:`StreamMetrics.copy` while it runs.
"""

from __future__ import annotations

import copy as _copy
import statistics
from array import array
from dataclasses import dataclass, field
from typing import Any, MutableSequence

from .events import Usage
from .pricing import PriceTable, TokenCount

__all__ = ["StreamMetrics", "TokenCount", "Leg"]

#: Inter-token gaps kept before they are sampled.
_MAX_GAPS = 2048


@dataclass
class Leg:
    """One connection that reached the model (its response was a stream).

    :param strategy: how it was opened (``first``, ``retry``, ``cursor``,
        ``prefill``, ``replay``).
    :param delivered_before: content events delivered before it opened.
    :param generation: it started a new generation (a cursor connection
        continues the previous one, unless the server started over).
    """

    strategy: str
    delivered_before: int
    generation: bool
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None


@dataclass(repr=False)
class StreamMetrics:
    """What happened to one stream.

    ``ttfb`` is the time to the first body byte and ``ttft`` to the first
    answer text, both from the start of the stream; ``gaps`` are the times
    between consecutive text events (all of them up to 2048, then an even
    sample of them, so memory stays bounded); ``reconnects`` counts resumed connections
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
    gaps: MutableSequence[float] = field(default_factory=lambda: array("d"))
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
    #: Connections that reached the model, in order (for the token accounting).
    legs: list[Leg] = field(default_factory=list, repr=False)
    _last_text_at: float | None = field(default=None, repr=False)
    _gap_max: float = field(default=0.0, repr=False)
    _gap_stride: int = field(default=1, repr=False)
    _gap_skip: int = field(default=0, repr=False)

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
        return max(self._gap_max, max(self.gaps)) if self.gaps else None

    def _record_text(self, now: float, chars: int) -> None:
        """Count one text event of ``chars`` characters received at ``now``."""
        if self.ttft is None:
            self.ttft = now - self.started
        elif self._last_text_at is not None:
            gap = now - self._last_text_at
            if gap > self._gap_max:
                self._gap_max = gap
            self._gap_skip += 1
            if self._gap_skip >= self._gap_stride:
                self._gap_skip = 0
                gaps = self.gaps
                gaps.append(gap)
                if len(gaps) > _MAX_GAPS:  # keep every other one, sample half as often
                    del gaps[1::2]
                    self._gap_stride *= 2
        self._last_text_at = now
        self.text_events += 1
        self.chars += chars

    # -- token accounting -----------------------------------------------------

    def _begin_leg(self, strategy: str, delivered_before: int) -> None:
        """A connection opened with ``strategy`` got a stream from the server."""
        self.legs.append(Leg(strategy, delivered_before, generation=strategy != "cursor"))

    def _leg_restarted(self) -> None:
        """The current cursor connection started the answer over: it is a new
        generation after all (the prompt was read again)."""
        if self.legs:
            self.legs[-1].generation = True

    def _record_usage(self, usage: Usage) -> None:
        """A usage report for the current connection (a later report of the
        same connection replaces the figures it gives)."""
        if not self.legs:
            self._begin_leg("first", 0)
        leg = self.legs[-1]
        if usage.input_tokens is not None:
            leg.input_tokens = usage.input_tokens
        if usage.output_tokens is not None:
            leg.output_tokens = usage.output_tokens
        if usage.cached_input_tokens is not None:
            leg.cached_input_tokens = usage.cached_input_tokens
        self.billed_input_tokens = sum(leg.input_tokens or 0 for leg in self.legs)
        self.billed_output_tokens = sum(leg.output_tokens or 0 for leg in self.legs)

    def _settle_cost(self, prices: PriceTable, model: str | None, delivered: int) -> None:
        """Count the answer's tokens and waste (see :meth:`tokens`) and price
        them into :attr:`cost` with ``prices``."""
        tokens = self.tokens(delivered)
        self.reread_input_tokens = tokens.reread_input_tokens
        self.cost = prices.cost(model, tokens)

    def tokens(self, delivered: int) -> TokenCount:
        """The answer's tokens and the resume waste, from the usage reports.

        A generation is a connection that made the model start (or restart)
        the answer, with the cursor connections that continued it; its usage
        is the last one reported on any of them.

        :param delivered: content events delivered in total (the output
            estimate when the final generation reported no usage).
        """
        generations = _generations(self.legs)
        if not generations:
            return TokenCount(output_tokens=delivered, wasted_output_tokens=self.wasted_output_tokens,
                              estimated=True)
        prompt, cached, estimated = _prompt(generations)
        reread = 0
        for generation in generations[1:]:
            estimated = estimated or generation.input_tokens is None
            reread += prompt if generation.input_tokens is None else generation.input_tokens
        final = generations[-1]
        if final.output_tokens is None:
            output, estimated = delivered, True
        else:
            output = final.output_tokens + (final.delivered_before if final.strategy == "prefill" else 0)
        return TokenCount(prompt, output, cached, reread, self.wasted_output_tokens, estimated)

    def __repr__(self) -> str:
        def sec(value: float | None) -> str:
            return "None" if value is None else f"{value:.3f}"

        return (
            f"StreamMetrics(ttfb={sec(self.ttfb)}, ttft={sec(self.ttft)}, duration={sec(self.duration)}, "
            f"text_events={self.text_events}, chars={self.chars}, gaps={len(self.gaps)}, "
            f"reconnects={self.reconnects!r}, resets={self.resets}, resent_chars={self.resent_chars}, "
            f"wasted_output_tokens={self.wasted_output_tokens}, reread_input_tokens={self.reread_input_tokens}, "
            f"cost={str(self.cost) if self.cost is not None else None!r}, error={self.error!r})"
        )

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


def _generations(legs: list[Leg]) -> list[Leg]:
    """One merged :class:`Leg` per generation (see :meth:`StreamMetrics.tokens`)."""
    merged: list[Leg] = []
    for leg in legs:
        if leg.generation or not merged:
            merged.append(Leg(leg.strategy, leg.delivered_before, True))
        current = merged[-1]
        for name in ("input_tokens", "output_tokens", "cached_input_tokens"):
            if getattr(leg, name) is not None:
                setattr(current, name, getattr(leg, name))
    return merged


def _prompt(generations: list[Leg]) -> tuple[int, int, bool]:
    """(prompt tokens, cached prompt tokens, estimated): the input of the first
    generation that reported one and did not carry a prefill; else a prefill
    generation's input minus its prefilled part (one token per event)."""
    for generation in generations:
        if generation.input_tokens is not None and generation.strategy != "prefill":
            return generation.input_tokens, generation.cached_input_tokens or 0, False
    for generation in generations:
        if generation.input_tokens is not None:
            return max(0, generation.input_tokens - generation.delivered_before), 0, True
    return 0, 0, True
