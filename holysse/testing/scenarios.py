"""Scripted fault plans for the demo and the benchmarks."""

from __future__ import annotations

from typing import Any

from .faults import Fault

__all__ = ["demo_faults"]


def demo_faults(server: Any, body: dict[str, Any], *, dialect: str = "openai-chat") -> list[tuple[str, Fault]]:
    """Four cuts, one per connection, each further into its body than the
    last, so every strategy makes progress: a FIN inside an event, an RST, a
    stall, then a 429 with ``Retry-After: 1``."""
    ends: list[int] = server.event_offsets(body, dialect=dialect)

    def inside(fraction: float) -> int:
        i = max(1, int(len(ends) * fraction))
        return ends[i - 1] + max(1, (ends[i] - ends[i - 1]) // 2)

    return [
        ("FIN inside an event", Fault.fin(inside(0.15))),
        ("RST", Fault.rst(inside(0.25))),
        ("stall", Fault.stall(inside(0.35))),
        ("429 Retry-After: 1", Fault.status(429, retry_after=1)),
    ]
