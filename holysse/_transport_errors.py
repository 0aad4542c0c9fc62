"""Translating requests and urllib3 errors into the holysse tree, in words
a user can act on: :func:`translate_open_error` (opening a request) and
:func:`reason` (the innermost cause, in a few words). Used by
:mod:`holysse.transport` only; no I/O.
"""

from __future__ import annotations

import errno
import http.client
import socket
import ssl
from typing import Iterator

import requests
import urllib3
import urllib3.exceptions

from . import exceptions as exc_

__all__ = ["scrubbed", "translate_open_error", "reason"]


def scrubbed(exc: requests.RequestException) -> requests.RequestException:
    """Drop the request object (it holds the credentials) from a requests error."""
    exc.request = None
    exc.response = None
    return exc


def translate_open_error(exc: requests.RequestException, url: str) -> exc_.HolySSEError:
    why = reason(exc)
    if _bad_response_head(exc):
        return exc_.ProtocolError(
            f"{url} sent a response head holysse refuses ({why}): a line over 64 KiB or more than 100 "
            "headers. Check base_url and any proxy in between."
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return exc_.ConnectError(f"Timed out connecting to {url}; check the network or raise Timeout.connect.")
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return exc_.ReadTimeout(f"{url} accepted the request but sent no response headers in time ({why}).")
    if isinstance(exc, requests.exceptions.SSLError):
        if isinstance(_innermost(exc), ssl.SSLCertVerificationError):
            return exc_.ConnectError(
                f"The certificate of {url} is not trusted ({why}). If a proxy on your network re-signs TLS, "
                "set REQUESTS_CA_BUNDLE to its CA bundle, or pass Client(session=...) with session.verify set "
                "to that bundle. A retry cannot cure this.",
                retryable=False,
            )
        return exc_.ConnectError(f"TLS handshake with {url} failed ({why}); check certificates or proxy settings.")
    if isinstance(exc, requests.exceptions.ProxyError):
        return exc_.ConnectError(f"The proxy refused or failed the connection to {url} ({why}).")
    if isinstance(exc, requests.exceptions.ConnectionError):
        if any(isinstance(inner, urllib3.exceptions.ProtocolError) for inner in _chain(exc)):
            return exc_.StreamInterrupted(
                f"{url} accepted the connection but it broke before the response headers arrived ({why})."
            )
        if _unreachable(exc):
            return exc_.ConnectError(f"Could not connect to {url} ({why}); is the server up and the URL right?",
                                     unreachable=True)
        return exc_.ConnectError(f"Could not connect to {url} ({why}); is the server up and the URL right?")
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema, requests.exceptions.InvalidHeader)):
        return exc_.UsageError(f"Invalid request to {url}: {why}")
    return exc_.TransportError(f"Request to {url} failed: {why}")


def reason(exc: BaseException) -> str:
    """The innermost cause of a requests/urllib3 error, in a few words."""
    for inner in _chain(exc):
        if isinstance(inner, tuple(kind for kind, _ in _PLAIN_CAUSES)):
            return _describe(inner)
    return _describe(_innermost(exc))


_PLAIN_CAUSES: tuple[tuple[type[BaseException], str], ...] = (
    (ConnectionResetError, "connection reset by the peer"),
    (ConnectionRefusedError, "connection refused"),
    (BrokenPipeError, "the peer closed the connection"),
    (socket.gaierror, "the host name could not be resolved"),
)


def _describe(cause: BaseException) -> str:
    for kind, words in _PLAIN_CAUSES:
        if isinstance(cause, kind):
            return f"{words} ({type(cause).__name__})"
    name = type(cause).__name__
    if name == "IncompleteRead":
        return "the connection closed in the middle of the body (IncompleteRead)"
    text = str(cause)
    return f"{name}: {text}" if text else name


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every error it wraps (arguments, ``reason``, causes)."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < 32:
        inner = todo.pop()
        if id(inner) in seen:
            continue
        seen.add(id(inner))
        yield inner
        todo.extend(arg for arg in inner.args if isinstance(arg, BaseException))
        reason = getattr(inner, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
        todo.extend(e for e in (inner.__cause__, inner.__context__) if e is not None)


_NO_ROUTE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL})


def _unreachable(exc: BaseException) -> bool:
    """Whether nothing answered: refused, a name that does not resolve, no route."""
    for inner in _chain(exc):
        if isinstance(inner, (ConnectionRefusedError, socket.gaierror, urllib3.exceptions.NameResolutionError)):
            return True
        if isinstance(inner, OSError) and inner.errno in _NO_ROUTE:
            return True
    return False


def _innermost(exc: BaseException) -> BaseException:
    """The error wrapped deepest in requests/urllib3 errors (which keep it as
    their last argument, or as ``MaxRetryError.reason``)."""
    inner: BaseException = exc
    for _ in range(8):
        if inner.args and isinstance(inner.args[-1], BaseException):
            inner = inner.args[-1]
        elif isinstance(inner, urllib3.exceptions.MaxRetryError) and inner.reason is not None:
            inner = inner.reason
        else:
            break
    return inner


def _bad_response_head(exc: BaseException) -> bool:
    """Whether http.client refused the response head for its size: a line
    over 64 KiB (``LineTooLong``) or more than 100 header lines."""
    inner = _innermost(exc)
    return isinstance(inner, http.client.LineTooLong) or type(inner) is http.client.HTTPException
