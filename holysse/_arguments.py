"""Checks of what callers pass to :class:`~holysse.Client` and
:meth:`~holysse.Client.stream`: keys, headers, bodies, queries and limits.
Each raises a :class:`~holysse.UsageError` that says what to pass instead.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from . import _redact
from .exceptions import UsageError

__all__ = [
    "SECRET_PARAM", "check_body", "check_headers", "check_key", "checked_extra_body", "checked_query", "positive_int",
]

#: An HTTP header name (RFC 9110 token).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{name} must be a positive int, not {value!r}.")
    return value


def check_key(key: str, source: str) -> None:
    """Refuse a key that cannot be a key: whitespace, control characters
    (they would break or inject headers), or characters HTTP headers cannot
    carry (outside Latin-1)."""
    if any(c.isspace() or not c.isprintable() for c in key):
        raise UsageError(
            f"The API key from {source} contains spaces, tabs, line breaks or control characters, which keys never do; "
            "check how it was copied (quotes, a trailing newline, two words)."
        )
    if not key.isascii():
        raise UsageError(
            f"The API key from {source} contains non-ASCII characters (a typographic quote or dash copied with it?); "
            "API keys are ASCII: check how it was copied."
        )


def check_headers(headers: Mapping[str, str]) -> None:
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise UsageError(
                f"Header name {name!r} is not an HTTP token; use letters, digits and -, without spaces or colons."
            )
        if not isinstance(value, str) or any(c in value for c in "\r\n\0") or not _latin1(value):
            raise UsageError(
                f"Header {name!r} has a non-string value, CR/LF/NUL in it (which could inject headers) or characters "
                "HTTP cannot carry (beyond Latin-1); pass a one-line str (percent-encode other text)."
            )
        if _redact.is_credential(name) and any(c.isspace() and c != " " for c in value.strip()):
            raise UsageError(f"Header {name!r} is a credential with tabs or control characters in it; check it.")


def _latin1(value: str) -> bool:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


#: Query parameters that hold a credential (``?key=``, ``?api_key=``, ``?token=``, ``?sig=`` ...).
SECRET_PARAM = re.compile(r"key|token|secret|passw|sig|auth", re.IGNORECASE)


def check_body(body: Mapping[str, Any]) -> None:
    model = body.get("model")
    if model is not None and (not isinstance(model, str) or any(c in model for c in "\r\n\0")):
        raise UsageError(f"model must be a one-line string without CR, LF or NUL (such as 'gpt-4.1'), not {model!r}.")
    if "stream" in body and body["stream"] is not True:
        raise UsageError("stream= is always true with holysse; remove it from the arguments.")
    try:
        json.dumps(body, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise UsageError(
            f"The request body cannot be sent as JSON ({type(exc).__name__}: {exc}). Pass only str, int, finite "
            "float, bool, None, list and dict values (a date as date.isoformat(), a set as a list), and text "
            "without lone surrogates."
        ) from None


def checked_extra_body(extra: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(extra, Mapping) or not all(isinstance(key, str) for key in extra):
        raise UsageError(f"extra_body must be a dict with str keys, such as {{'top_k': 5}}, not {extra!r}.")
    extra = dict(extra)
    check_body(extra)
    return extra


def checked_query(query: Mapping[str, Any]) -> dict[str, str | int | float]:
    if not isinstance(query, Mapping):
        raise UsageError(f"extra_query must be a dict such as {{'api-version': '2024-10-21'}}, not {query!r}.")
    checked: dict[str, str | int | float] = {}
    for name, value in query.items():
        if not isinstance(name, str) or isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise UsageError(f"extra_query takes str names and str or number values, not {name!r}: {value!r}.")
        if SECRET_PARAM.search(name):
            raise UsageError(
                f"extra_query carries a credential ({name!r}=...), where logs and error messages would show it; "
                "pass it as a header with extra_headers={...}."
            )
        checked[name] = value
    return checked
