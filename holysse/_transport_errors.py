"""The causes inside a transport error, in words a user can act on:
:func:`reason` (the innermost cause, in a few words), :func:`chain` (every
error wrapped inside one), :func:`innermost`, :func:`bad_response_head`.
Only the standard library: :mod:`holysse.transport` (the one module that
imports requests and urllib3) picks the holysse error with them. No I/O.
"""

from __future__ import annotations

import http.client
import socket
from typing import Iterator

__all__ = ["bad_response_head", "chain", "innermost", "reason"]


def reason(exc: BaseException) -> str:
    """The innermost cause of a requests/urllib3 error, in a few words."""
    for inner in chain(exc):
        if isinstance(inner, tuple(kind for kind, _ in _PLAIN_CAUSES)):
            return _describe(inner)
    return _describe(innermost(exc))


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


def chain(exc: BaseException) -> Iterator[BaseException]:
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


def innermost(exc: BaseException) -> BaseException:
    """The error wrapped deepest in requests/urllib3 errors (which keep it as
    their last argument, or as ``MaxRetryError.reason``)."""
    inner: BaseException = exc
    for _ in range(8):
        if inner.args and isinstance(inner.args[-1], BaseException):
            inner = inner.args[-1]
        elif isinstance(getattr(inner, "reason", None), BaseException):  # urllib3's MaxRetryError
            inner = inner.reason  # type: ignore[attr-defined]
        else:
            break
    return inner


def bad_response_head(exc: BaseException) -> bool:
    """Whether http.client refused the response head for its size: a line
    over 64 KiB (``LineTooLong``) or more than 100 header lines."""
    inner = innermost(exc)
    return isinstance(inner, http.client.LineTooLong) or type(inner) is http.client.HTTPException
