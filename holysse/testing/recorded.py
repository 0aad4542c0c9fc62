"""What the fake server received: :class:`RecordedRequest`, one request as
it arrived. A leaf module: the fault plan and the server's state both use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["RecordedRequest"]


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake server received, as it arrived."""

    #: ``"GET"``, ``"POST"``, ...
    method: str
    #: The path without the query string (``"/v1/chat/completions"``).
    path: str
    #: The query string, last value wins.
    query: dict[str, str] = field(hash=False)
    #: Headers with their original casing (repeated headers joined by ``", "``).
    headers: dict[str, str] = field(hash=False)
    #: The parsed JSON body, or ``None`` (no body, or not JSON).
    body: Any = field(hash=False)
    #: The body bytes as received.
    raw_body: bytes
    #: Arrival order, from 0.
    index: int

    def header(self, name: str, default: str | None = None) -> str | None:
        """A header value, looked up case-insensitively.

        :param name: the header name in any casing.
        :param default: returned when the header is absent.
        """
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return default
