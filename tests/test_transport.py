"""The transport on real sockets: immediate delivery, error translation while
opening and while iterating, and an abort from another thread."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from typing import Iterator

import pytest
import requests
import urllib3

import holysse
from holysse.testing import FakeServer, Fault
from holysse.transport import HTTPRequest, RequestsTransport, Timeout

from .conftest import CHAT


@pytest.fixture
def transport() -> Iterator[RequestsTransport]:
    transport = RequestsTransport()
    yield transport
    transport.close()


def chat_request(server: FakeServer, body: dict[str, object] | None = None) -> HTTPRequest:
    return HTTPRequest(
        "POST", server.url + "/chat/completions", {"Authorization": "Bearer hs_secret"},
        dict(body or CHAT, stream=True),
    )


def read_all(response: holysse.transport.Response) -> bytes:
    return b"".join(response.iter_bytes())


def test_body_and_headers_go_out_as_sent(server: FakeServer, transport: RequestsTransport) -> None:
    body = dict(CHAT, messages=[{"role": "user", "content": "東京 🚀"}])
    response = transport.open(chat_request(server, body), Timeout(2, 2))
    assert response.status_code == 200
    payload = read_all(response)
    response.close()
    assert len(payload) == len(server.body_for(dict(body, stream=True)))  # same bytes but ids and times
    recorded = server.requests[-1]
    assert recorded.raw_body == json.dumps(dict(body, stream=True), ensure_ascii=False,
                                           separators=(",", ":")).encode("utf-8")
    assert recorded.header("Content-Type") == "application/json"
    assert recorded.header("User-Agent", "").startswith("holysse/")


@pytest.mark.parametrize("options", [{"chunked": True}, {"chunked": False}, {"gzip": True}])
def test_the_payload_arrives_whole_on_every_body_shape(options: dict[str, bool], transport: RequestsTransport) -> None:
    with FakeServer(answer_chars=500, **options) as server:
        response = transport.open(chat_request(server), Timeout(2, 2))
        payload = read_all(response)
        response.close(complete=True)
        expected = server.body_for(dict(CHAT, stream=True))
    assert len(payload) == len(expected)
    assert payload.endswith(b"data: [DONE]\n\n")


@pytest.mark.parametrize("options", [{"chunked": True}, {"chunked": False}, {"gzip": True}])
def test_each_event_is_delivered_before_the_next_is_sent(options: dict[str, bool],
                                                        transport: RequestsTransport) -> None:
    """The server stalls after 3 events; the reader must get them at once."""
    with FakeServer(answer_chars=300, **options) as server:
        ends = server.event_offsets(dict(CHAT, stream=True))
        server.set_faults([Fault.stall(ends[2])])
        response = transport.open(chat_request(server), Timeout(2, 30))
        got = b""
        chunks = response.iter_bytes()
        while len(got) < ends[2]:
            got += next(chunks)  # would block for 30 s if delivery waited for more
        assert got.count(b"\n\n") == 3
        response.abort()
        response.close()


def test_connect_refused_is_a_connect_error(transport: RequestsTransport) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    request = HTTPRequest("POST", f"http://127.0.0.1:{port}/v1/chat/completions", {}, {})
    with pytest.raises(holysse.ConnectError, match="Could not connect") as info:
        transport.open(request, Timeout(2, 2))
    assert isinstance(info.value.__cause__, requests.ConnectionError)
    assert info.value.retryable


def test_no_headers_in_time_is_a_read_timeout(server: FakeServer, transport: RequestsTransport) -> None:
    server.set_faults([Fault.headers_stall()])
    with pytest.raises(holysse.ReadTimeout, match="no response headers"):
        transport.open(chat_request(server), Timeout(2, 0.1))


@pytest.mark.parametrize(("fault", "error"), [("rst", holysse.StreamInterrupted), ("stall", holysse.ReadTimeout)])
def test_errors_while_iterating_are_translated(server: FakeServer, transport: RequestsTransport,
                                               fault: str, error: type[Exception]) -> None:
    at = server.event_offsets(dict(CHAT, stream=True))[4] + 7
    server.set_faults([getattr(Fault, fault)(at)])
    response = transport.open(chat_request(server), Timeout(2, 0.1))
    received = b""
    with pytest.raises(error) as info:
        for chunk in response.iter_bytes():
            received += chunk
    response.close()
    assert len(received) == at
    assert isinstance(info.value.__cause__, (urllib3.exceptions.HTTPError, OSError))


def test_fin_inside_a_chunk_is_interrupted_but_fin_of_a_close_delimited_body_is_eof(
    transport: RequestsTransport,
) -> None:
    for chunked, outcome in ((True, holysse.StreamInterrupted), (False, None)):
        with FakeServer(answer_chars=300, chunked=chunked) as server:
            at = server.event_offsets(dict(CHAT, stream=True))[3] + 5
            server.set_faults([Fault.fin(at)])
            response = transport.open(chat_request(server), Timeout(2, 2))
            if outcome is None:
                assert len(read_all(response)) == at  # a clean EOF: the loop decides it is a cut
            else:
                with pytest.raises(outcome):
                    read_all(response)
            response.close()


def test_abort_from_another_thread_ends_a_blocked_read_within_a_second(
    server: FakeServer, transport: RequestsTransport
) -> None:
    server.set_faults([Fault.stall(server.event_offsets(dict(CHAT, stream=True))[1])])
    response = transport.open(chat_request(server), Timeout(2, 60))
    chunks = response.iter_bytes()
    next(chunks)
    ended = threading.Event()

    def drain() -> None:
        for _ in chunks:
            pass
        ended.set()

    thread = threading.Thread(target=drain)
    thread.start()
    started = time.monotonic()
    response.abort()
    assert ended.wait(1.0), "abort() did not end the blocked read"
    thread.join(1.0)
    assert time.monotonic() - started < 1.0


def test_error_bodies_are_read_as_text(server: FakeServer, transport: RequestsTransport) -> None:
    server.set_faults([Fault.status(429, body={"error": {"message": "slow down"}})])
    response = transport.open(chat_request(server), Timeout(2, 2))
    assert response.status_code == 429 and "slow down" in response.read_text()
    response.close()


def test_gzip_is_decoded_even_when_compressed_chunks_are_tiny(transport: RequestsTransport) -> None:
    with FakeServer(answer_chars=200, gzip=True) as server:
        response = transport.open(chat_request(server), Timeout(2, 2))
        assert response.headers["Content-Encoding"] == "gzip"
        payload = read_all(response)
        response.close()
    assert b"data: [DONE]" in payload and not payload.startswith(gzip.compress(b"")[:2])


def test_http_request_repr_hides_secrets() -> None:
    request = HTTPRequest("POST", "https://x/v1", {"Authorization": "Bearer hs_secret", "x-api-key": "k2"}, {})
    assert "hs_secret" not in repr(request) and "k2" not in repr(request)
    merged = request.replace(headers={"Last-Event-ID": "7"})
    assert merged.headers["Last-Event-ID"] == "7" and merged.headers["Authorization"] == "Bearer hs_secret"


def test_invalid_url_is_a_usage_error(transport: RequestsTransport) -> None:
    with pytest.raises(holysse.UsageError):
        transport.open(HTTPRequest("POST", "http://[::1/v1", {}, {}), Timeout(1, 1))
