"""The Flask example as gunicorn runs it in the multi-worker test, with an
``X-Worker-Pid`` header so the test sees which worker answered. Configured
by the example's environment variables (``HOLYSSE_REDIS_URL``, ...)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any


def create() -> Any:
    path = Path(__file__).resolve().parents[1] / "examples" / "flask_app.py"
    spec = importlib.util.spec_from_file_location("holysse_example_flask_app", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = module.create_app()

    @app.after_request
    def tag(response: Any) -> Any:
        response.headers["X-Worker-Pid"] = str(os.getpid())
        return response

    return app
