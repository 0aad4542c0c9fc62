"""Streams over TLS, as every real gateway serves them: a test proxy on
127.0.0.1 terminates TLS with a self-signed certificate (``tests/data``,
CN and SAN 127.0.0.1, valid to 2126) in front of the fake server.

A cut over TLS is a TCP FIN with no TLS ``close_notify`` (or an RST), which
the ssl layer reports differently from a plain socket; a certificate the
client does not trust is an error no retry can cure.
"""

from __future__ import annotations

import pathlib
import ssl
from typing import Iterator

import pytest
import requests

import holysse
from holysse.testing import FakeServer, Fault

from .conftest import CHAT, Sleeps, close_while_blocked
from .proxy import CuttingProxy

DATA = pathlib.Path(__file__).resolve().parent / "data"
CERT, KEY = DATA / "selfsigned.pem", DATA / "selfsigned.key"


@pytest.fixture(scope="module")
def tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(CERT, KEY)
    return context


@pytest.fixture
def trusting_session() -> Iterator[requests.Session]:
    session = requests.Session()
    session.verify = str(CERT)
    yield session
    session.close()


@pytest.mark.parametrize("kind", ["fin", "rst"])
def test_a_tls_stream_cut_mid_answer_resumes_exactly(
    server: FakeServer, sleeps: Sleeps, tls_context: ssl.SSLContext, trusting_session: requests.Session, kind: str
) -> None:
    offsets = server.event_offsets(CHAT)
    plan = [(kind, offsets[10] + 3), (kind, offsets[30] - 2)]  # wire offsets: inside an event, twice
    with CuttingProxy(("127.0.0.1", server.port), plan, tls=tls_context) as proxy:
        client = holysse.Client(api_key="hs_" + "t" * 32, base_url=proxy.url, session=trusting_session,
                                sleep=sleeps, retry=holysse.RetryPolicy(max_attempts=4, backoff_initial=0.01))
        stream = client.stream(**CHAT)
        text = "".join(event.text for event in stream)
        assert proxy.url.startswith("https://") and proxy.outcomes[:2] == [f"{kind}@{at}" for _, at in plan]
    assert text == stream.text == server.expected_text(CHAT)
    assert stream.metrics.total_reconnects == 2
    if kind == "fin":  # an RST may discard what the client had not read yet: then it starts over
        assert stream.metrics.reconnects == {"cursor": 2}
    assert all(r.header("Authorization") == "Bearer hs_" + "t" * 32 for r in server.requests)


def test_an_untrusted_certificate_fails_at_once_and_says_what_to_do(
    server: FakeServer, sleeps: Sleeps, tls_context: ssl.SSLContext
) -> None:
    with CuttingProxy(("127.0.0.1", server.port), tls=tls_context) as proxy:
        client = holysse.Client(api_key="hs_" + "t" * 32, base_url=proxy.url, sleep=sleeps)
        with pytest.raises(holysse.ConnectError) as info:
            list(client.stream(**CHAT))
    # after the proxy closed (it joins its threads): the count is final
    assert proxy.refused_handshakes == 1 and not sleeps and not server.requests  # no retry: it cannot help
    assert info.value.retryable is False
    message = str(info.value)
    assert "certificate" in message and "REQUESTS_CA_BUNDLE" in message and "t" * 32 not in message


def test_close_from_another_thread_ends_a_blocked_tls_read(
    server: FakeServer, tls_context: ssl.SSLContext, trusting_session: requests.Session
) -> None:
    server.set_faults([Fault.stall(server.event_offsets(CHAT)[5])])
    with CuttingProxy(("127.0.0.1", server.port), tls=tls_context) as proxy:
        client = holysse.Client(api_key="hs_" + "t" * 32, base_url=proxy.url, session=trusting_session,
                                timeout=holysse.Timeout(connect=2, read=30))
        raised = close_while_blocked(client.stream(**CHAT))
    assert isinstance(raised, holysse.StreamClosed) and raised.partial != ""
