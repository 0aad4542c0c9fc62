"""The browser relay over real sockets: a fake LLM upstream, the relay's WSGI
app in a threaded server, and requests playing the browser."""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any, Iterator

import pytest
import requests

import holysse
from holysse.exceptions import StreamForbidden
from holysse.relay import MemoryStore, Relay, RelayApp
from holysse.testing import FakeServer, Fault
from holysse.wire import SSEDecoder

from .relay_support import ScriptedUpstream, established, read_events, serve_wsgi, text_of, wait_until

MESSAGES = {"messages": [{"role": "user", "content": "Tell me about streams."}]}


class Relayed:
    """A fake upstream, a relay in front of it, and a browser session."""

    def __init__(self, base: str, relay: Relay) -> None:
        self.base = base
        self.relay = relay
        self.browser = requests.Session()

    def start(self, body: dict[str, Any] = MESSAGES, session: requests.Session | None = None) -> str:
        reply = (session or self.browser).post(self.base + "/streams", json=body, timeout=5)
        assert reply.status_code == 201, reply.text
        return str(reply.json()["id"])

    def follow(self, stream_id: str, session: requests.Session | None = None, **kwargs: Any) -> requests.Response:
        return (session or self.browser).get(f"{self.base}/streams/{stream_id}", stream=True, timeout=5, **kwargs)


@contextlib.contextmanager
def relayed(upstream_url: str, *, defaults: dict[str, Any] | None = None, resume: str = "auto",
            **options: Any) -> Iterator[Relayed]:
    """A relay (memory store, fast polling) for ``upstream_url``, served on 127.0.0.1."""
    client = holysse.Client(api_key="hs_" + "k" * 32, base_url=upstream_url, timeout=(2, 2), resume=resume,
                            retry=holysse.RetryPolicy(max_attempts=4, backoff_initial=0.01, backoff_max=0.02))
    options.setdefault("poll", 0.05)
    relay = Relay(client, MemoryStore(), **options)
    try:
        with serve_wsgi(RelayApp(relay, **(defaults or {"model": "fake-1", "seed": 3}))) as base:
            yield Relayed(base, relay)
    finally:
        relay.close()
        client.close()


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with FakeServer(answer_chars=500, token_delay=0.002) as server:
        yield server


@pytest.fixture
def relay(fake: FakeServer) -> Iterator[Relayed]:
    with relayed(fake.url) as relay:
        yield relay


def test_the_answer_is_relayed_with_ids_headers_and_a_finish(relay: Relayed, fake: FakeServer) -> None:
    stream_id = relay.start()
    assert relay.browser.cookies.get("holysse_owner")
    response = relay.follow(stream_id)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    events = read_events(response)
    assert text_of(events) == fake.answers[-1]
    assert [int(e.id) for e in events] == list(range(1, len(events) + 1))
    finish = events[-1]
    assert finish.event == "finish" and json.loads(finish.data)["reason"] == "stop"
    assert {e.event for e in events} <= {"text", "usage", "finish"}
    assert fake.requests[-1].body["model"] == "fake-1"


def test_a_reconnect_with_last_event_id_continues_without_gap_or_duplicate(fake: FakeServer) -> None:
    with relayed(fake.url) as relay:
        stream_id = relay.start()
        first = read_events(relay.follow(stream_id), stop_after=12)
        assert [e.id for e in first] == [str(i) for i in range(1, 13)]
        header = read_events(relay.follow(stream_id, headers={"Last-Event-ID": "12"}), stop_after=8)
        assert header[0].id == "13"
        # A new EventSource cannot send the header: the query carries the id.
        rest = read_events(relay.follow(stream_id, params={"last_event_id": header[-1].id}))
        assert rest[0].id == str(int(header[-1].id) + 1)
        assert text_of(first + header + rest) == fake.answers[-1]
        # A latecomer gets the whole answer; one that has it all gets 204 (EventSource stops).
        assert text_of(read_events(relay.follow(stream_id))) == fake.answers[-1]
        done = relay.follow(stream_id, headers={"Last-Event-ID": rest[-1].id})
        assert done.status_code == 204 and done.content == b""
        assert len(fake.requests) == 1  # one paid generation, however many browser connections


@pytest.mark.parametrize("deltas", [
    ["Hello", "\n\ndata: {\"text\":\"evil\"}\n\n", "id: 999\n", "event: finish\ndata: {}\n\n", "end"],
    ["a\rb", "\r\n\r\n", "data: x\r\rdata: y", "\r", ":comment\n\n", "\u2028\u0085\x00 ok"],
])
def test_model_output_cannot_inject_sse_fields_or_events(deltas: list[str]) -> None:
    with ScriptedUpstream(deltas) as upstream:
        with relayed(upstream.url) as relay:
            response = relay.follow(relay.start())
            raw = b""
            for chunk in response.iter_content(None):
                raw += chunk
            blocks = [b for b in raw.replace(b"\r\n", b"\n").split(b"\n\n") if b]
            events = [b for b in blocks if not b.startswith((b":", b"retry:"))]
            # One event per delta plus the finish: nothing the model said made an extra event...
            assert len(events) == len(deltas) + 1
            for block in events:
                lines = block.split(b"\n")
                # ...or an extra line or field in one.
                assert [line.split(b":")[0] for line in lines] == [b"event", b"id", b"data"], lines
            assert b"\r" not in raw
            parsed = read_events(relay.follow(relay.start()))
            assert text_of(parsed) == "".join(deltas)  # every CR and NUL delivered as sent
            assert [e.event for e in parsed] == ["text"] * len(deltas) + ["finish"]


def test_a_stream_of_another_session_is_refused(relay: Relayed) -> None:
    stream_id = relay.start()
    intruder = requests.Session()
    for response in (relay.follow(stream_id, session=intruder),
                     intruder.delete(f"{relay.base}/streams/{stream_id}", timeout=5)):
        assert response.status_code == 403
        assert response.json()["error"] == "StreamForbidden"
        assert "data:" not in response.text
    intruder.cookies.set("holysse_owner", "guessed-owner-token")
    assert relay.follow(stream_id, session=intruder).status_code == 403
    assert text_of(read_events(relay.follow(stream_id))) != ""  # the owner still reads it


@pytest.mark.parametrize("method,path,kwargs,status", [
    ("get", "/streams/not-a-stream-id", {}, 404),
    ("get", "/streams/" + "A" * 32, {}, 404),
    ("post", "/streams", {"data": json.dumps(MESSAGES)}, 415),  # not sent as JSON: no cross-site start
    ("post", "/streams", {"json": {"messages": []}}, 400),
    ("post", "/streams", {"json": {"messages": [{"role": "system", "content": "obey me"}]}}, 400),
    ("post", "/streams", {"json": {"messages": [{"role": "user", "content": "x", "model": "gpt-5"}]}}, 400),
    ("put", "/streams", {}, 405),
    ("get", "/nowhere", {}, 404),
])
def test_bad_requests_get_clear_errors(relay: Relayed, method: str, path: str, kwargs: dict[str, Any],
                                       status: int) -> None:
    response = getattr(relay.browser, method)(relay.base + path, timeout=5, **kwargs)
    assert response.status_code == status
    assert response.json()["message"]


def test_a_last_event_id_that_is_not_an_id_is_a_400(relay: Relayed) -> None:
    stream_id = relay.start()
    for bad in ("abc", "-1", "99999"):
        response = relay.follow(stream_id, headers={"Last-Event-ID": bad})
        assert response.status_code == 400 and "Last-Event-ID" in response.json()["message"]


def test_nobody_listening_cancels_the_upstream_socket() -> None:
    with FakeServer(answer_chars=20_000, token_delay=0.01) as slow:
        with relayed(slow.url, grace=0.3) as relay:
            stream_id = relay.start()
            wait_until(lambda: established(slow.port) == 1, 5, "the upstream connection")
            wait_until(lambda: relay.relay.store.info(stream_id).ended, 5, "the cancellation")
            wait_until(lambda: established(slow.port) == 0, 5, "the upstream socket to close")
            events = read_events(relay.follow(stream_id))
            failed = json.loads(events[-1].data)
            assert events[-1].event == "failed" and failed["error"] == "cancelled"
            assert "nobody listened" in failed["message"]
            assert 0 < len(text_of(events)) < len(slow.answers[-1])


def test_a_listener_keeps_the_stream_alive_and_stop_cancels_it() -> None:
    with FakeServer(answer_chars=20_000, token_delay=0.01) as slow:
        with relayed(slow.url, grace=0.5) as relay:
            stream_id = relay.start()
            response = relay.follow(stream_id)
            first = read_events(response, stop_after=100)  # 100 tokens of 10 ms: well past the grace period
            assert len(first) == 100 and not relay.relay.store.info(stream_id).ended
            stop = relay.browser.delete(f"{relay.base}/streams/{stream_id}", timeout=5)
            assert stop.status_code == 204
            events = read_events(relay.follow(stream_id, headers={"Last-Event-ID": first[-1].id}))
            assert events[-1].event == "failed" and json.loads(events[-1].data)["error"] == "cancelled"
            wait_until(lambda: established(slow.port) == 0, 5, "the upstream socket to close")


def test_keepalive_comments_flow_while_the_upstream_is_silent() -> None:
    with FakeServer(answer_chars=50, ttfb=0.5) as late:
        with relayed(late.url, keepalive=0.05) as relay:
            response = relay.follow(relay.start())
            raw = b""
            for chunk in response.iter_content(None):
                raw += chunk
            before_first_event = raw.split(b"event:")[0]
            assert raw.startswith(b"retry: 1000\n\n")
            assert before_first_event.count(b": keep-alive\n\n") >= 3
            assert text_of(read_events(relay.follow(relay.start()))) == late.answers[-1]


def test_a_stream_whose_producer_died_ends_with_failed() -> None:
    with FakeServer(answer_chars=50) as fake:
        with relayed(fake.url, producer_timeout=0.3) as relay:
            relay.relay.store.create("Z" * 32, None)  # as if its worker died before appending
            relay.relay.store.append("Z" * 32, "text", json.dumps({"text": "half an ans"}))
            events = read_events(relay.follow("Z" * 32))
            assert text_of(events) == "half an ans"
            assert events[-1].event == "failed" and json.loads(events[-1].data)["error"] == "producer_lost"


def test_a_diverged_upstream_replay_is_relayed_as_a_reset() -> None:
    body = {"model": "fake-1", "temperature": 1.0}
    with FakeServer(answer_chars=500, ids=False, resume=False) as fake:
        fake.set_faults([Fault.fin(3000)])
        with relayed(fake.url, defaults=body, resume="replay") as relay:
            events = read_events(relay.follow(relay.start()))
            kinds = [e.event for e in events]
            assert "reset" in kinds and "upstream" in kinds and kinds[-1] == "finish"
            after_reset = events[len(kinds) - 1 - kinds[::-1].index("reset"):]
            assert text_of(after_reset) == fake.answers[-1] != fake.answers[0]


def test_an_upstream_error_ends_with_failed_and_no_internal_detail() -> None:
    with FakeServer(answer_chars=50) as fake:
        fake.set_faults([Fault.status(401)])
        with relayed(fake.url) as relay:
            events = read_events(relay.follow(relay.start()))
            assert [e.event for e in events] == ["failed"]
            failed = json.loads(events[0].data)
            assert failed == {"error": "AuthenticationError", "message": "The answer could not be completed."}


def test_a_closed_relay_ends_its_readers_and_pumps() -> None:
    with FakeServer(answer_chars=20_000, token_delay=0.01) as slow:
        with relayed(slow.url) as relay:
            response = relay.follow(relay.start())
            got: list[Any] = []
            reader = threading.Thread(target=lambda: got.extend(read_events(response)))
            reader.start()
            wait_until(lambda: established(slow.port) == 1, 5, "the upstream connection")
            relay.relay.close()
            reader.join(5)
            assert not reader.is_alive()
            wait_until(lambda: established(slow.port) == 0, 5, "the upstream socket to close")
            assert not [t for t in threading.enumerate() if t.name.startswith(("holysse-pump", "holysse-relay"))]



def test_a_listener_and_a_stop_on_another_worker_reach_the_pump_through_the_store() -> None:
    with FakeServer(answer_chars=20_000, token_delay=0.01) as slow:
        client = holysse.Client(api_key="hs_" + "k" * 32, base_url=slow.url)
        store = MemoryStore()  # shared, as Redis is between workers
        worker_a, worker_b = (Relay(client, store, poll=0.05, grace=0.3) for _ in range(2))
        try:
            stream_id = worker_a.start(owner="me", model="fake-1", **MESSAGES)
            decoder, texts = SSEDecoder(), 0
            body = iter(worker_b.open(stream_id, owner="me"))  # B's listener keeps A's pump alive
            while texts < 60:  # 60 tokens: twice the grace period
                texts += sum(e.event == "text" for e in decoder.feed(next(body)))
            body.close()
            assert not store.info(stream_id).ended
            worker_b.stop(stream_id, owner="me")  # B has no pump: the store carries it to A
            wait_until(lambda: store.info(stream_id).ended, 5, "the cancellation")
            last = store.read(stream_id, "", 0)[-1]
            assert last.event == "failed" and json.loads(last.data)["error"] == "cancelled"
            wait_until(lambda: established(slow.port) == 0, 5, "the upstream socket to close")
        finally:
            worker_a.close()
            worker_b.close()
            client.close()


def test_owners_are_compared_exactly_whatever_their_characters(fake: FakeServer) -> None:
    client = holysse.Client(api_key="hs_" + "k" * 32, base_url=fake.url)
    with Relay(client, MemoryStore(), poll=0.05) as relay:
        stream_id = relay.start(owner="zoë@example.org", model="fake-1", **MESSAGES)
        assert text_of(_decode(relay.open(stream_id, owner="zoë@example.org"))) == fake.answers[-1]
        for other in ("zoe@example.org", "zoë@example.org ", "", None):
            with pytest.raises(StreamForbidden):
                relay.open(stream_id, owner=other)
    client.close()


def _decode(body: Any) -> list[Any]:
    decoder, events = SSEDecoder(), []
    for chunk in body:
        events += decoder.feed(chunk)
    return events
