"""Credentials against a hostile server: a server that echoes the key (in its
body, its error message and its headers) never gets it into an exception, a
log record (DEBUG included) or the command line; credentials passed through
``headers=`` are credentials; the session's cookies never follow a redirect
to another origin; keys that cannot be keys are refused."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import traceback
from typing import Iterator

import pytest

import holysse
from holysse.testing import FakeServer
from holysse.testing.connection import Connection, HTTPRequest

from .conftest import CHAT, Sleeps
from .scripted import ANSWER, ScriptedServer, chat_events, sse_head

KEY = "sk-proj-" + "EchoMe7q" * 5
HEADER_KEY = "hdr-" + "Zz81Echo" * 4
CASES = ("401", "400", "html-200", "in-stream", "503")


def echoing(case: str) -> ScriptedServer:
    """A server that repeats the credential it was sent, as careless APIs do."""

    def respond(conn: Connection, request: HTTPRequest, index: int) -> None:
        sent = request.header("Authorization") or request.header("x-api-key") or ""
        message = f"Incorrect API key provided: {sent}. You can find your key at https://example.com."
        echo = [("X-Echo-Auth", sent), ("Connection", "close")]
        if case in ("401", "400", "503"):
            body = json.dumps({"error": {"message": message, "type": "invalid_request_error"}}).encode()
            status = int(case)
            conn.write(Connection.head(status, [("Content-Type", "application/json"),
                                                ("Content-Length", str(len(body))), *echo]) + body)
        elif case == "html-200":
            body = f"<html><body><h1>Login</h1><p>{message}</p></body></html>".encode()
            conn.write(Connection.head(200, [("Content-Type", "text/html"), ("Content-Length", str(len(body))),
                                             *echo]) + body)
        else:
            error = json.dumps({"error": {"message": message, "type": "invalid_request_error", "code": "bad_key"}})
            conn.write(sse_head(extra=tuple(echo)) + chat_events()[1] + f"data: {error}\n\n".encode())

    return ScriptedServer(respond)


def texts_of(error: BaseException) -> Iterator[str]:
    """Everything a user or a log could see of ``error`` and its causes."""
    seen = 0
    current: BaseException | None = error
    while current is not None and seen < 10:
        seen += 1
        yield str(current)
        yield repr(current)
        yield repr(vars(current))
        for name in ("body_excerpt", "headers", "attempts", "request_id", "message"):
            yield repr(getattr(current, name, ""))
        current = current.__cause__ or current.__context__
    yield "".join(traceback.format_exception(error))


@pytest.mark.parametrize("how", ["api_key", "headers"])
@pytest.mark.parametrize("case", CASES)
def test_a_server_echoing_the_key_never_gets_it_shown(case: str, how: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="holysse")
    secret = KEY if how == "api_key" else HEADER_KEY
    with echoing(case) as server:
        if how == "api_key":
            client = holysse.Client(api_key=KEY, base_url=server.url, sleep=Sleeps(),
                                    retry=holysse.RetryPolicy(max_attempts=2, backoff_initial=0.01))
        else:
            client = holysse.Client(base_url=server.url, headers={"x-api-key": HEADER_KEY}, sleep=Sleeps(),
                                    retry=holysse.RetryPolicy(max_attempts=2, backoff_initial=0.01))
        with client, pytest.raises(holysse.HolySSEError) as info:
            list(client.stream(**CHAT))
        assert server.requests, "the request was sent"
        echoed = server.requests[0].header("Authorization") or server.requests[0].header("x-api-key") or ""
        assert secret in echoed  # the server did have the key to echo
    error = info.value
    if case == "503":
        assert isinstance(error, holysse.RetriesExhausted) and len(error.attempts) == 2
    seen = [*texts_of(error), *(record.getMessage() for record in caplog.records)]
    seen += [logging.Formatter().format(record) for record in caplog.records]
    if case == "503":  # retried: logged at INFO
        assert any("Incorrect API key" in record.getMessage() for record in caplog.records)
    assert "Incorrect API key provided" in " ".join(seen)  # the server's words are kept...
    assert all(secret not in text for text in seen)  # ...without the key
    assert all(secret[4:] not in text for text in seen)


@pytest.mark.parametrize("case", CASES)
def test_the_cli_never_prints_an_echoed_key(case: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLYSHEEP_")}
    with echoing(case) as server:
        env.update(HOLYSHEEP_API_KEY=KEY, HOLYSHEEP_BASE_URL=server.url, NO_COLOR="1")
        done = subprocess.run([sys.executable, "-m", "holysse", "-vv", "chat", "--retries", "1", "hi"],
                              capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 1, done.stderr
    assert "Incorrect API key provided" in done.stderr
    assert KEY not in done.stdout + done.stderr and KEY[8:] not in done.stdout + done.stderr


# -- credentials passed as headers --------------------------------------------------------------


@pytest.mark.parametrize("name", ["Authorization", "x-api-key", "api-key", "X-Goog-Api-Key"])
def test_a_key_in_headers_is_a_credential(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOLYSHEEP_API_KEY", raising=False)
    value = "Bearer " + HEADER_KEY if name == "Authorization" else HEADER_KEY
    with pytest.raises(holysse.UsageError, match="plain http://"):
        holysse.Client(base_url="http://api.example.com/v1", headers={name: value})
    client = holysse.Client(base_url="https://api.example.com/v1", headers={name: value})
    assert "key=set" in repr(client) and HEADER_KEY not in repr(client)
    assert client.api_key_source == f"headers= ({name})"
    plain = holysse.Client(base_url="https://api.example.com/v1", headers={"X-Trace": "t"})
    assert "key=missing" in repr(plain)


# -- cookies and redirects ------------------------------------------------------------------------


def test_session_cookies_never_follow_a_redirect_to_another_origin() -> None:
    """Cookies ignore ports, origins do not: 127.0.0.1:A's cookie must not reach 127.0.0.1:B."""
    with FakeServer(answer_chars=300) as target:
        def respond(conn: Connection, request: HTTPRequest, index: int) -> None:
            if index == 0:  # a normal answer that sets a session cookie
                conn.write(sse_head(extra=(("Set-Cookie", "session=c00kieS3cret; Path=/"),))
                           + b"".join(chat_events()))
            else:  # then a redirect to the same host on another port
                moved = [("Location", target.url + "/chat/completions"), ("Content-Length", "0"),
                         ("Connection", "close")]
                conn.write(Connection.head(307, moved))

        with ScriptedServer(respond) as first:
            with holysse.Client(api_key=KEY, base_url=first.url, sleep=Sleeps()) as client:
                assert client.stream(**CHAT).final().text == ANSWER
                assert client.stream(**CHAT).final().text == target.expected_text(CHAT)
        assert "c00kieS3cret" in (first.requests[1].header("Cookie") or "")  # the jar works for its origin
        arrived = target.requests[0]
        assert arrived.header("Cookie") is None
        assert arrived.header("Authorization") is None
        assert arrived.body["messages"] == CHAT["messages"]


# -- keys that cannot be keys ------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["sk-test SECRET", "sk-test\tSECRET", "sk-test\x07SECRET", "sk-test\x85SECRET",
                                 " sk-testSECRET", "sk-test…SECRET", "“sk-testSECRET”"])
def test_keys_with_spaces_controls_or_non_latin1_are_refused_when_the_client_is_made(key: str) -> None:
    with pytest.raises(holysse.UsageError, match="API key from api_key=") as info:
        holysse.Client(api_key=key, base_url="http://127.0.0.1:9/v1")
    assert key not in str(info.value)


def test_a_non_latin1_header_value_is_refused_before_sending() -> None:
    with pytest.raises(holysse.UsageError, match="Latin-1"):
        holysse.Client(api_key=KEY, base_url="http://127.0.0.1:9/v1", headers={"X-Name": "日本"})


def test_the_redaction_step_covers_bearer_cookie_and_short_values() -> None:
    from holysse import _redact

    _redact.register("Bearer tok-" + "9" * 12, "a=cookieValue123; b=x")
    assert _redact.redact("sent tok-999999999999 and cookieValue123") == "sent <redacted> and <redacted>"
    assert _redact.redact("b=x stays") == "b=x stays"  # too short to search for
    assert _redact.redact_value({"h": ("tok-999999999999", 3)}) == {"h": ("<redacted>", 3)}
    assert all(_redact.is_credential(name) for name in ("Authorization", "X-API-KEY", "api-key", "Cookie",
                                                        "x-goog-api-key", "X-Auth-Token"))
    assert not any(_redact.is_credential(name) for name in ("Accept", "X-Trace", "Idempotency-Key",
                                                            "anthropic-version"))


def test_response_headers_of_a_successful_stream_are_redacted_too() -> None:
    def respond(conn: Connection, request: HTTPRequest, index: int) -> None:
        echo = (("X-Echo-Auth", request.header("Authorization") or ""),)
        conn.write(sse_head(extra=echo) + b"".join(chat_events()))

    with ScriptedServer(respond) as server, holysse.Client(api_key=KEY, base_url=server.url) as client:
        stream = client.stream(**CHAT)
        assert stream.final().text == ANSWER
    assert stream.response is not None
    assert stream.response.headers["x-echo-auth"] == "Bearer <redacted>"
    assert KEY not in repr(dict(stream.response.headers))
