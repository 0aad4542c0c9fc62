"""Faults the fake server injects, and the plan that hands them out.

A :class:`Fault` is a frozen value built with one of its class methods
(``Fault.fin(120)``, ``Fault.status(429, retry_after=2)``, ...). A
:class:`FaultPlan` gives one fault (or ``None``) to each streaming request: a
list is consumed in arrival order, a callable is asked per request.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, Union

if TYPE_CHECKING:
    from .recorded import RecordedRequest

__all__ = ["Fault", "FaultPlan", "FaultSource"]

logger = logging.getLogger(__name__)

_UNITS = ("payload", "wire")


def _check_cut(at: int, unit: str) -> None:
    if not isinstance(at, int) or at < 0:
        raise ValueError(f"A cut offset must be an int >= 0, got {at!r}.")
    if unit not in _UNITS:
        raise ValueError(f"unit must be 'payload' or 'wire', got {unit!r}.")


def _as_bytes(body: bytes | str | Mapping[str, Any] | None) -> bytes | None:
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class Fault:
    """One misbehaviour for one request. Build it with a class method.

    Cut offsets (``at``) count either bytes of the decoded SSE body
    (``unit="payload"``, before chunked framing and gzip) or bytes exactly as
    written on the socket after the response headers (``unit="wire"``).
    """

    #: ``fin``, ``rst``, ``stall``, ``headers_stall``, ``status``,
    #: ``content_type``, ``malformed_json``, ``error_event`` or ``drop_ids``.
    kind: str
    #: Cut offset for ``fin``/``rst``/``stall``.
    at: int = 0
    #: ``"payload"`` or ``"wire"``.
    unit: str = "payload"
    #: How long a stall holds the connection (``None``: until it is closed).
    seconds: float | None = None
    #: HTTP status for ``status``.
    status_code: int = 200
    #: ``Retry-After`` header value (int seconds or a string such as an HTTP date).
    retry_after: int | str | None = None
    #: ``retry-after-ms`` header value.
    retry_after_ms: int | None = None
    #: Extra response headers.
    headers: tuple[tuple[str, str], ...] = ()
    #: Response body replacing the default one.
    body: bytes | None = None
    #: Content-Type for ``content_type``.
    media_type: str | None = None
    #: Event index for ``malformed_json`` and ``error_event``.
    at_event: int = 0
    #: Error type for ``error_event``.
    error_type: str = "server_error"
    #: Error message for ``error_event``.
    message: str = "The server had an error while processing your request."
    #: Whether the in-stream error is meant as retryable (chooses the
    #: Anthropic type: ``overloaded_error`` or ``api_error``).
    retryable: bool = True

    # -- constructors -------------------------------------------------------

    @classmethod
    def fin(cls, at: int, unit: str = "payload") -> Fault:
        """Send the headers and the first ``at`` bytes of the body, then close
        cleanly (FIN)."""
        _check_cut(at, unit)
        return cls("fin", at=at, unit=unit)

    @classmethod
    def rst(cls, at: int, unit: str = "payload") -> Fault:
        """Like :meth:`fin`, then close with ``SO_LINGER (1, 0)`` so the peer
        gets an RST."""
        _check_cut(at, unit)
        return cls("rst", at=at, unit=unit)

    @classmethod
    def stall(cls, at: int, unit: str = "payload", seconds: float | None = None) -> Fault:
        """Send ``at`` bytes, then go silent for ``seconds`` (``None``: until
        the client or the server closes the connection), then close."""
        _check_cut(at, unit)
        return cls("stall", at=at, unit=unit, seconds=seconds)

    @classmethod
    def headers_stall(cls, seconds: float | None = None) -> Fault:
        """Accept the request and send nothing, not even the headers."""
        return cls("headers_stall", seconds=seconds)

    @classmethod
    def status(
        cls,
        code: int,
        *,
        retry_after: int | str | None = None,
        retry_after_ms: int | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | str | Mapping[str, Any] | None = None,
    ) -> Fault:
        """Answer with status ``code`` and a JSON error body in the provider's shape.

        :param retry_after: the ``Retry-After`` header (seconds or an HTTP date).
        :param retry_after_ms: the ``retry-after-ms`` header (OpenAI style).
        :param headers: extra response headers.
        :param body: a body replacing the default error (a dict is sent as JSON).
        """
        if not 100 <= code <= 599:
            raise ValueError(f"Not an HTTP status code: {code!r}.")
        return cls("status", status_code=code, retry_after=retry_after, retry_after_ms=retry_after_ms,
                   headers=tuple((headers or {}).items()), body=_as_bytes(body))

    @classmethod
    def content_type(cls, value: str, body: bytes | str | Mapping[str, Any] | None = None) -> Fault:
        """Answer 200 with a wrong Content-Type (``value``) and ``body``
        (default: a JSON error for JSON types, an HTML page otherwise)."""
        return cls("content_type", media_type=value, body=_as_bytes(body))

    @classmethod
    def malformed_json(cls, at_event: int) -> Fault:
        """Event number ``at_event`` (0-based) carries truncated JSON; the rest is normal."""
        if at_event < 0:
            raise ValueError("at_event must be >= 0.")
        return cls("malformed_json", at_event=at_event)

    @classmethod
    def error_event(
        cls,
        at_event: int,
        *,
        error_type: str = "server_error",
        message: str = "The server had an error while processing your request.",
        retryable: bool = True,
    ) -> Fault:
        """After ``at_event`` events, send an error event in the dialect's
        shape and end the body without the terminal marker."""
        if at_event < 0:
            raise ValueError("at_event must be >= 0.")
        return cls("error_event", at_event=at_event, error_type=error_type, message=message, retryable=retryable)

    @classmethod
    def drop_ids(cls) -> Fault:
        """Ignore ``Last-Event-ID`` for this request and start a new generation."""
        return cls("drop_ids")

    # -- helpers ------------------------------------------------------------

    @property
    def is_cut(self) -> bool:
        """True for faults that cut the body at an offset (fin, rst, stall)."""
        return self.kind in ("fin", "rst", "stall")

    def describe(self) -> str:
        """A short human description, for logs and the demo."""
        if self.is_cut:
            return f"{self.kind} after {self.at} {self.unit} bytes"
        if self.kind == "status":
            return f"status {self.status_code}"
        if self.kind == "content_type":
            return f"Content-Type {self.media_type}"
        if self.kind in ("malformed_json", "error_event"):
            return f"{self.kind} at event {self.at_event}"
        return self.kind


FaultSource = Union[Sequence[Union[Fault, None]], Callable[["RecordedRequest"], Union[Fault, None]], None]


class FaultPlan:
    """Hands out faults to streaming requests. Thread-safe.

    :param source: a sequence (one entry per streaming request, in arrival
        order; ``None`` entries and an exhausted list mean no fault), a
        callable taking the :class:`RecordedRequest`, or ``None``.
    """

    def __init__(self, source: FaultSource = None) -> None:
        self._lock = threading.Lock()
        self._position = 0
        self._source = self._check(source)

    @staticmethod
    def _check(source: FaultSource) -> FaultSource:
        if source is None or callable(source):
            return source
        items = list(source)
        for item in items:
            if item is not None and not isinstance(item, Fault):
                raise TypeError(f"A fault plan holds Fault or None, got {type(item).__name__}.")
        return items

    def replace(self, source: FaultSource) -> None:
        """Start over with a new plan."""
        checked = self._check(source)
        with self._lock:
            self._source = checked
            self._position = 0

    def take(self, request: RecordedRequest) -> Fault | None:
        """The fault for ``request`` (consumes one list entry)."""
        with self._lock:
            source = self._source
            if source is None:
                return None
            if not callable(source):
                if self._position >= len(source):
                    return None
                fault = source[self._position]
                self._position += 1
                return fault
        fault = source(request)  # user code runs outside the lock
        if fault is not None and not isinstance(fault, Fault):
            raise TypeError(f"A fault callable must return Fault or None, got {type(fault).__name__}.")
        return fault
