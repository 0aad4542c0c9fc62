"""The command line speaks command line: every error line names a flag or an
environment variable, never a Python attribute; a retry before the answer is
not called a cut; bad option values exit 2 like every other; the defaults
follow the library's. Each command runs as a subprocess."""

from __future__ import annotations

import re
import socket
import time
from typing import Iterator

import pytest

import holysse
from holysse.commands import build_parser
from holysse.testing import FakeServer, Fault
from holysse.testing.connection import Connection, HTTPRequest

from .scripted import ScriptedServer
from .test_cli import KEY, PROMPT, WRONG_KEY, run

#: What a Python user would read, and a command-line user must not.
PYTHON_WORDS = re.compile(r"exc\.|RetryPolicy|Timeout[.(]|Client\(|session\.|\b[a-z]+(_[a-z]+)+=|\bbase_url\b|"
                          r"\bapi_key\b|allow_insecure_http")
#: A flag or an environment variable.
CLI_WORDS = re.compile(r"(^|\s|\()--[a-z][a-z-]+|\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b")


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


@pytest.fixture
def head_reset() -> Iterator[str]:
    """A server that accepts, starts the response head, then resets the connection."""

    def respond(conn: Connection, request: HTTPRequest, index: int) -> None:
        conn.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/ev")
        conn.close_rst()

    with ScriptedServer(respond) as server:
        yield server.url


def error_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def keyed() -> Iterator[FakeServer]:
    with FakeServer(answer_chars=400, api_key=KEY) as srv:
        yield srv


def failures(keyed: FakeServer, head_reset: str) -> dict[str, tuple[list[str], str | None]]:
    """name -> (chat arguments, the key to use)."""
    return {
        "refused, no retry": (["--base-url", closed_port(), "--retries", "0"], KEY),
        "wrong key": (["--base-url", keyed.url], WRONG_KEY),
        "stall": (["--base-url", keyed.url, "--read-timeout", "200ms", "--retries", "0"], KEY),
        "reset in the head": (["--base-url", head_reset, "--retries", "0"], KEY),
        "plain http elsewhere": (["--base-url", "http://10.255.255.1:8000/v1"], KEY),
        "no key for the gateway": ([], None),
    }


def test_every_error_line_names_a_flag_or_a_variable_and_no_python(keyed: FakeServer, head_reset: str) -> None:
    keyed.set_faults(lambda request: Fault.stall(40) if request.body.get("max_tokens") is None else None)
    for name, (args, key) in failures(keyed, head_reset).items():
        result = run("chat", PROMPT, "--model", "fake-1", *args, key=key)
        line = error_line(result.stderr)
        assert result.returncode in (1, 2), (name, result.stderr)
        assert line.startswith("holysse: "), (name, result.stderr)
        assert CLI_WORDS.search(line), (name, line)
        assert not PYTHON_WORDS.search(result.stderr), (name, result.stderr)
        assert "Traceback" not in result.stderr


def test_no_key_for_the_gateway_is_said_at_once_with_exit_2() -> None:
    started = time.monotonic()
    result = run("chat", "hi")
    assert result.returncode == 2, result.stderr
    assert "HOLYSHEEP_API_KEY" in error_line(result.stderr) and result.stdout == ""
    assert time.monotonic() - started < 10  # a subprocess start, no network wait


def test_a_refused_connection_is_a_retry_not_a_cut() -> None:
    result = run("chat", PROMPT, "--base-url", closed_port(), key=KEY)
    assert result.returncode == 1
    assert "↻ cut:" not in result.stderr and "↻ retry: Could not connect" in result.stderr
    assert "connection refused" in error_line(result.stderr) and "--base-url" in error_line(result.stderr)


def test_a_reset_inside_the_response_head_is_not_could_not_connect(head_reset: str) -> None:
    result = run("chat", PROMPT, "--base-url", head_reset, "--retries", "0", key=KEY)
    line = error_line(result.stderr)
    assert result.returncode == 1
    assert "Could not connect" not in result.stderr and "before the response headers" in line, result.stderr


@pytest.mark.parametrize(("args", "flag"), [
    (["chat", "--read-timeout", "0", "hi"], "--read-timeout"),
    (["chat", "--connect-timeout", "0s", "hi"], "--connect-timeout"),
    (["chat", "--read-timeout", "soon", "hi"], "--read-timeout"),
    (["serve", "--port", "99999"], "--port"),
    (["check", "--timeout", "0"], "--timeout"),
    (["demo", "--token-delay", "fast"], "--token-delay"),
])
def test_bad_option_values_exit_2_naming_the_flag(args: list[str], flag: str) -> None:
    result = run(*args, key=KEY)
    assert result.returncode == 2, result.stderr
    assert flag in error_line(result.stderr) and "Traceback" not in result.stderr


def test_option_defaults_follow_the_library() -> None:
    args = build_parser().parse_args(["chat", "hi"])
    assert args.retries == holysse.RetryPolicy().max_attempts
    assert args.connect_timeout == holysse.Timeout().connect


def test_demo_takes_durations_like_serve_and_bench() -> None:
    result = run("demo", "--token-delay", "1ms", "--chars", "300", "--quiet", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "identical to the server's full answer (300 characters): yes" in result.stderr


def test_one_reconnect_is_singular() -> None:
    # The fault plan of seed 3 cuts the one stream once (a fixed draw of the plan's random source).
    result = run("bench", "--fake", "-n", "1", "-c", "1", "--chars", "300", "--faults", "rst", "--fault-rate", "0.5",
                 "--fault-seed", "3")
    assert result.returncode == 0, result.stderr
    assert "0 failed, 1 reconnect\n" in result.stderr and "reconnects  1 (cursor 1) in 1 stream ·" in result.stdout


def test_check_tests_the_default_resume_and_reports_the_reconnects(keyed: FakeServer) -> None:
    body = {"model": "fake-1", "messages": [{"role": "user", "content": "Reply with OK."}], "max_tokens": 16}
    keyed.set_faults([Fault.fin(keyed.event_offsets(body)[4] + 5)])
    result = run("check", "--base-url", keyed.url, key=KEY)
    assert result.returncode == 0, result.stdout
    stream_line = next(line for line in result.stdout.splitlines() if line.startswith("✓ stream "))
    assert "1 reconnect (cursor)" in stream_line
    assert result.stdout.splitlines()[-1] == "ok: streaming works from here."
