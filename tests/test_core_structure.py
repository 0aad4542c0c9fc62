"""The shape issue 12 asks of the resume core: no I/O in the core, no client
below the client, frozen settings per stream, one status table."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import holysse
from holysse import _status
from holysse.testing import MemoryTransport, Reply

PACKAGE = Path(holysse.__file__).parent
CORE = ("_resume_core.py", "_connection.py", "_delivered.py", "_resume.py", "_limits.py", "_checkpoint.py",
        "_settings.py", "_status.py", "_types.py")


def imported(path: Path) -> set[str]:
    """Every module a file imports (type-only imports too), and every
    ``module.name`` it imports from."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("name", CORE)
def test_the_core_does_no_io_and_does_not_import_the_client(name: str) -> None:
    names = imported(PACKAGE / name)
    forbidden = {"socket", "requests", "urllib3", "time.sleep", ".client", ".transport", "http.client"}
    assert not {n for n in names if n in forbidden or n.split(".")[0] in ("requests", "urllib3", "socket")}


def test_dialects_and_the_loop_import_neither_the_client_nor_the_http_library() -> None:
    for path in [PACKAGE / "_loop.py", *sorted((PACKAGE / "dialects").glob("*.py"))]:
        names = imported(path)
        assert not {n for n in names if n.lstrip(".") in ("client", "transport") or n.startswith(("requests", "urllib3"))}, path


def chat_body(text: str) -> list[bytes]:
    import json

    def chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
        obj = {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return b"data: " + json.dumps(obj).encode() + b"\n\n"

    return [chunk({"role": "assistant"}), *(chunk({"content": c}) for c in text), chunk({}, "stop"), b"data: [DONE]\n\n"]


def test_a_stream_keeps_the_settings_it_started_with() -> None:
    """A later change of a Client attribute does not reach a stream already made."""
    transport = MemoryTransport([Reply(chat_body("hello"), end="fin", after=60), Reply(chat_body("hello"))])
    client = holysse.Client(api_key="hs_" + "s" * 32, base_url="https://llm.test/v1", transport=transport,
                            retry=holysse.RetryPolicy(max_attempts=3, backoff_initial=0), sleep=lambda _: None)
    stream = client.stream(model="m", messages=[{"role": "user", "content": "hi"}])
    client.retry = holysse.RetryPolicy(max_attempts=0)  # would forbid the reconnect below
    client.max_answer_chars = 1  # would fail the stream at its second character
    assert stream.final().text == "hello" and stream.metrics.total_reconnects == 1


def test_one_status_table() -> None:
    assert _status.NEVER_RETRY_STATUSES == {400, 401, 403, 404, 422}
    assert _status.REFUSES_RESUME == {400, 404, 410, 422}
    assert [_status.retryable(s) for s in (408, 409, 429, 500, 503, 410, 418)] == [True] * 5 + [False] * 2
    assert _status.retryable(503, {"X-Should-Retry": "false"}) is False
    assert _status.retryable(404, {"x-should-retry": "true"}) is False  # fatal whatever the headers say
    assert [_status.code_retryable(c) for c in ("503", 429, "abc", 404, None)] == [True, True, False, False, False]
    error = holysse.HTTPStatusError("x", status_code=429)
    assert error.retryable and not holysse.HTTPStatusError("x", status_code=422).retryable
