"""Turning a response that is not a healthy event stream into a clear error.

An error status becomes :class:`HTTPStatusError` (or :class:`RateLimitError`,
:class:`AuthenticationError`) with the server's message, request id and
``Retry-After``; a 2xx that is not ``text/event-stream`` is read and never
parsed as SSE (a whole JSON answer, from a server that ignores ``stream:
true``, becomes the answer's events; a JSON error is reported as such); a
``text/event-stream`` whose body is a bare JSON error or an HTML page is
reported by :func:`body_error` when it ends.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import urlsplit

from ._redact import guard, is_credential
from ._status import retryable, rule
from ._types import Response
from .exceptions import AuthenticationError, HolySSEError, HTTPStatusError, ProtocolError, RateLimitError
from .metadata import request_id as find_request_id
from .retry import header_value, parse_retry_after

if TYPE_CHECKING:
    from ._settings import StreamSettings
    from .dialects.base import Dialect
    from .events import Event

API_KEY_ENV = "HOLYSHEEP_API_KEY"

__all__ = ["check_response", "read_json", "body_error", "is_holysheep"]

logger = guard(logging.getLogger(__name__))

_EXCERPT = 500


def check_response(response: Response, client: StreamSettings, dialect: Dialect) -> list[Event] | None:
    """``None`` when ``response`` is a 2xx event stream; the events of the
    whole answer when it is a complete JSON answer (a server that ignores
    ``stream: true``); else raise the right holysse error."""
    status = response.status_code
    if 200 <= status < 300:
        content_type = response.headers.get("content-type", "")
        if "text/event-stream" not in content_type.lower():
            return _whole_answer(response, content_type, client, dialect)
        return None
    raise _status_error(response, client, dialect)


def _whole_answer(response: Response, content_type: str, client: StreamSettings, dialect: Dialect) -> list[Event]:
    if "json" not in content_type.lower():
        raise _not_a_stream(response.read_text(_EXCERPT * 8), response.status_code, content_type, client)
    body = response.read_text(client.max_event_bytes)
    try:
        obj = json.loads(body)
    except ValueError:
        obj = None
    events = dialect.whole_answer(obj) if isinstance(obj, dict) else None
    if events is None:
        raise _not_a_stream(body, response.status_code, content_type, client)
    logger.warning("%s answered with a whole JSON answer instead of an event stream (it ignores stream: true); "
                   "delivering it at once", client.base_url)
    return events


def read_json(response: Response, client: StreamSettings, dialect: Dialect, limit: int = 16 << 20) -> Any:
    """The JSON body of a 2xx answer (at most ``limit`` bytes read); the right
    holysse error for an error status or a body that is not JSON (an HTML
    page, say)."""
    status = response.status_code
    if not 200 <= status < 300:
        raise _status_error(response, client, dialect)
    content_type = response.headers.get("content-type", "")
    body = response.read_text(limit)
    if "json" in content_type.lower():
        try:
            return json.loads(body)
        except ValueError:
            pass
    if body.lstrip()[:1] == "<":
        what = f"an HTML page (Content-Type {content_type or 'none'!r}), not the API"
        advice = "base_url probably points at a website, a login portal or a captive proxy"
    else:
        what = f"Content-Type {content_type or 'none'!r}, not JSON"
        advice = "is base_url pointing at an OpenAI-compatible API?"
    raise ProtocolError(
        f"{client.base_url} answered {status} with {what}; {advice} (such a base URL usually ends in /v1). "
        f"Body starts: {body[:120]!r}",
        status_code=status,
        body_excerpt=body[:_EXCERPT],
    )


def _not_a_stream(body: str, status: int, content_type: str, client: StreamSettings) -> HolySSEError:
    message = _error_message(body)
    if message:
        return ProtocolError(
            f"{client.base_url} answered {status} with an error instead of a stream: {message}",
            status_code=status,
            body_excerpt=body[:_EXCERPT],
        )
    return ProtocolError(
        f"{client.base_url} answered {status} with Content-Type {content_type or 'none'!r}, "
        "not text/event-stream; is base_url pointing at an OpenAI-compatible API (it usually ends in /v1)? "
        f"Body starts: {body[:120]!r}",
        status_code=status,
        body_excerpt=body[:_EXCERPT],
    )


def body_error(head: bytes, base_url: str) -> HolySSEError | None:
    """The error a server meant when it answered ``text/event-stream`` but
    sent a bare JSON error object or an HTML page instead of events
    (``head``: the start of that body, no event in it), else ``None``."""
    body = head.decode("utf-8", "replace").strip()
    message = _error_message(body)
    if message is not None:
        return ProtocolError(
            f"{base_url} answered with an event stream holding a JSON error instead of events: {message}",
            status_code=200,
            body_excerpt=body[:_EXCERPT],
        )
    if body[:15].lower().startswith(("<!doctype html", "<html")):
        return ProtocolError(
            f"{base_url} answered with an HTML page labelled text/event-stream (a login page or a proxy's "
            f"error page?); check base_url and the network path. Body starts: {body[:120]!r}",
            status_code=200,
            body_excerpt=body[:_EXCERPT],
        )
    return None


def _status_error(response: Response, client: StreamSettings, dialect: Dialect) -> HolySSEError:
    status = response.status_code
    headers = dict(response.headers)
    body = response.read_text(_EXCERPT * 8)
    detail = _error_message(body) or body[:200].strip() or "no details"
    host = urlsplit(client.base_url).hostname
    request_id = find_request_id(headers)
    cls: type[HTTPStatusError] = HTTPStatusError
    kind = rule(status).advice
    if kind == "rate-limit":
        cls = RateLimitError
        advice = "slow down or raise your rate limit"
    elif kind in ("auth", "forbidden"):
        cls = AuthenticationError
        advice = _auth_advice(status, client, dialect, headers)
    elif kind == "redirect":
        advice = (
            f"a redirect to {headers.get('Location', '?')}; holysse follows only 307 and 308 for a streaming "
            "POST (they keep the method and body), so set base_url to the final address"
        )
    elif kind == "not-found":
        advice = f"check base_url ({client.base_url}) and the model name; the {dialect.name} path may not exist there"
    elif kind == "invalid":
        advice = "the request was rejected as invalid; check the arguments"
    else:
        advice = "the server had a problem"
    error = cls(
        f"{status} from {host}: {detail} ({advice})." + (f" Request id: {request_id}." if request_id else ""),
        status_code=status,
        headers=_safe_headers(headers),
        request_id=request_id,
        body_excerpt=body[:_EXCERPT],
        retry_after=parse_retry_after(headers),
    )
    error.retryable = retryable(status, headers)
    return error


def is_holysheep(url: str) -> bool:
    """Whether ``url`` points at the HolySheep gateway (``holysheep.ai`` or a subdomain)."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    return host == "holysheep.ai" or host.endswith(".holysheep.ai")


def _auth_advice(status: int, client: StreamSettings, dialect: Dialect, headers: Mapping[str, str]) -> str:
    """Where the key came from, how it was sent, and what this server asks for."""
    source = client.key_source
    if status == 403:
        return "the key is valid but not allowed to do this; check its permissions and the model"
    holysheep = is_holysheep(client.base_url)
    challenge = header_value(headers, "www-authenticate")
    asks = f"; it asks for: {challenge.strip()[:80]}" if challenge and challenge.strip() else ""
    if source is None:
        where = f"set {API_KEY_ENV}" if holysheep else f"set {API_KEY_ENV} to this server's key"
        return f"no API key was sent and this server wants one{asks}: {where}, or pass api_key="
    sent = "as x-api-key" if dialect.name == "anthropic" else "as Authorization: Bearer"
    if source.startswith("headers="):
        sent = "in the header you passed"
    if holysheep:
        return (f"the API key from {source} was refused by the HolySheep gateway ({sent}); HolySheep keys start "
                f"with hs_: check {API_KEY_ENV} against your dashboard")
    return f"the API key from {source} was refused by this server ({sent}{asks}); check that it is this server's key"


def _safe_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The response headers kept on an error: no cookies being set, no credentials."""
    return {k: v for k, v in headers.items() if k.lower() != "set-cookie" and not is_credential(k)}


def _error_message(body: str) -> str | None:
    """The message of an OpenAI or Anthropic JSON error body, if it is one."""
    try:
        obj: Any = json.loads(body)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    error = obj.get("error", obj)
    if isinstance(error, dict):
        message = error.get("message") or error.get("detail")
        kind = error.get("type") or error.get("code")
        if message:
            return f"{message} ({kind})" if kind else str(message)
    if isinstance(error, str):
        return error
    return None
