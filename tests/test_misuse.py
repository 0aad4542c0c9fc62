"""The caller's mistakes: each is a :class:`UsageError` (also a
:class:`RuntimeError`) whose message says what to do, raised before anything
is sent, and never showing the key."""

from __future__ import annotations

import datetime
import math
import threading
from typing import Any, Callable

import pytest

import holysse
from holysse.testing import FakeServer

from .conftest import CHAT, make_client

KEY = "hs_" + "M1stake" * 5
LOOPBACK = "http://127.0.0.1:9/v1"  # nothing is sent in these cases: the port is never used


def client(**kwargs: Any) -> holysse.Client:
    kwargs.setdefault("base_url", LOOPBACK)
    return holysse.Client(api_key=KEY, **kwargs)


MISTAKES: dict[str, tuple[Callable[[], object], str]] = {
    "CR/LF in a client header": (lambda: client(headers={"X-Tag": "a\r\nX-Injected: 1"}), "pass a one-line str"),
    "NUL in a client header": (lambda: client(headers={"X-Tag": "a\0b"}), "pass a one-line str"),
    "non-str header value": (lambda: client(headers={"X-Tag": 5}), "pass a one-line str"),
    "colon in a header name": (lambda: client(headers={"X-Tag: 1": "v"}), "without spaces or colons"),
    "LF in a per-stream header": (
        lambda: client().stream(extra_headers={"X-Req": "1\nX-Evil: 2"}, **CHAT), "pass a one-line str"),
    "CR in the model name": (lambda: client().stream(model="gpt\r\nX: 1", messages=[]), "one-line string"),
    "LF in the model name": (lambda: client().stream(model="gpt-4.1\n", messages=[]), "one-line string"),
    "non-str model": (lambda: client().stream(model=4, messages=[]), "one-line string"),
    "stream=False": (lambda: client().stream(stream=False, **CHAT), "remove it from the arguments"),
    "a date in the body": (
        lambda: client().stream(metadata={"at": datetime.date(2026, 1, 2)}, **CHAT), "date.isoformat()"),
    "a set in the body": (lambda: client().stream(stop={"END"}, **CHAT), "a set as a list"),
    "NaN temperature": (lambda: client().stream(temperature=math.nan, **CHAT), "finite float"),
    "a lone surrogate in a message": (
        lambda: client().stream(model="m", messages=[{"role": "user", "content": "a\ud800"}]), "lone surrogates"),
    "a key in the base URL's query": (
        lambda: client(base_url="https://gw.example.com/v1?api-version=1&key=s3cret"), "'key'=..."),
    "a token in the base URL's query": (
        lambda: client(base_url="https://gw.example.com/v1?access_token=s3cret"), "pass the key as api_key="),
    "key over plain http": (
        lambda: client(base_url="http://api.example.com/v1"), "allow_insecure_http=True"),
    "key over plain http to a LAN address": (
        lambda: client(base_url="http://10.0.0.7:8000/v1"), "Use https://"),
    "credentials in base_url": (
        lambda: client(base_url="https://user:pw@api.example.com/v1"), "pass the key as api_key="),
    "not an http(s) base_url": (lambda: client(base_url="ftp://api.example.com/v1"), "base_url must be an http(s)"),
    "newline in the key": (
        lambda: holysse.Client(api_key=KEY + "\n", base_url=LOOPBACK), "check how it was copied"),
    "unknown resume strategy": (lambda: client(resume="magic"), "use one of"),
    "unknown on_divergence": (lambda: client(on_divergence="ignore"), "use 'reset' or 'raise'"),
    "negative timeout": (lambda: client(timeout=-1), "positive number of seconds"),
    "zero idle timeout": (lambda: client(timeout=(5, 5, 0)), "positive number of seconds"),
    "bad retry": (lambda: client(retry="often"), "RetryPolicy, an int or a bool"),
    "bad max_line_bytes": (lambda: client(max_line_bytes=0), "positive int"),
    "unknown provider": (lambda: client(provider="acme"), "a ProviderProfile"),
}


@pytest.mark.parametrize("name", list(MISTAKES))
def test_mistake_is_a_usage_error_that_says_what_to_do(name: str) -> None:
    call, advice = MISTAKES[name]
    with pytest.raises(holysse.UsageError) as info:
        call()
    assert isinstance(info.value, RuntimeError)
    assert advice in str(info.value), str(info.value)
    assert KEY not in str(info.value) and KEY not in repr(info.value)
    assert "s3cret" not in str(info.value)  # a credential in the base URL is not shown either


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/v1", "http://localhost:8000/v1", "http://[::1]:8000/v1",
                                 "http://127.5.6.7/v1"])
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    assert client(base_url=url).base_url == url


def test_plain_http_elsewhere_needs_the_explicit_opt_in_or_no_key() -> None:
    assert client(base_url="http://gpu-box.lan:8000/v1", allow_insecure_http=True)
    assert holysse.Client(api_key=None, base_url="http://gpu-box.lan:8000/v1")  # no key to leak


def test_reused_stream(server: FakeServer) -> None:
    stream = make_client(server).stream(**CHAT)
    assert stream.final().text == server.expected_text(CHAT)
    for again in (lambda: iter(stream), lambda: list(stream), lambda: stream.text_stream.__next__()):
        with pytest.raises(holysse.UsageError, match="call client.stream"):
            again()


def test_stream_closed_before_it_was_read(server: FakeServer) -> None:
    stream = make_client(server).stream(**CHAT)
    stream.close()
    with pytest.raises(holysse.UsageError, match=r"closed before it was read; call client.stream\(\) again"):
        list(stream)
    assert server.requests == []


def test_client_used_after_close(server: FakeServer) -> None:
    client = make_client(server)
    waiting = client.stream(**CHAT)  # made before close(), read after
    client.close()
    with pytest.raises(holysse.UsageError, match="create a new one"):
        client.stream(**CHAT)
    with pytest.raises(holysse.UsageError, match="create a new Client"):
        list(waiting)
    assert waiting.done and server.requests == []
    client.close()  # idempotent
    assert client.closed


def test_stream_running_when_the_client_closes_finishes(server: FakeServer) -> None:
    client = make_client(server)
    events = iter(client.stream(**CHAT))
    first = next(events)
    client.close()
    rest = "".join(event.text for event in events)
    assert first.text + rest == server.expected_text(CHAT)


def test_close_from_another_thread_before_iteration(server: FakeServer) -> None:
    stream = make_client(server).stream(**CHAT)
    closer = threading.Thread(target=stream.close)
    closer.start()
    closer.join(5)
    with pytest.raises(holysse.UsageError):
        list(stream)
