"""Hard limits: event and line size, decompression bombs, answer size, the
idle timeout that keep-alives do not reset, and the whole-stream deadline.

Each case is a server of the test's own that would go on forever (bounded by
its own 30 s limit); the client must end it with a clear error, quickly and
with bounded memory.
"""

from __future__ import annotations

import functools
import re
import time
import tracemalloc
import zlib

import pytest

import holysse
from holysse.testing import FakeServer
from holysse.testing.connection import Connection, HTTPRequest

from .conftest import CHAT, Sleeps, make_client
from .scripted import ANSWER, ScriptedServer, chat_events, sse_head

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def client_for(url: str, **kwargs: object) -> holysse.Client:
    kwargs.setdefault("timeout", holysse.Timeout(connect=5, read=5, idle=30))
    kwargs.setdefault("retry", False)
    return holysse.Client(api_key="hs_limits", base_url=url, sleep=Sleeps(), **kwargs)


def endless(piece: bytes, head: bytes = b"", every: float = 0.0005, extra: tuple[tuple[str, str], ...] = ()):  # type: ignore[no-untyped-def]
    """A server sending ``head`` then ``piece`` over and over."""

    def respond(conn: Connection, request: HTTPRequest, index: int) -> None:
        conn.write(sse_head(extra=extra) + head)
        server.write_forever(conn, piece, every)

    server = ScriptedServer(respond)
    return server


# -- sizes ------------------------------------------------------------------------


def test_an_endless_line_fails_at_max_line_bytes() -> None:
    with endless(b"x" * 65536, head=b"data: ") as server:
        started = time.monotonic()
        with pytest.raises(holysse.ProtocolError, match=r"max_line_bytes=262144") as info:
            list(client_for(server.url, max_line_bytes=256 << 10).stream(**BODY))
    assert time.monotonic() - started < 10
    assert "if the server is trusted" in str(info.value) and info.value.partial == ""


def test_an_endless_event_fails_at_max_event_bytes() -> None:
    with endless((b"data: " + b"y" * 100 + b"\n") * 40, head=b": hi\n\n") as server:
        with pytest.raises(holysse.ProtocolError, match=r"max_event_bytes=131072"):
            list(client_for(server.url, max_event_bytes=128 << 10).stream(**BODY))


def test_limits_refuse_nonsense() -> None:
    for bad in (0, -1, 1.5, True, "8"):
        with pytest.raises(holysse.UsageError, match="max_event_bytes must be a positive int"):
            holysse.Client(api_key="hs_x", base_url="http://127.0.0.1:1/v1", max_event_bytes=bad)  # type: ignore[arg-type]
    with pytest.raises(holysse.UsageError, match="max_answer_chars"):
        holysse.Client(api_key="hs_x", base_url="http://127.0.0.1:1/v1", max_answer_chars=0)


def test_answer_longer_than_max_answer_chars_fails_with_the_partial(server: FakeServer, sleeps: Sleeps) -> None:
    stream = make_client(server, sleeps, max_answer_chars=100).stream(**CHAT)
    received = []
    with pytest.raises(holysse.ProtocolError, match="max_answer_chars=100") as info:
        for event in stream:
            received.append(event.text)
    assert info.value.partial == "".join(received) == stream.text
    assert 90 <= len(info.value.partial) <= 100
    assert server.expected_text(CHAT).startswith(info.value.partial)
    assert len(server.requests) == 1 and sleeps == []  # not retried


# -- decompression bombs ----------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def gzip_bomb(megabytes: int, layers: int = 1) -> bytes:
    """``data: `` and then ``megabytes`` MiB of ``x`` on one line, gzipped
    ``layers`` times (about 1 KB per MiB for one layer)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip format (zlib.compress(wbits=) is 3.11+)
    if layers > 1:
        return compressor.compress(gzip_bomb(megabytes, layers - 1)) + compressor.flush()
    block = b"x" * (1 << 20)
    parts = [compressor.compress(b"data: ")] + [compressor.compress(block) for _ in range(megabytes)]
    return b"".join(parts) + compressor.flush()


@pytest.mark.parametrize("layers", [1, 2])
def test_gzip_bomb_fails_early_with_bounded_memory(layers: int) -> None:
    bomb = gzip_bomb(256, layers)
    encoding = ", ".join(["gzip"] * layers)

    def respond(conn: Connection, request: HTTPRequest, index: int) -> None:
        conn.write(sse_head(extra=(("Content-Encoding", encoding),)) + bomb)

    with ScriptedServer(respond) as server:
        client = client_for(server.url, max_event_bytes=1 << 20)
        tracemalloc.start()
        try:
            with pytest.raises(holysse.ProtocolError, match="max_line_bytes=1048576"):
                list(client.stream(**BODY))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert len(bomb) < 300_000  # 256 MiB inflated
    assert peak < 8 << 20, f"peak {peak / 2**20:.1f} MiB while refusing a 256 MiB bomb"


def test_too_many_content_encodings_are_refused() -> None:
    def respond(conn: Connection, request: HTTPRequest, index: int) -> None:
        conn.write(sse_head(extra=(("Content-Encoding", ", ".join(["gzip"] * 6)),)) + gzip_bomb(1, 6))

    with ScriptedServer(respond) as server:
        with pytest.raises(holysse.ProtocolError, match="decode the compressed body"):
            list(client_for(server.url).stream(**BODY))


def test_gzip_stream_within_limits_decodes(server: FakeServer) -> None:
    with FakeServer(answer_chars=400, gzip=True) as srv:
        assert make_client(srv).stream(**CHAT).final().text == srv.expected_text(CHAT)


# -- time: idle timeout and deadline -------------------------------------------------------


def test_pings_forever_end_with_an_idle_timeout() -> None:
    with endless(b": ping\n\n", every=0.02) as server:
        client = client_for(server.url, timeout=holysse.Timeout(connect=5, read=2, idle=0.3))
        started = time.monotonic()
        with pytest.raises(holysse.RetriesExhausted, match="only keep-alive comments or pings") as info:
            list(client.stream(**BODY))  # retry=False: the first cut ends it
        elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 10
    assert isinstance(info.value.__cause__, holysse.ReadTimeout)
    assert "Timeout(idle=...)" in str(info.value.__cause__)


def test_an_event_dripping_one_byte_at_a_time_ends_with_an_idle_timeout() -> None:
    start = chat_events()[1]
    with endless(b"x", head=start[:-3], every=0.02) as server:  # an event that never ends
        client = client_for(server.url, timeout=holysse.Timeout(connect=5, read=2, idle=0.3))
        with pytest.raises(holysse.RetriesExhausted) as info:
            list(client.stream(**BODY))
    assert isinstance(info.value.__cause__, holysse.ReadTimeout)
    assert re.search(r"an unfinished event of \d+ bytes", str(info.value.__cause__))


def test_idle_timeout_is_retried_like_a_stall_and_gives_up() -> None:
    with endless(b": ping\n\n", every=0.02) as server:
        policy = holysse.RetryPolicy(max_attempts=2, backoff_initial=0.01)
        client = client_for(server.url, timeout=(5, 2, 0.2), retry=policy)
        with pytest.raises(holysse.RetriesExhausted) as info:
            list(client.stream(**BODY))
    assert isinstance(info.value.__cause__, holysse.ReadTimeout)
    assert len(server.requests) == 3


def test_idle_counts_gaps_between_events_not_the_whole_stream() -> None:
    """Events every 50 ms for about 1.5 s with idle=0.4: no timeout."""
    events = chat_events()

    def respond(conn: Connection, request: HTTPRequest, index: int) -> None:
        conn.write(sse_head())
        for event in events:
            conn.write(b": keep-alive\n\n" + event)
            if server.closing.wait(0.05):
                return

    with ScriptedServer(respond) as server:
        client = client_for(server.url, timeout=holysse.Timeout(connect=5, read=2, idle=0.4))
        assert client.stream(**BODY).final().text == ANSWER


def test_deadline_ends_a_slow_but_healthy_stream() -> None:
    events = chat_events()

    def respond(conn: Connection, request: HTTPRequest, index: int) -> None:
        conn.write(sse_head())
        for event in events:
            conn.write(event)
            if server.closing.wait(0.1):
                return

    with ScriptedServer(respond) as server:
        client = client_for(server.url, retry=holysse.RetryPolicy(deadline=0.5))
        stream = client.stream(**BODY)
        started = time.monotonic()
        with pytest.raises(holysse.RetriesExhausted, match=r"deadline \(0.5s\) passed") as info:
            list(stream)
        elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 5
    assert info.value.partial and ANSWER.startswith(info.value.partial) and info.value.partial != ANSWER
    assert len(server.requests) == 1


def test_deadline_bounds_a_server_that_only_pings() -> None:
    with endless(b": ping\n\n", every=0.02) as server:
        client = client_for(server.url, retry=holysse.RetryPolicy(deadline=0.4))
        started = time.monotonic()
        with pytest.raises(holysse.RetriesExhausted, match="deadline"):
            list(client.stream(**BODY))
    assert time.monotonic() - started < 5


def test_timeout_values_are_checked() -> None:
    assert holysse.Timeout.from_value((1, 2, 3)) == holysse.Timeout(1, 2, 3)
    assert holysse.Timeout.from_value(None) == holysse.Timeout(None, None, None)
    assert holysse.Timeout.from_value(7).idle == holysse.Timeout().idle == 300.0
    for bad in ({"idle": 0}, {"idle": -1}, {"read": "5"}):
        with pytest.raises(holysse.UsageError, match="must be a positive number of seconds"):
            holysse.Timeout(**bad)  # type: ignore[arg-type]
