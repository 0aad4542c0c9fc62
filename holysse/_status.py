"""The one table of HTTP status rules.

For every status: may the request be retried (by default; a server's
``x-should-retry`` header may decide otherwise), does it refuse a cursor or
prefill resume for good (the stream then falls back to the next strategy
instead of failing), and what to tell the user. The transport errors
(:mod:`holysse._http`), the resume core and the dialects' in-stream errors
(an HTTP status in ``error.code``) all read this table.

No I/O; imports only the standard library.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

__all__ = [
    "StatusRule", "rule", "retryable", "refuses_resume", "code_retryable", "header_value",
    "NEVER_RETRY_STATUSES", "RETRY_STATUSES", "REFUSES_RESUME",
]


class StatusRule(NamedTuple):
    """What one status means to holysse."""

    #: Retried by default (unless ``x-should-retry`` says otherwise, or ``fatal``).
    retry: bool
    #: Never retried, whatever the server's headers say.
    fatal: bool
    #: A cursor or prefill resume answered with it was refused for good.
    refuses_resume: bool
    #: The advice kind (see :func:`holysse._http` for the wording).
    advice: str


_TABLE: dict[int, StatusRule] = {
    400: StatusRule(False, True, True, "invalid"),
    401: StatusRule(False, True, False, "auth"),
    403: StatusRule(False, True, False, "forbidden"),
    404: StatusRule(False, True, True, "not-found"),
    408: StatusRule(True, False, False, "server"),
    409: StatusRule(True, False, False, "server"),
    410: StatusRule(False, False, True, "server"),
    422: StatusRule(False, True, True, "invalid"),
    429: StatusRule(True, False, False, "rate-limit"),
}
_SERVER_ERROR = StatusRule(True, False, False, "server")
_REDIRECT = StatusRule(False, False, False, "redirect")
_OTHER = StatusRule(False, False, False, "server")

#: Statuses that fail at once, whatever the server's headers say: the request
#: itself is wrong (400, 404, 422) or not allowed (401, 403).
NEVER_RETRY_STATUSES = frozenset(s for s, r in _TABLE.items() if r.fatal)
#: Statuses retried by default besides every 5xx: timeout, conflict, rate limit.
RETRY_STATUSES = frozenset(s for s, r in _TABLE.items() if r.retry)
#: Statuses that refuse a cursor or prefill resume (an expired background
#: response, a model that takes no prefill).
REFUSES_RESUME = frozenset(s for s, r in _TABLE.items() if r.refuses_resume)


def rule(status: int) -> StatusRule:
    """The rule for ``status``."""
    found = _TABLE.get(status)
    if found is not None:
        return found
    if 500 <= status <= 599:
        return _SERVER_ERROR
    if 300 <= status < 400:
        return _REDIRECT
    return _OTHER


def retryable(status: int, headers: Mapping[str, str] | None = None) -> bool:
    """Whether a response with ``status`` may be retried: never for the fatal
    ones; else an ``x-should-retry: true|false`` header decides when present;
    else the table (408, 409, 429 and every 5xx)."""
    found = rule(status)
    if found.fatal:
        return False
    hint = (header_value(headers or {}, "x-should-retry") or "").strip().lower()
    if hint in ("true", "false"):
        return hint == "true"
    return found.retry


def refuses_resume(status: int) -> bool:
    """Whether ``status`` answering a cursor or prefill resume refuses it."""
    return rule(status).refuses_resume


def code_retryable(code: Any) -> bool:
    """Whether an in-stream error whose ``code`` is an HTTP status (vLLM,
    llama.cpp, OpenRouter) is retried as that status would be."""
    if isinstance(code, str) and code.isdigit() and len(code) == 3:
        code = int(code)
    return type(code) is int and 100 <= code <= 599 and rule(code).retry


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, looked up case-insensitively in any mapping."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None
