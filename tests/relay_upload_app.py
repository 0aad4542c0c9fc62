"""A relay served in its own process for the upload tests:
``python tests/relay_upload_app.py flask|django|wsgi PORT``.

Each integration is mounted at ``/holysse`` with its default ``max_body``,
served by werkzeug's threaded server on 127.0.0.1:PORT until SIGTERM. The
upstream is never reached (the tests only send bodies that are refused).
Django runs with ``DATA_UPLOAD_MAX_MEMORY_SIZE = None``, so only the
relay's own limit stands between a large body and memory.
"""

from __future__ import annotations

import sys
from typing import Any

import holysse
from holysse.relay import MemoryStore, Relay


def make_app(kind: str, relay: Relay) -> Any:
    if kind == "flask":
        import flask

        from holysse.relay.flask import relay_blueprint

        app = flask.Flask(__name__)
        app.secret_key = "upload-test"
        app.register_blueprint(relay_blueprint(relay, model="m"))
        return app
    if kind == "django":
        import django
        from django.conf import settings

        settings.configure(
            DEBUG=False, SECRET_KEY="upload-test", ALLOWED_HOSTS=["127.0.0.1"], ROOT_URLCONF=__name__,
            MIDDLEWARE=[], INSTALLED_APPS=[], DATA_UPLOAD_MAX_MEMORY_SIZE=None,
        )
        django.setup()
        from django.core.wsgi import get_wsgi_application
        from django.urls import include, path

        from holysse.relay.django import relay_urls

        globals()["urlpatterns"] = [path("holysse/", include(relay_urls(relay, owner=lambda request: "u", model="m")))]
        return get_wsgi_application()
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    from holysse.relay import RelayApp

    return DispatcherMiddleware(lambda environ, start: [], {"/holysse": RelayApp(relay, model="m")})


def main() -> None:
    from werkzeug.serving import make_server

    kind, port = sys.argv[1], int(sys.argv[2])
    client = holysse.Client(api_key="sk-upload-test-key", base_url="http://127.0.0.1:9/v1")
    relay = Relay(client, MemoryStore())
    make_server("127.0.0.1", port, make_app(kind, relay), threaded=True).serve_forever()


if __name__ == "__main__":
    main()
