"""Value types shared by every layer: :class:`Timeout`, :class:`HTTPRequest`,
and the :class:`Response` / :class:`Transport` protocols (the transport seam).

A leaf module: it imports neither requests nor urllib3 (only the exception
tree), so dialects, the resume core and test transports depend on these
shapes without depending on an HTTP library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Protocol

from ._redact import is_credential
from .exceptions import UsageError

__all__ = ["Timeout", "HTTPRequest", "Response", "Transport", "utf8_header"]


def utf8_header(value: str) -> str:
    """``value`` as a header value that goes on the wire as its UTF-8 bytes
    (how browsers send ``Last-Event-ID``): HTTP libraries encode ``str``
    header values as Latin-1, so each UTF-8 byte becomes one character."""
    return value if value.isascii() else value.encode("utf-8", "surrogatepass").decode("latin-1")


@dataclass(frozen=True)
class Timeout:
    """Connection timeouts, in seconds.

    :param connect: how long to wait for a connection (and TLS) to open.
    :param read: the longest silence allowed between two reads, including the
        wait for the response headers. A longer silence is a *stall*: the
        stream is cut and resumed. It limits gaps, not the whole stream; for
        that see :attr:`RetryPolicy.deadline`. Models that think in silence
        before their first token need more (``read=600``): a stall before
        anything arrived sends the request again.
    :param idle: the longest time a connection may go without an answer event
        (text, reasoning, a tool call, usage, the finish), however many bytes
        arrive meanwhile: keep-alive comments, pings and an event that never
        ends do not count. Checked whenever bytes arrive, so a stall is
        noticed after at most ``idle + read``. Past it the connection is cut
        like a stall (:class:`~holysse.exceptions.ReadTimeout`) and resumed.
        Allow for the model's time to first token.
    """

    connect: float | None = 10.0
    read: float | None = 60.0
    idle: float | None = 300.0

    @classmethod
    def from_value(cls, value: Timeout | float | tuple[float | None, ...] | None) -> Timeout:
        """Accept a :class:`Timeout`, one number for ``connect`` and ``read``,
        ``(connect, read)`` or ``(connect, read, idle)``, or ``None`` for no
        limit at all."""
        if isinstance(value, Timeout):
            return value
        if value is None:
            return cls(None, None, None)
        if isinstance(value, tuple) and 2 <= len(value) <= 3:
            return cls(*value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return cls(float(value), float(value))
        raise UsageError(
            f"timeout must be a number of seconds (timeout=30), (connect, read), (connect, read, idle) or a "
            f"Timeout, not {value!r}."
        )

    def __post_init__(self) -> None:
        for name in ("connect", "read", "idle"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0):
                raise UsageError(f"Timeout.{name} must be a positive number of seconds or None, not {value!r}")


@dataclass(frozen=True)
class HTTPRequest:
    """One HTTP request, as a dialect builds it. Its repr never shows secrets."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None

    def __repr__(self) -> str:
        shown = {k: ("<redacted>" if is_credential(k) else v) for k, v in self.headers.items()}
        return f"HTTPRequest({self.method} {self.url}, headers={shown})"

    def replace(self, **changes: Any) -> HTTPRequest:
        """A copy with some fields changed (``headers`` are merged, not replaced)."""
        headers = dict(self.headers)
        headers.update(changes.pop("headers", {}))
        return HTTPRequest(
            method=changes.pop("method", self.method),
            url=changes.pop("url", self.url),
            headers=headers,
            json=changes.pop("json", self.json),
        )


class Response(Protocol):
    """An open streaming response."""

    status_code: int
    headers: Mapping[str, str]

    def iter_bytes(self) -> Iterator[bytes]:
        """Yield the (decoded) body as it arrives; raise holysse errors only."""

    def read_text(self, limit: int = 65536) -> str:
        """Read at most ``limit`` bytes of the body as text (for error bodies)."""

    def close(self, *, complete: bool = False) -> None:
        """Release the connection. ``complete``: the body was read to its end,
        so the connection may go back to the pool."""

    def abort(self) -> None:
        """Unblock a read in progress in another thread and close. Thread-safe."""


class Transport(Protocol):
    """Opens streaming requests. Must be safe to share between threads."""

    def open(self, request: HTTPRequest, timeout: Timeout) -> Response:
        """Send ``request`` and return once the response headers arrived."""

    def close(self) -> None:
        """Release every pooled connection."""
