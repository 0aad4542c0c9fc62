"""The holysse exception tree.

Every error holysse raises is a :class:`HolySSEError`. Errors that end a stream
carry the text received so far in ``partial``, so nothing is ever lost::

    HolySSEError
     ├─ TransportError          the network failed
     │   ├─ ConnectError        could not connect (DNS, refused, TLS, proxy)
     │   ├─ ReadTimeout         no byte for ``read_timeout`` seconds (a stall)
     │   └─ StreamInterrupted   the body ended or broke before the terminal marker
     ├─ HTTPStatusError         the server answered with an error status
     │   ├─ AuthenticationError 401 / 403
     │   └─ RateLimitError      429
     ├─ ProtocolError           not an event stream, an event over the size limit, ...
     ├─ ProviderError           an error event sent inside the stream by the API
     ├─ StreamDiverged          a replay produced a different answer
     ├─ StreamClosed            :meth:`Stream.close` was called while iterating
     ├─ RetriesExhausted        gave up; ``attempts`` is the history, ``__cause__`` the last error
     ├─ WaitTimeout             a wait with a timeout ran out (also a :class:`TimeoutError`)
     ├─ RelayError              the browser relay refused a request; ``status`` is the HTTP answer
     │   ├─ StreamNotFound      404: no such relayed stream (never existed, expired or evicted)
     │   ├─ StreamForbidden     403: the stream belongs to another user or session
     │   ├─ LeaseLost           409: another process took over this stream's pump
     │   ├─ TooManyStreams      429: a limit on concurrent upstream streams is reached
     │   └─ StoreUnavailable    503: the stream store (Redis) failed or did not answer in time
     │       └─ StoreFull       503: a :class:`MemoryStore` limit (bytes, streams) is reached
     └─ UsageError              the caller misused the API (also a :class:`ValueError`
                                and a :class:`RuntimeError`)

One rule for bad arguments: a wrong value or type passed to any holysse
function, class or command (``Client(timeout="5s")``, ``RetryPolicy(
max_attempts=-1)``, ``Relay(grace=0)``), and any other misuse (a stream read
twice, a closed client), raises :class:`UsageError` whose message says what
to pass instead, before anything is sent. It is also a :class:`ValueError`
and a :class:`RuntimeError`, so code that catches either keeps working.
Where Python has a builtin for the situation, the holysse error is also that
builtin (:class:`WaitTimeout` is a :class:`TimeoutError`); no bare builtin
error escapes holysse's own checks.

Exceptions keep their extra data in keyword attributes and stay picklable.
Nothing here ever holds an API key: the message and every text attribute
except ``partial`` (the answer itself) pass through :mod:`holysse._redact`
when the exception is made, so a server that echoes the key cannot put it
into ``str()``, ``repr()``, ``body_excerpt``, ``headers`` or ``attempts``.
"""

from __future__ import annotations

from typing import Any, Mapping

from ._redact import redact, redact_value
from ._status import rule

__all__ = [
    "HolySSEError",
    "TransportError",
    "ConnectError",
    "ReadTimeout",
    "StreamInterrupted",
    "HTTPStatusError",
    "AuthenticationError",
    "RateLimitError",
    "ProtocolError",
    "ProviderError",
    "StreamDiverged",
    "StreamClosed",
    "RetriesExhausted",
    "WaitTimeout",
    "RelayError",
    "StreamNotFound",
    "StreamForbidden",
    "LeaseLost",
    "TooManyStreams",
    "StoreUnavailable",
    "StoreFull",
    "UsageError",
]


class HolySSEError(Exception):
    """Base class of every holysse error.

    :param message: what happened and what to do about it.
    :param partial: the answer text received before the error (``""`` if none).
    """

    #: Whether a retry (or resume) may cure this error.
    retryable: bool = False

    def __init__(self, message: str = "", *, partial: str = "", **attrs: Any) -> None:
        message = redact(message)
        attrs = {name: redact_value(value) for name, value in attrs.items()}
        super().__init__(message)
        self.message = message
        #: The answer text received before the error.
        self.partial = partial
        for name, value in attrs.items():
            setattr(self, name, value)
        self._attrs = dict(attrs)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.partial, self._attrs))

    def with_partial(self, partial: str) -> HolySSEError:
        """Set :attr:`partial` and return ``self`` (for ``raise exc.with_partial(text)``)."""
        self.partial = partial
        return self


def _rebuild(
    cls: type[HolySSEError], message: str, partial: str, attrs: dict[str, Any]
) -> HolySSEError:
    return cls(message, partial=partial, **attrs)


class TransportError(HolySSEError):
    """The network failed: connect error, stall, or a connection that broke."""

    retryable = True


class ConnectError(TransportError):
    """Could not open a connection (DNS, refused, TLS, proxy).

    ``unreachable`` is true when nothing answered at that address: the
    connection was refused, the host name did not resolve, or no route led
    there. Before anything was received, :class:`~holysse.RetryPolicy`
    retries those only for ``connect_budget`` seconds.
    """

    #: Nothing answered at the address (refused, unknown host, no route).
    unreachable: bool = False


class ReadTimeout(TransportError):
    """No byte arrived for ``read_timeout`` seconds: the connection stalled."""


class StreamInterrupted(TransportError):
    """The body ended or broke before the dialect's terminal marker.

    #: ``last_event_id`` is the last SSE id seen (``""`` if none).
    """

    def __init__(self, message: str = "", *, partial: str = "", last_event_id: str = "", **attrs: Any) -> None:
        super().__init__(message, partial=partial, last_event_id=last_event_id, **attrs)


class HTTPStatusError(HolySSEError):
    """The server answered with an error status.

    Attributes: ``status_code``, ``headers`` (a plain dict), ``request_id``
    (from ``x-request-id`` and friends, or ``None``), ``body_excerpt`` (at most
    a few hundred characters of the body) and ``retry_after`` (seconds the
    server asked us to wait, or ``None``).
    """

    status_code: int
    headers: dict[str, str]
    request_id: str | None
    body_excerpt: str
    retry_after: float | None

    def __init__(
        self,
        message: str = "",
        *,
        partial: str = "",
        status_code: int = 0,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
        body_excerpt: str = "",
        retry_after: float | None = None,
        **attrs: Any,
    ) -> None:
        super().__init__(
            message,
            partial=partial,
            status_code=status_code,
            headers=dict(headers or {}),
            request_id=request_id,
            body_excerpt=body_excerpt,
            retry_after=retry_after,
            **attrs,
        )
        self.retryable = rule(status_code).retry


class AuthenticationError(HTTPStatusError):
    """401 or 403: the key is missing, wrong, or not allowed to do this."""


class RateLimitError(HTTPStatusError):
    """429: too many requests. ``retry_after`` says how long to wait, when known."""


class ProtocolError(HolySSEError):
    """The server broke the protocol: not an event stream, an oversized event, ..."""


class ProviderError(HolySSEError):
    """An error event sent inside the stream by the API.

    Attributes: ``error_type``, ``code`` and ``retryable`` (overloaded and
    server errors are retried; the rest are not).
    """

    def __init__(
        self,
        message: str = "",
        *,
        partial: str = "",
        error_type: str | None = None,
        code: str | None = None,
        retryable: bool = False,
        **attrs: Any,
    ) -> None:
        super().__init__(
            message, partial=partial, error_type=error_type, code=code, retryable=retryable, **attrs
        )


class StreamDiverged(HolySSEError):
    """A replayed request produced an answer that does not start with the text
    already delivered. ``partial`` is what was delivered; ``replayed`` is the
    start of the new answer."""

    def __init__(self, message: str = "", *, partial: str = "", replayed: str = "", **attrs: Any) -> None:
        super().__init__(message, partial=partial, replayed=replayed, **attrs)


class StreamClosed(HolySSEError):
    """:meth:`Stream.close` was called (maybe from another thread) while the
    stream was being read. The answer is incomplete; ``partial`` holds it."""


class RetriesExhausted(HolySSEError):
    """holysse gave up reconnecting. ``attempts`` lists ``(attempt, reason,
    delay)`` tuples; ``__cause__`` is the last error."""

    def __init__(
        self, message: str = "", *, partial: str = "", attempts: tuple[tuple[int, str, float], ...] = (), **attrs: Any
    ) -> None:
        super().__init__(message, partial=partial, attempts=tuple(attempts), **attrs)


class WaitTimeout(HolySSEError, TimeoutError):
    """A wait with a timeout ran out (:meth:`Stream.wait`,
    :meth:`Accumulator.wait`, :meth:`Accumulator.follow`); the stream itself
    goes on. Also a :class:`TimeoutError`."""


class RelayError(HolySSEError):
    """The browser relay (:mod:`holysse.relay`) refused or could not serve a
    request. ``status`` is the HTTP status the relay answers with (400 for a
    bad request when raised as such)."""

    #: The HTTP status a relay view answers with.
    status: int = 400

    def __init__(self, message: str = "", *, partial: str = "", status: int | None = None, **attrs: Any) -> None:
        super().__init__(message, partial=partial, **attrs)
        if status is not None:
            self.status = status
            self._attrs["status"] = status


class StreamNotFound(RelayError):
    """No relayed stream has this id: it never existed, expired (TTL) or was
    evicted to respect the store's limits."""

    status = 404


class StreamForbidden(RelayError):
    """The relayed stream was started by another user or session."""

    status = 403


class LeaseLost(RelayError):
    """A relay pump wrote to a stream whose lease another process holds (it
    took the stream over after this one stopped renewing it); this pump
    stops, the other one continues the answer."""

    status = 409


class TooManyStreams(RelayError):
    """A limit on concurrent upstream streams (per owner, or per process) is
    reached. ``retry_after`` says when to try again, in seconds."""

    status = 429
    retryable = True
    #: Seconds after which a new start may succeed (sent as ``Retry-After``).
    retry_after: float = 5.0


class StoreUnavailable(RelayError):
    """The stream store failed or did not answer in time (Redis down,
    unreachable, or too slow). Retrying later may work."""

    status = 503
    retryable = True


class StoreFull(StoreUnavailable):
    """A :class:`~holysse.relay.MemoryStore` limit (total bytes, number of
    streams) is reached and nothing finished can be evicted."""


class UsageError(HolySSEError, ValueError, RuntimeError):
    """The caller used the API in a way it does not support, or passed a bad
    argument; the message says what to do instead. Also a :class:`ValueError`
    and a :class:`RuntimeError` (see the module docs)."""
