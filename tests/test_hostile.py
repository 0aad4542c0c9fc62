"""Hostile and broken servers, at the socket: each case has its expected outcome.

Cases: data after ``[DONE]``; an HTML page with 200 (as text/html and
mislabelled text/event-stream); ``text/event-stream`` holding a JSON error;
giant response heads; redirects (to another host, 301/302/303 vs 307/308,
loops, https downgrade); a 200 that closes before any event; duplicate,
rewound and restarted SSE ids on a cursor resume; a server that ignores
``Last-Event-ID`` and starts over.
"""

from __future__ import annotations

import time

import pytest

import holysse
from holysse import Resumed, TextDelta
from holysse.testing import FakeServer, Fault
from holysse.testing.connection import Connection, HTTPRequest
from holysse.transport import HTTPRequest as OutgoingRequest
from holysse.transport import redirect_target

from .conftest import CHAT, Sleeps, make_client
from .scripted import ANSWER, ScriptedServer, chat_events, sse_head

KEY = "hs_" + "h0st1le" * 5


def client_for(url: str, sleeps: Sleeps | None = None, **kwargs: object) -> holysse.Client:
    kwargs.setdefault("timeout", holysse.Timeout(connect=5, read=10))
    kwargs.setdefault("retry", holysse.RetryPolicy(max_attempts=3, backoff_initial=0.01))
    return holysse.Client(api_key=KEY, base_url=url, sleep=sleeps if sleeps is not None else Sleeps(), **kwargs)


BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


# -- the end of the stream ----------------------------------------------------


def test_data_after_done_is_ignored_and_not_waited_for() -> None:
    trailer = chat_events(ids=None)[1].replace(b"Nothing", b"EXTRA!!")

    def respond(conn: Connection, request: HTTPRequest, index: int) -> None:
        conn.write(sse_head() + b"".join(chat_events()) + trailer * 3)
        server.closing.wait(30)  # then keep the connection open, silent

    with ScriptedServer(respond) as server:
        started = time.monotonic()
        stream = client_for(server.url).stream(**BODY)
        text = "".join(event.text for event in stream)
        elapsed = time.monotonic() - started
    assert text == stream.text == ANSWER and "EXTRA" not in text
    assert stream.finish_reason == "stop" and len(server.requests) == 1
    assert elapsed < 5  # did not wait for the silent connection (read timeout 10 s)


def test_a_200_that_closes_before_any_event_is_retried(server: FakeServer, sleeps: Sleeps) -> None:
    server.set_faults([Fault.fin(0), Fault.rst(0)])
    stream = make_client(server, sleeps).stream(**CHAT)
    events = list(stream)
    assert stream.text == server.expected_text(CHAT)
    assert [e.strategy for e in events if isinstance(e, Resumed)] == ["retry", "retry"]
    assert len(server.requests) == 3


def test_a_200_that_always_closes_before_any_event_gives_up(server: FakeServer, sleeps: Sleeps) -> None:
    server.set_faults([Fault.fin(0)] * 10)
    policy = holysse.RetryPolicy(max_attempts=3, backoff_initial=0.01)
    with pytest.raises(holysse.RetriesExhausted) as info:
        list(make_client(server, sleeps, retry=policy).stream(**CHAT))
    assert isinstance(info.value.__cause__, holysse.StreamInterrupted)
    assert "The connection to" in str(info.value) and info.value.partial == ""
    assert len(server.requests) == 4 and len(info.value.attempts) == 3


# -- not an event stream ------------------------------------------------------------


def test_html_page_with_200_fails_at_once(server: FakeServer, sleeps: Sleeps) -> None:
    server.set_faults([Fault.content_type("text/html; charset=utf-8")])
    with pytest.raises(holysse.ProtocolError) as info:
        list(make_client(server, sleeps).stream(**CHAT))
    assert "text/html" in str(info.value) and "base_url" in str(info.value)
    assert "Please sign in" in info.value.body_excerpt
    assert len(server.requests) == 1 and sleeps == []


def test_html_page_labelled_event_stream_fails_at_once(server: FakeServer, sleeps: Sleeps) -> None:
    page = b"<!DOCTYPE html>\n<html><body><h1>502 Bad Gateway</h1></body></html>\n"
    server.set_faults([Fault.content_type("text/event-stream", body=page)])
    with pytest.raises(holysse.ProtocolError, match="HTML page labelled text/event-stream") as info:
        list(make_client(server, sleeps).stream(**CHAT))
    assert "502 Bad Gateway" in info.value.body_excerpt
    assert len(server.requests) == 1 and sleeps == []


def test_event_stream_holding_a_json_error_reports_it(server: FakeServer, sleeps: Sleeps) -> None:
    error = {"error": {"message": "The model `m` does not exist", "type": "invalid_request_error"}}
    server.set_faults([Fault.content_type("text/event-stream", body=error)])
    with pytest.raises(holysse.ProtocolError) as info:
        list(make_client(server, sleeps).stream(**CHAT))
    assert "JSON error instead of events" in str(info.value)
    assert "does not exist (invalid_request_error)" in str(info.value)
    assert len(server.requests) == 1 and sleeps == []


# -- giant response heads -------------------------------------------------------------


@pytest.mark.parametrize("shape", ["one 100 KiB line", "150 headers"])
def test_giant_response_head_is_refused_clearly(shape: str) -> None:
    if shape == "one 100 KiB line":
        extra: tuple[tuple[str, str], ...] = (("X-Huge", "h" * 100_000),)
    else:
        extra = tuple((f"X-Many-{i}", "v") for i in range(150))

    def respond(conn: Connection, request: HTTPRequest, index: int) -> None:
        conn.write(sse_head(extra=extra) + b"".join(chat_events()))

    sleeps = Sleeps()
    with ScriptedServer(respond) as server:
        with pytest.raises(holysse.ProtocolError, match="response head holysse refuses") as info:
            list(client_for(server.url, sleeps).stream(**BODY))
    assert len(server.requests) == 1 and sleeps == []
    assert KEY not in str(info.value)


def test_large_but_sane_headers_are_fine() -> None:
    extra = (("X-Big", "b" * 48_000), *((f"X-Some-{i}", "v") for i in range(60)))

    def respond(conn: Connection, request: HTTPRequest, index: int) -> None:
        conn.write(sse_head(extra=extra) + b"".join(chat_events()))

    with ScriptedServer(respond) as server:
        assert client_for(server.url).stream(**BODY).final().text == ANSWER


# -- redirects --------------------------------------------------------------------------


def redirector(status: int, location: str) -> ScriptedServer:
    def respond(conn: Connection, request: HTTPRequest, index: int) -> None:
        conn.write(Connection.head(status, [("Location", location), ("Content-Length", "0"), ("Connection", "close")]))

    return ScriptedServer(respond)


@pytest.mark.parametrize("status", [307, 308])
def test_redirect_to_another_host_keeps_the_post_and_drops_the_key(status: int) -> None:
    with FakeServer(answer_chars=300, host="localhost") as target:
        location = target.url + "/chat/completions"
        with redirector(status, location) as server:
            client = client_for(server.url, headers={"x-api-key": KEY, "api-key": KEY, "X-Trace": "t1"})
            text = client.stream(**dict(CHAT)).final().text
    assert text == target.expected_text(CHAT)
    assert server.requests[0].header("Authorization") == f"Bearer {KEY}"
    arrived = target.requests[0]
    assert arrived.method == "POST" and arrived.body["messages"] == CHAT["messages"]
    for name in ("Authorization", "x-api-key", "api-key", "Cookie"):
        assert arrived.header(name) is None, name
    assert arrived.header("X-Trace") == "t1"
    assert all(KEY not in value for value in arrived.headers.values())


def test_redirect_on_the_same_origin_keeps_the_key() -> None:
    def respond(conn: Connection, request: HTTPRequest, index: int) -> None:
        if index == 0:
            moved = [("Location", "/v1/chat/completions?moved=1"), ("Content-Length", "0"), ("Connection", "close")]
            conn.write(Connection.head(308, moved))
        else:
            conn.write(sse_head() + b"".join(chat_events()))

    with ScriptedServer(respond) as server:
        text = client_for(server.url).stream(**BODY).final().text
    assert text == ANSWER and len(server.requests) == 2
    assert server.requests[1].target == "/v1/chat/completions?moved=1"
    assert server.requests[1].header("Authorization") == f"Bearer {KEY}"
    assert server.requests[1].body == server.requests[0].body


@pytest.mark.parametrize("status", [301, 302, 303])
def test_method_changing_redirects_of_a_post_are_not_followed(status: int) -> None:
    with FakeServer(answer_chars=300, host="localhost") as target:
        with redirector(status, target.url + "/chat/completions") as server:
            sleeps = Sleeps()
            with pytest.raises(holysse.HTTPStatusError) as info:
                list(client_for(server.url, sleeps).stream(**BODY))
        assert target.requests == []
    assert info.value.status_code == status and not info.value.retryable
    assert "only 307 and 308" in str(info.value) and "base_url" in str(info.value)
    assert sleeps == []


def test_redirect_loop_ends_with_a_clear_error() -> None:
    def respond(conn: Connection, request: HTTPRequest, index: int) -> None:
        location = f"/v1/chat/completions?hop={index + 1}"
        conn.write(Connection.head(307, [("Location", location), ("Content-Length", "0"), ("Connection", "close")]))

    with ScriptedServer(respond) as server:
        with pytest.raises(holysse.ProtocolError, match="still redirecting after 5 redirects"):
            list(client_for(server.url).stream(**BODY))
    assert len(server.requests) == 6


def test_redirect_rules() -> None:
    """The rules, on the pure function (no server can offer https here)."""
    post = OutgoingRequest("POST", "https://api.example.com/v1/chat/completions",
                           {"Authorization": "Bearer k", "x-api-key": "k", "Accept": "text/event-stream"}, {"a": 1})
    moved = redirect_target(post, 308, {"location": "/v2/chat/completions"})
    assert moved is not None and moved.url == "https://api.example.com/v2/chat/completions"
    assert moved.headers["Authorization"] == "Bearer k" and moved.json == {"a": 1}
    elsewhere = redirect_target(post, 307, {"Location": "https://api.example.com:8443/v1/chat/completions"})
    assert elsewhere is not None and set(elsewhere.headers) == {"Accept"}  # another port: another origin
    assert redirect_target(post, 302, {"Location": "/x"}) is None
    assert redirect_target(post, 307, {}) is None
    with pytest.raises(holysse.ProtocolError, match="downgrade"):
        redirect_target(post, 307, {"Location": "http://api.example.com/v1/chat/completions"})
    with pytest.raises(holysse.ProtocolError, match="unusable"):
        redirect_target(post, 307, {"Location": "https://user:pw@evil.example/"})
    get = OutgoingRequest("GET", "https://api.example.com/v1/responses/r1?stream=true", {"Authorization": "k"})
    followed = redirect_target(get, 302, {"Location": "https://cdn.example.net/r1"})
    assert followed is not None and followed.method == "GET" and "Authorization" not in followed.headers


# -- SSE ids on a cursor resume -----------------------------------------------------------


def cut_then(resend: list[bytes]) -> ScriptedServer:
    """Request 0: events up to id s-9, then a FIN inside event 10. A request
    with ``Last-Event-ID: s-9`` gets ``resend`` followed by the rest from
    s-10. A request without it (a replay) gets the whole answer."""
    events = chat_events()

    def respond(conn: Connection, request: HTTPRequest, index: int) -> None:
        if index == 0:
            conn.write(sse_head() + b"".join(events[:10]) + events[10][:25])
        elif request.header("Last-Event-ID") == "s-9":
            conn.write(sse_head() + b"".join(resend) + b"".join(events[10:]))
        else:
            conn.write(sse_head() + b"".join(events))

    return ScriptedServer(respond)


@pytest.mark.parametrize(
    "case",
    ["duplicate of the last id", "rewound three events", "an id repeated later", "restart with the same ids"],
)
def test_ids_seen_before_on_a_cursor_resume_are_caught(case: str) -> None:
    events = chat_events()
    resend = {
        "duplicate of the last id": [events[9]],
        "rewound three events": events[7:10],
        "an id repeated later": [events[10], events[11], events[10]],
        "restart with the same ids": events[1:10],  # no role delta: only the ids tell
    }[case]
    with cut_then(resend) as server:
        stream = client_for(server.url, resume="cursor").stream(**BODY)
        received = "".join(e.text for e in stream if isinstance(e, TextDelta))
    assert received == stream.text == ANSWER
    assert server.requests[1].header("Last-Event-ID") == "s-9"
    assert stream.metrics.reconnects == {"cursor": 1, "replay": 1}
    assert server.requests[2].header("Last-Event-ID") is None


def test_an_honest_cursor_resume_needs_no_replay() -> None:
    with cut_then([]) as server:
        stream = client_for(server.url).stream(**BODY)
        assert stream.final().text == ANSWER
    assert stream.metrics.reconnects == {"cursor": 1} and len(server.requests) == 2
    assert stream.metrics.wasted_output_tokens == 0


def test_server_ignoring_last_event_id_with_new_ids_is_handled_as_replay(server: FakeServer, sleeps: Sleeps) -> None:
    cut = server.event_offsets(CHAT)[30] + 3
    server.set_faults([Fault.rst(cut), Fault.drop_ids()])
    stream = make_client(server, sleeps).stream(**CHAT)
    received = "".join(e.text for e in stream)
    assert received == stream.text == server.expected_text(CHAT)
    assert server.requests[1].header("Last-Event-ID")  # asked for a cursor resume...
    assert len(server.requests) == 2 and stream.metrics.wasted_output_tokens > 0  # ...and dropped the replay
