"""The relay as a plain WSGI application (no framework).

::

    from holysse.relay import MemoryStore, Relay, RelayApp

    app = RelayApp(Relay(holysse.Client(), MemoryStore()), model="gpt-4.1")
    # mount it under /holysse (werkzeug DispatcherMiddleware, or your router)

Routes, relative to where it is mounted: ``POST /streams``,
``GET /streams/{id}``, ``DELETE /streams/{id}``, ``GET /holysse.js`` (see
:mod:`holysse.relay.http`). Streams are bound to an owner: by default a
random, HttpOnly ``holysse_owner`` cookie issued with the first start, so
another browser holding a stream id cannot read it; pass ``owner=`` to use
your own authentication (e.g. ``environ["REMOTE_USER"]``).
"""

from __future__ import annotations

import re
import secrets
from http.cookies import CookieError, SimpleCookie
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

from .core import Relay
from .http import Endpoints, Reply, RequestBuilder, chat_request, error_reply, json_reply
from ..exceptions import RelayError

__all__ = ["RelayApp", "OWNER_COOKIE"]

#: The cookie binding streams to a browser when no ``owner`` function is given.
OWNER_COOKIE = "holysse_owner"

_STREAM_PATH = re.compile(r"/streams/([^/]+)")
Environ = dict[str, Any]


class RelayApp:
    """A WSGI application serving the relay endpoints.

    :param relay: the :class:`Relay`.
    :param owner: ``owner(environ)`` gives the user or session id streams are
        bound to; by default a random cookie (see the module docs).
    :param build_request: see :class:`~holysse.relay.http.Endpoints`.
    :param defaults: arguments every upstream request gets (``model=``, ...).
    """

    def __init__(
        self,
        relay: Relay,
        *,
        owner: Callable[[Environ], str | None] | None = None,
        build_request: RequestBuilder = chat_request,
        **defaults: Any,
    ) -> None:
        self.endpoints = Endpoints(relay, build_request=build_request, **defaults)
        self._owner = owner

    def __call__(self, environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        reply = self.handle(environ)
        start_response(reply.status_line, reply.headers)
        return reply.body

    def handle(self, environ: Environ) -> Reply:
        """Route one request."""
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "") or "/"
        endpoints = self.endpoints
        if path == "/holysse.js" and method in ("GET", "HEAD"):
            return endpoints.script()
        if path == "/streams":
            if method != "POST":
                return _not_allowed("POST")
            refused = endpoints.too_large(environ.get("CONTENT_LENGTH"))
            if refused is not None:
                return refused
            owner, cookie = self._owner_of(environ, issue=True)
            reply = endpoints.start(_body(environ, endpoints.max_body), environ.get("CONTENT_TYPE"), owner)
            if cookie and reply.status == 201:
                reply.headers.append(("Set-Cookie", cookie))
            return reply
        match = _STREAM_PATH.fullmatch(path)
        if match is None:
            return json_reply(404, {"error": "NotFound", "message": f"No relay endpoint at {path[:100]!r}."})
        owner, _ = self._owner_of(environ, issue=False)
        if method == "GET":
            query = parse_qs(environ.get("QUERY_STRING", ""))
            return endpoints.follow(match.group(1), owner, environ.get("HTTP_LAST_EVENT_ID"),
                                    query.get("last_event_id", [None])[0], query.get("token", [None])[0])
        if method == "DELETE":
            return endpoints.stop(match.group(1), owner)
        return _not_allowed("GET, DELETE")

    def _owner_of(self, environ: Environ, *, issue: bool) -> tuple[str | None, str | None]:
        """The owner of this request and, when one had to be issued, the
        ``Set-Cookie`` value carrying it."""
        if self._owner is not None:
            return self._owner(environ), None
        cookies = SimpleCookie()
        try:
            cookies.load(environ.get("HTTP_COOKIE", ""))
        except CookieError:
            pass
        morsel = cookies.get(OWNER_COOKIE)
        if morsel is not None and morsel.value:
            return morsel.value, None
        if not issue:
            return None, None
        token = secrets.token_urlsafe(24)
        secure = "; Secure" if environ.get("wsgi.url_scheme") == "https" else ""
        path = environ.get("SCRIPT_NAME") or "/"
        return token, f"{OWNER_COOKIE}={token}; Path={path}; HttpOnly; SameSite=Lax{secure}"


def _body(environ: Environ, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of the body (enough to tell it is too large)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        if not environ.get("wsgi.input_terminated"):
            return b""  # no length, and the server does not end the input: nothing can be read safely
        return bytes(environ["wsgi.input"].read(limit + 1))
    return bytes(environ["wsgi.input"].read(min(length, limit + 1)))


def _not_allowed(allow: str) -> Reply:
    reply = error_reply(RelayError(f"Method not allowed here; use {allow}.", status=405))
    reply.headers.append(("Allow", allow))
    return reply
