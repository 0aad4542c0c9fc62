"""The relay in Django: URL patterns to include.

::

    # urls.py
    from holysse.relay import Relay
    from holysse.relay.django import relay_urls

    relay = Relay(holysse.Client())
    urlpatterns = [path("holysse/", include(relay_urls(relay, model="gpt-4.1")))]

Streams are bound to the session (``SessionMiddleware`` is required unless
``owner=`` is given). Starting and stopping are POST/DELETE requests, so
Django's CSRF protection applies: the page sends the ``X-CSRFToken`` header
(``HolySSE.start({headers: ...})``). Routes and answers are those of
:mod:`holysse.relay.http`. Needs the ``django`` extra.
"""

from __future__ import annotations

import secrets
from typing import Any, Callable

from django.http import RawPostDataException
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotAllowed, StreamingHttpResponse
from django.urls import URLPattern, path

from ..exceptions import UsageError
from .core import Relay
from .http import Endpoints, Reply, RequestBuilder, chat_request

__all__ = ["relay_urls", "session_owner", "OWNER_KEY"]

#: The session key holding the random token streams are bound to.
OWNER_KEY = "holysse_owner"


def session_owner(request: HttpRequest) -> str:
    """A random token kept in the Django session, created on first use.

    :raises UsageError: the request has no session (``SessionMiddleware``
        missing).
    """
    session = getattr(request, "session", None)
    if session is None:
        raise UsageError(
            "holysse.relay.django binds streams to the session: add "
            "'django.contrib.sessions.middleware.SessionMiddleware' to MIDDLEWARE, or pass owner=."
        )
    owner = session.get(OWNER_KEY)
    if not isinstance(owner, str) or not owner:
        session[OWNER_KEY] = owner = secrets.token_urlsafe(24)
    return owner


def relay_urls(
    relay: Relay,
    *,
    owner: Callable[[HttpRequest], str | None] = session_owner,
    build_request: RequestBuilder = chat_request,
    **defaults: Any,
) -> list[URLPattern]:
    """URL patterns serving the relay; ``include()`` them under a prefix.

    :param relay: the :class:`Relay`.
    :param owner: gives the user or session id streams are bound to (default:
        :func:`session_owner`).
    :param build_request: see :class:`~holysse.relay.http.Endpoints`.
    :param defaults: arguments every upstream request gets (``model=``, ...).
    """
    endpoints = Endpoints(relay, build_request=build_request, **defaults)

    def start(request: HttpRequest) -> HttpResponseBase:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        refused = endpoints.too_large(request.META.get("CONTENT_LENGTH"))
        if refused is not None:
            return _response(refused)
        body = _read(request, endpoints.max_body + 1)  # never more: a body without a length is cut here
        return _response(endpoints.start(body, request.content_type, owner(request)))

    def stream(request: HttpRequest, stream_id: str) -> HttpResponseBase:
        if request.method not in ("GET", "DELETE"):
            return HttpResponseNotAllowed(["GET", "DELETE"])
        if request.method == "DELETE":
            return _response(endpoints.stop(stream_id, owner(request)))
        reply = endpoints.follow(stream_id, owner(request), request.headers.get("Last-Event-ID"),
                                 request.GET.get("last_event_id"), request.GET.get("token"))
        return _response(reply)

    def script(request: HttpRequest) -> HttpResponseBase:
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        return _response(endpoints.script())

    return [
        path("streams", start, name="holysse-start"),
        path("streams/<str:stream_id>", stream, name="holysse-stream"),
        path("holysse.js", script, name="holysse-script"),
    ]


def _read(request: HttpRequest, limit: int) -> bytes:
    """At most ``limit`` bytes of the body, read from the stream (not
    ``request.body``, which reads it all first)."""
    try:
        return bytes(request.read(limit))
    except RawPostDataException:  # a middleware already read it
        return bytes(request.body[:limit])


def _response(reply: Reply) -> HttpResponseBase:
    response: HttpResponseBase
    if reply.content_type and reply.content_type.startswith("text/event-stream"):
        response = StreamingHttpResponse(reply.body, status=reply.status)
    else:
        response = HttpResponse(b"".join(reply.body), status=reply.status)
    if reply.content_type is None:
        del response["Content-Type"]
    for header, value in reply.headers:
        response[header] = value
    return response
