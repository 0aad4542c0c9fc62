"""A single-page chat relayed to the browser by holysse, in Flask.

Run it (then open http://127.0.0.1:5000/)::

    pip install -e '.[flask]' && python examples/flask_app.py

Answers come from an in-process fake LLM server, or from HolySheep when
``HOLYSHEEP_API_KEY`` is set (see ``examples/upstream.py``). Reload the page
or cut the network in the middle of an answer: it goes on where it was.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any

import flask

from holysse.relay import Relay
from holysse.relay.flask import relay_blueprint

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # for upstream.py, next to this file

from upstream import make_relay  # noqa: E402


def create_app(relay: Relay | None = None, **defaults: Any) -> flask.Flask:
    """The chat app; relaying through ``relay`` (default: see upstream.py)."""
    if relay is None:
        relay, defaults = make_relay()
    app = flask.Flask(__name__)
    # Every worker must share it (gunicorn -w 2): streams are bound to the signed session.
    app.secret_key = os.environ.get("HOLYSSE_SECRET_KEY") or secrets.token_hex(32)
    app.register_blueprint(relay_blueprint(relay, **defaults))
    app.extensions["holysse_relay"] = relay
    page = (HERE / "chat.html").read_bytes()

    @app.get("/")
    def index() -> flask.Response:
        return flask.Response(page, mimetype="text/html")

    return app


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "5000"))
    create_app().run(host="127.0.0.1", port=port, threaded=True)
