"""The relay's HTTP endpoints, independent of any framework.

:class:`Endpoints` answers the four requests the JavaScript client makes,
given what every framework can extract (body bytes, headers, the owner):

- ``POST {base}/streams`` with a JSON body: start a stream, answer
  ``201 {"id": ...}``;
- ``GET {base}/streams/{id}``: follow it (``text/event-stream``),
  resuming after ``Last-Event-ID`` (or ``?last_event_id=``); the owner, or
  anyone with a signed read link (``?token=``, :meth:`Relay.link
  <holysse.relay.core.Relay.link>`);
- ``DELETE {base}/streams/{id}``: stop it;
- ``GET {base}/holysse.js``: the client script.

Each returns a :class:`Reply`; :mod:`~holysse.relay.wsgi`,
:mod:`~holysse.relay.flask` and :mod:`~holysse.relay.django` turn it into
their own response. Errors become JSON ``{"error", "message"}`` with the
status of the :class:`~holysse.exceptions.RelayError`.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from functools import lru_cache
from http import HTTPStatus
from importlib import resources
from typing import Any, Callable, Iterable, Mapping

from ..exceptions import HolySSEError, RelayError, StoreUnavailable, TooManyStreams, UsageError
from .core import Relay

__all__ = ["Endpoints", "Reply", "chat_request", "script"]

logger = logging.getLogger(__name__)

#: Roles a browser may send in ``messages`` by default.
BROWSER_ROLES = frozenset({"user", "assistant"})

RequestBuilder = Callable[[Mapping[str, Any]], Mapping[str, Any]]


@dataclass
class Reply:
    """A framework-neutral HTTP response."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    #: The body: bytes chunks (a generator for event streams).
    body: Iterable[bytes] = ()

    @property
    def status_line(self) -> str:
        """``"200 OK"``, as WSGI wants it."""
        return f"{self.status} {HTTPStatus(self.status).phrase}"

    @property
    def content_type(self) -> str | None:
        """The ``Content-Type`` header, if any."""
        return next((value for name, value in self.headers if name.lower() == "content-type"), None)


def json_reply(status: int, value: Any) -> Reply:
    """A JSON reply that no cache keeps."""
    body = json.dumps(value, ensure_ascii=False).encode("utf-8")
    return Reply(status, [("Content-Type", "application/json"), ("Cache-Control", "no-store")], [body])


def error_reply(exc: HolySSEError) -> Reply:
    """The JSON reply for a refused request."""
    status = exc.status if isinstance(exc, RelayError) else 400
    reply = json_reply(status, {"error": type(exc).__name__, "message": str(exc)})
    if isinstance(exc, StoreUnavailable):
        reply.headers.append(("Retry-After", "2"))
    elif isinstance(exc, TooManyStreams):
        reply.headers.append(("Retry-After", str(math.ceil(exc.retry_after))))
    return reply


def chat_request(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The default request builder: takes only ``messages`` from the browser
    (user and assistant turns with string content); everything else (model,
    limits) comes from the server's defaults.

    :raises RelayError: (400) for anything else.
    """
    messages = payload.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= 200:
        raise RelayError('The body needs "messages": a list of 1 to 200 {"role", "content"} objects.', status=400)
    clean = []
    for message in messages:
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise RelayError('Each message must be exactly {"role": ..., "content": "..."}.', status=400)
        if message["role"] not in BROWSER_ROLES or not isinstance(message["content"], str):
            raise RelayError(f"A message role must be one of {sorted(BROWSER_ROLES)} with string content.", status=400)
        clean.append({"role": message["role"], "content": message["content"]})
    return {"messages": clean}


@lru_cache(maxsize=1)
def script() -> bytes:
    """The JavaScript client, ``holysse/relay/static/holysse.js``."""
    return resources.files("holysse.relay").joinpath("static/holysse.js").read_bytes()


class Endpoints:
    """The relay's HTTP endpoints for one :class:`Relay`.

    :param relay: the relay.
    :param build_request: turns the browser's JSON body into
        :meth:`holysse.Client.stream` arguments (default:
        :func:`chat_request`); raise :class:`RelayError` to refuse it.
    :param max_body: the largest start body accepted, in bytes.
    :param defaults: arguments every upstream request gets (``model=``,
        ``max_tokens=``, ``seed=``, ...); the builder's result wins.
    """

    def __init__(
        self, relay: Relay, *, build_request: RequestBuilder = chat_request, max_body: int = 256 << 10,
        **defaults: Any,
    ) -> None:
        self.relay = relay
        self.build_request = build_request
        self.max_body = max_body
        self.defaults = defaults

    def too_large(self, content_length: object) -> Reply | None:
        """The ``413`` reply for a start request whose declared
        ``Content-Length`` exceeds :attr:`max_body`, or ``None``. Each
        integration asks this before reading a byte of the body, then reads at
        most ``max_body + 1`` bytes (a body without a length is cut there)."""
        try:
            length = int(str(content_length).strip()) if content_length not in (None, "") else 0
        except ValueError:
            return error_reply(RelayError("The Content-Length header is not a number.", status=400))
        if length > self.max_body:
            return error_reply(RelayError(f"The body is larger than {self.max_body} bytes.", status=413))
        return None

    def start(self, body: bytes, content_type: str | None, owner: str | None) -> Reply:
        """``POST {base}/streams``: 201 with ``{"id": ...}``.

        A JSON content type is required: browsers cannot send it cross-site
        without a CORS preflight, which keeps other sites from starting
        (paid) streams with the user's cookies.
        """
        try:
            payload = self._payload(body, content_type)
            request = {**self.defaults, **self.build_request(payload)}
            stream_id = self.relay.start(owner=owner, **request)
        except UsageError as exc:
            logger.warning("Refused to start a stream: %s", exc)
            return error_reply(RelayError(f"The request could not be sent upstream: {exc}", status=400))
        except HolySSEError as exc:
            return error_reply(exc)
        return json_reply(201, {"id": stream_id})

    def _payload(self, body: bytes, content_type: str | None) -> Mapping[str, Any]:
        if (content_type or "").split(";")[0].strip().lower() != "application/json":
            raise RelayError("Send the body as JSON (Content-Type: application/json).", status=415)
        if len(body) > self.max_body:
            raise RelayError(f"The body is larger than {self.max_body} bytes.", status=413)
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            raise RelayError("The body is not valid JSON.", status=400) from None
        if not isinstance(payload, dict):
            raise RelayError("The body must be a JSON object.", status=400)
        return payload

    def follow(
        self, stream_id: str, owner: str | None, last_event_id: str | None, query_last_id: str | None = None,
        token: str | None = None,
    ) -> Reply:
        """``GET {base}/streams/{id}``: the event stream (200), 204 when the
        browser already has all of a finished stream, or an error.

        :param last_event_id: the ``Last-Event-ID`` header (wins).
        :param query_last_id: ``?last_event_id=``, sent by a new
            ``EventSource`` (which cannot send the header).
        :param token: ``?token=``, a signed read link.
        """
        after = (last_event_id or query_last_id or "").strip()
        try:
            events = self.relay.open(stream_id, owner=owner, last_event_id=after, token=token)
        except HolySSEError as exc:
            return error_reply(exc)
        return Reply(events.status, events.headers, iter(events))  # a generator: close() ends it

    def stop(self, stream_id: str, owner: str | None) -> Reply:
        """``DELETE {base}/streams/{id}``: 204 once the stop is recorded."""
        try:
            self.relay.stop(stream_id, owner=owner)
        except HolySSEError as exc:
            return error_reply(exc)
        return Reply(204, [("Cache-Control", "no-store")])

    def script(self) -> Reply:
        """``GET {base}/holysse.js``."""
        return Reply(200, [("Content-Type", "text/javascript; charset=utf-8"), ("Cache-Control", "max-age=300")],
                     [script()])
