"""The frozen settings one stream runs with: :class:`StreamSettings`.

:meth:`holysse.Client.stream` takes them from the client when the stream
starts, so nothing below the client imports it, and a later change of a
client attribute (``client.retry = ...``) never changes a running stream.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

from ._types import Timeout
from .pricing import PriceTable
from .retry import RetryPolicy

__all__ = ["StreamSettings"]


def _never_closed() -> bool:
    return False


@dataclass(frozen=True)
class StreamSettings:
    """Everything a stream needs from its client, frozen at its start.

    :param base_url: for messages.
    :param retry: the reconnect policy.
    :param timeout: connection timeouts.
    :param sleep: called with each reconnect delay (``None``: a wait that
        :meth:`Stream.close` interrupts).
    :param max_event_bytes: the largest SSE event accepted.
    :param max_line_bytes: the longest SSE line accepted.
    :param max_answer_chars: the longest answer accepted (``None``: no limit).
    :param prices: the price table for the stream's cost.
    :param key_source: where the API key came from (for the 401 advice).
    :param client_closed: whether the client was closed (checked when the
        stream starts to read).
    """

    base_url: str
    retry: RetryPolicy = RetryPolicy()
    timeout: Timeout = Timeout()
    sleep: Callable[[float], None] | None = field(default=None, compare=False)
    max_event_bytes: int = 8 << 20
    max_line_bytes: int | None = None
    max_answer_chars: int | None = 4 << 20
    prices: PriceTable = field(default_factory=PriceTable, compare=False)
    key_source: str | None = None
    client_closed: Callable[[], bool] = field(default=_never_closed, compare=False, repr=False)

    def timeouts_at(self, elapsed: float) -> tuple[Timeout, float | None]:
        """For a connection opened ``elapsed`` seconds into the stream: its
        timeouts (the read timeout never runs past :attr:`retry`'s deadline)
        and the seconds left before that deadline (``None``: no deadline)."""
        timeout, remaining = self.timeout, self.retry.remaining(elapsed)
        if remaining is not None and timeout.read is not None:
            timeout = dataclasses.replace(timeout, read=max(0.001, min(timeout.read, remaining)))
        return timeout, remaining
