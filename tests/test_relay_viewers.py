"""One relayed stream, many readers, over real sockets: two browsers (the
owner and a signed read link) each get every event once from their own
position; a Python reader follows by id and continues after its own
restart; an explicit stop cancels the upstream and keeps the partial, a
mere disconnect does not cancel before ``grace``; a finished answer is
replayed whole while it lives."""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any, Iterator

import pytest
import requests

import holysse
from holysse.exceptions import RelayError, StreamForbidden
from holysse.relay import MemoryStore, Relay, RelayApp
from holysse.testing import FakeServer

from .relay_support import established, read_events, serve_wsgi, text_of, wait_until

MESSAGES = {"messages": [{"role": "user", "content": "Tell me about viewers."}]}
SECRET = "s" * 32


@contextlib.contextmanager
def served(fake: FakeServer, **options: Any) -> Iterator[tuple[str, Relay]]:
    client = holysse.Client(api_key="hs_" + "k" * 32, base_url=fake.url, timeout=(2, 2))
    options.setdefault("poll", 0.05)
    relay = Relay(client, MemoryStore(), secret=SECRET, **options)
    try:
        with serve_wsgi(RelayApp(relay, model="fake-1", seed=3)) as base:
            yield base, relay
    finally:
        relay.close()
        client.close()


def start(base: str, browser: requests.Session) -> str:
    reply = browser.post(base + "/streams", json=MESSAGES, timeout=5)
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


def test_the_owner_and_a_read_link_follow_one_stream_each_from_its_own_position() -> None:
    with FakeServer(answer_chars=3000, token_delay=0.002) as fake, served(fake) as (base, relay):
        owner = requests.Session()
        stream_id = start(base, owner)
        url = f"{base}/streams/{stream_id}"
        head = read_events(owner.get(url, stream=True, timeout=5), stop_after=10)
        # A second browser without the owner's cookie is refused; with a signed link it may read.
        assert requests.get(url, timeout=5).status_code == 403
        token = relay.link(stream_id, expires_in=60)
        viewer: list[Any] = []
        watching = threading.Thread(target=lambda: viewer.extend(
            read_events(requests.get(url, params={"token": token}, stream=True, timeout=5))))
        watching.start()
        rest = read_events(owner.get(url, headers={"Last-Event-ID": head[-1].id}, stream=True, timeout=5))
        watching.join(10)
        assert not watching.is_alive()
        mine = head + rest
        for events in (mine, viewer):
            ids = [int(e.id) for e in events]
            assert ids == list(range(1, len(ids) + 1)), "every event exactly once, in order"
            assert text_of(events) == fake.answers[-1] and events[-1].event == "finish"
        assert len(fake.requests) == 1  # one generation for every viewer
        # A link cannot stop the stream, nor read another one; a forged or expired one reads nothing.
        assert requests.delete(url, params={"token": token}, timeout=5).status_code == 403
        other = start(base, owner)
        for bad in (relay.link(other), token[:-2] + "xy", relay.link(stream_id, expires_in=-5), "12.ab", "junk"):
            response = requests.get(url, params={"token": bad}, timeout=5)
            assert response.status_code == 403 and "link" in response.json()["message"]


def test_a_relay_without_a_secret_mints_and_accepts_no_link(fake: FakeServer) -> None:
    client = holysse.Client(api_key="hs_" + "k" * 32, base_url=fake.url)
    with Relay(client, MemoryStore(), poll=0.05) as relay:
        stream_id = relay.start(owner="me", model="fake-1", **MESSAGES)
        with pytest.raises(holysse.UsageError, match="secret="):
            relay.link(stream_id)
        signed = Relay(client, relay.store, secret=SECRET).link(stream_id)
        with pytest.raises(StreamForbidden, match="no secret"):
            relay.open(stream_id, owner="you", token=signed)
    client.close()


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with FakeServer(answer_chars=600, token_delay=0.002) as server:
        yield server


def test_a_python_reader_follows_by_id_and_continues_after_its_restart() -> None:
    with FakeServer(answer_chars=3000, token_delay=0.002) as fake, served(fake) as (base, relay):
        browser = requests.Session()
        stream_id = start(base, browser)
        owner = browser.cookies["holysse_owner"]
        first = relay.follow(stream_id, owner=owner)
        got: list[holysse.Event] = []
        for event in first:
            got.append(event)
            if len(got) == 25:
                break  # the script stops (a restart); it kept first.last_id
        saved = first.last_id
        again = relay.follow(stream_id, owner=owner, after=saved)
        got += list(again)
        assert "".join(e.text for e in got) == fake.answers[-1]
        assert {type(e) for e in got} <= {holysse.TextDelta, holysse.Usage, holysse.Finished}
        assert isinstance(got[-1], holysse.Finished) and again.finish_reason == "stop"
        assert again.text == fake.answers[-1][len("".join(e.text for e in got[:25])):]
        with pytest.raises(StreamForbidden):
            relay.follow(stream_id, owner="someone else")
        # Every event is still there for a reader that starts after the end.
        assert "".join(e.text for e in relay.follow(stream_id, owner=owner)) == fake.answers[-1]
        with pytest.raises(holysse.UsageError):
            list(again)


def test_a_python_reader_of_a_stopped_stream_gets_the_partial_in_the_error() -> None:
    with FakeServer(answer_chars=20_000, token_delay=0.01) as slow, served(slow) as (_, relay):
        stream_id = relay.start(owner="me", model="fake-1", **MESSAGES)
        reader = relay.follow(stream_id, owner="me")
        text = ""
        with pytest.raises(RelayError) as info:
            for event in reader:
                text += event.text
                if len(text) > 50:
                    relay.stop(stream_id, owner="me")
        assert "cancelled" in str(info.value) and info.value.partial == text
        assert 50 < len(text) < len(slow.answers[-1])


def test_a_disconnect_does_not_cancel_before_grace_but_a_stop_does_and_keeps_the_partial() -> None:
    with FakeServer(answer_chars=20_000, token_delay=0.01) as slow, served(slow, grace=1.0) as (base, relay):
        browser = requests.Session()
        stream_id = start(base, browser)
        url = f"{base}/streams/{stream_id}"
        head = read_events(browser.get(url, stream=True, timeout=5), stop_after=5)  # then the tab closes
        # Nobody listens now; within the grace period the upstream keeps streaming.
        seen = len(relay.store.read(stream_id, "", 0))
        wait_until(lambda: len(relay.store.read(stream_id, "", 0)) > seen + 30, 5, "more events without a listener")
        assert not relay.store.info(stream_id).ended and established(slow.port) == 1
        # Back within grace: everything after the last event, then the stop.
        back = read_events(browser.get(url, headers={"Last-Event-ID": head[-1].id}, stream=True, timeout=5),
                           stop_after=20)
        assert browser.delete(url, timeout=5).status_code == 204
        wait_until(lambda: established(slow.port) == 0, 5, "the upstream socket to close")
        rest = read_events(browser.get(url, headers={"Last-Event-ID": back[-1].id}, stream=True, timeout=5))
        assert rest[-1].event == "failed" and json.loads(rest[-1].data)["error"] == "cancelled"
        partial = text_of(head + back + rest)
        assert 0 < len(partial) < len(slow.answers[-1]) and slow.answers[-1].startswith(partial)
        # The stopped answer stays readable, whole, for a latecomer.
        assert text_of(read_events(browser.get(url, stream=True, timeout=5))) == partial


def test_a_finished_answer_is_replayed_whole_until_its_ttl() -> None:
    class Clock:
        now = 1000.0

        def __call__(self) -> float:
            return self.now

    clock = Clock()
    with FakeServer(answer_chars=400) as fake:
        client = holysse.Client(api_key="hs_" + "k" * 32, base_url=fake.url)
        store = MemoryStore(ttl=60, clock=clock)
        with Relay(client, store, poll=0.05) as relay, serve_wsgi(RelayApp(relay, model="fake-1")) as base:
            browser = requests.Session()
            stream_id = start(base, browser)
            url = f"{base}/streams/{stream_id}"
            first = read_events(browser.get(url, stream=True, timeout=5))
            assert text_of(first) == fake.answers[-1] and first[-1].event == "finish"
            clock.now += 59  # the end is replayable after the end, from the start or any id
            assert read_events(browser.get(url, stream=True, timeout=5)) == first
            assert read_events(browser.get(url, headers={"Last-Event-ID": first[3].id}, stream=True,
                                           timeout=5)) == first[4:]
            assert browser.get(url, headers={"Last-Event-ID": first[-1].id}, timeout=5).status_code == 204
            clock.now += 2
            assert browser.get(url, timeout=5).status_code == 404
        client.close()
