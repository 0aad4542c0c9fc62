"""The one redaction step: credentials never reach an exception, a log
record, metrics or the command line.

Every :class:`~holysse.Client` registers its credentials here when it is
made (the API key, and the value of every credential header it sends,
however it was passed: ``api_key=``, ``$HOLYSHEEP_API_KEY``, ``headers=``,
``extra_headers=``); a ``Bearer``/``Basic`` value counts with and without
its scheme. Text that comes from a server then passes through
:func:`redact` before it is kept:

- every :class:`~holysse.exceptions.HolySSEError` redacts its message and
  its text attributes (``body_excerpt``, ``headers``, ``attempts``, ...)
  when it is made (the answer in ``partial`` is the answer and is kept);
- the loggers that may carry server text (:func:`guard`) redact each
  record, DEBUG included.

Credential headers (:func:`is_credential`) are also what a cross-origin
redirect drops and what the plain-``http://`` refusal protects.

The registry is process-wide and bounded (the most recent
:data:`MAX_SECRETS`); secrets shorter than :data:`MIN_LENGTH` characters are
not searched for, as they would match ordinary words. This module imports
nothing from holysse.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from typing import Any, Mapping

__all__ = ["REDACTED", "register", "register_headers", "redact", "redact_value", "is_credential", "guard"]

#: What a secret is replaced with.
REDACTED = "<redacted>"
#: The most secrets remembered (the oldest are forgotten first).
MAX_SECRETS = 256
#: Shorter secrets are not searched for.
MIN_LENGTH = 8

#: Header names that carry a credential: ``Authorization``,
#: ``Proxy-Authorization``, ``Cookie``, ``x-api-key``, ``api-key`` and any
#: ``*-api-key``, ``*-token``, ``*-secret``, ``*-password``.
_CREDENTIAL = re.compile(
    r"(proxy-)?authorization|cookie|(x-)?api[-_]?key|.*[-_](api[-_]?key|token|secret|password)", re.IGNORECASE
)
_SCHEME = re.compile(r"(?i)(bearer|basic|token|apikey)\s+(\S+)")

_lock = threading.Lock()
_secrets: OrderedDict[str, None] = OrderedDict()
_pattern: re.Pattern[str] | None = None


def is_credential(name: str) -> bool:
    """Whether a header called ``name`` carries a credential."""
    return bool(_CREDENTIAL.fullmatch(name.strip()))


def register(*secrets: str | None) -> None:
    """Remember ``secrets`` so that :func:`redact` hides them (and, for a
    ``Bearer xyz`` value, ``xyz`` alone)."""
    global _pattern
    found: list[str] = []
    for secret in secrets:
        if not secret:
            continue
        found.append(secret.strip())
        found.extend(match.group(2) for match in _SCHEME.finditer(secret))
        if ";" in secret or "=" in secret:  # a Cookie header: each value
            found.extend(part.split("=", 1)[-1].strip() for part in secret.split(";"))
    found = [s for s in found if len(s) >= MIN_LENGTH]
    if not found:
        return
    with _lock:
        changed = False
        for secret in found:
            if secret in _secrets:
                _secrets.move_to_end(secret)
            else:
                _secrets[secret] = None
                changed = True
        while len(_secrets) > MAX_SECRETS:
            _secrets.popitem(last=False)
        if changed:
            ordered = sorted(_secrets, key=len, reverse=True)  # the longest first: "Bearer x" before "x"
            _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def register_headers(headers: Mapping[str, Any]) -> bool:
    """Register the values of the credential headers among ``headers``;
    whether there was one."""
    values = [value for name, value in headers.items() if isinstance(name, str) and is_credential(name)]
    register(*(value for value in values if isinstance(value, str)))
    return bool(values)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by :data:`REDACTED`."""
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(REDACTED, text)


def redact_value(value: Any) -> Any:
    """:func:`redact` through strings, and the strings inside dicts, lists
    and tuples (a copy; other values as they are)."""
    if _pattern is None:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = [redact_value(item) for item in value]
        return items if isinstance(value, list) else tuple(items)
    return value


class _RedactingFilter(logging.Filter):
    """Rewrites a record's message with secrets redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _pattern is not None:
            message = record.getMessage()
            cleaned = redact(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return True


_FILTER = _RedactingFilter()


def guard(logger: logging.Logger) -> logging.Logger:
    """``logger``, redacting every record it logs (DEBUG included)."""
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger

