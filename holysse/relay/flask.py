"""The relay in Flask: one blueprint.

::

    from holysse.relay import Relay
    from holysse.relay.flask import relay_blueprint

    app = Flask(__name__)
    app.secret_key = ...                      # streams are bound to the session
    app.register_blueprint(relay_blueprint(Relay(holysse.Client()), model="gpt-4.1"))

The page then loads ``/holysse/holysse.js`` and calls
``HolySSE.start({base: "/holysse", ...})``. Routes and answers are those of
:mod:`holysse.relay.http`. Needs the ``flask`` extra.
"""

from __future__ import annotations

import secrets
from typing import Any, Callable

import flask

from ..exceptions import UsageError
from .core import Relay
from .http import Endpoints, Reply, RequestBuilder, chat_request

__all__ = ["relay_blueprint", "session_owner", "OWNER_KEY"]

#: The session key holding the random token streams are bound to.
OWNER_KEY = "holysse_owner"


def session_owner() -> str:
    """The owner of the current request: a random token kept in Flask's
    (signed) session, created on first use.

    :raises UsageError: the app has no ``secret_key`` (no session).
    """
    session = flask.session
    owner = session.get(OWNER_KEY)
    if isinstance(owner, str) and owner:
        return owner
    try:
        session[OWNER_KEY] = owner = secrets.token_urlsafe(24)
    except RuntimeError as exc:  # flask's NullSession: no secret key
        raise UsageError(
            "holysse.relay.flask binds streams to the Flask session: set app.secret_key, or pass owner=."
        ) from exc
    return owner


def relay_blueprint(
    relay: Relay,
    *,
    name: str = "holysse",
    url_prefix: str = "/holysse",
    owner: Callable[[], str | None] = session_owner,
    build_request: RequestBuilder = chat_request,
    **defaults: Any,
) -> flask.Blueprint:
    """A blueprint serving the relay under ``url_prefix``.

    :param relay: the :class:`Relay`.
    :param owner: called in the request context, returns the user or session
        streams are bound to (default: :func:`session_owner`).
    :param build_request: see :class:`~holysse.relay.http.Endpoints`.
    :param defaults: arguments every upstream request gets (``model=``, ...).
    """
    endpoints = Endpoints(relay, build_request=build_request, **defaults)
    blueprint = flask.Blueprint(name, __name__, url_prefix=url_prefix)

    @blueprint.post("/streams")
    def start() -> flask.Response:
        request = flask.request
        refused = endpoints.too_large(request.headers.get("Content-Length"))
        if refused is not None:
            return _response(refused, close=True)
        body = request.stream.read(endpoints.max_body + 1)  # never more: a body without a length is cut here
        return _response(endpoints.start(body, request.content_type, owner()), close=len(body) > endpoints.max_body)

    @blueprint.route("/streams/<stream_id>", methods=["GET", "DELETE"])
    def stream(stream_id: str) -> flask.Response:
        request = flask.request
        if request.method == "DELETE":
            return _response(endpoints.stop(stream_id, owner()))
        reply = endpoints.follow(stream_id, owner(), request.headers.get("Last-Event-ID"),
                                 request.args.get("last_event_id"), request.args.get("token"))
        return _response(reply)

    @blueprint.get("/holysse.js")
    def script() -> flask.Response:
        return _response(endpoints.script())

    return blueprint


def _response(reply: Reply, *, close: bool = False) -> flask.Response:
    response = flask.Response(reply.body, status=reply.status)
    if close:  # the body was not read to its end: the connection cannot carry another request
        response.headers["Connection"] = "close"
    for header, value in reply.headers:
        response.headers[header] = value
    if reply.content_type is None:
        del response.headers["Content-Type"]
    return response
