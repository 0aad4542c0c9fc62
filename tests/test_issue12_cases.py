"""The nine cases of issue 12, each through ``MemoryTransport`` and through
real sockets (the same script, :mod:`tests.twoways`), where the case lives
above the transport. Cases 3 and 8 live in the socket transport (header
encoding, a response head dripped byte by byte): sockets only.

Each failed on 87ee3e9; ``xfail(strict=True)`` keeps main green until the
resume core fixes it (then the marker goes).
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
import tracemalloc
from typing import Any, Iterator

import pytest

import holysse
from holysse.testing import Reply
from holysse.transport import HTTPRequest

from .scripted import ANSWER, PIECES, ReplyServer
from .twoways import VIAS, Run, assert_contract, chat, done, last_event_id, run, tokens_of

N = len(PIECES)


def case(number: int, what: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=f"issue 12 case {number}: {what}")


def honest(prefix: str, start: int = 0, *, role: bool = True, cid: str = "chatcmpl-1",
           pieces: list[str] = PIECES) -> list[bytes]:
    """Events ``prefix-r`` (the role, when ``start`` is 0), ``prefix-i`` for
    piece ``i`` from ``start``, the finish and ``[DONE]``."""
    events = [chat(role=True, ident=f"{prefix}-r", cid=cid)] if role and start == 0 else []
    events += [chat(p, ident=f"{prefix}-{i}", cid=cid) for i, p in enumerate(pieces) if i >= start]
    return events + done(prefix, cid=cid, number=len(pieces))


def resumed_from(request: HTTPRequest) -> tuple[str, int] | None:
    """(prefix, next piece) for an honoured ``Last-Event-ID``."""
    last = last_event_id(request)
    if last is None:
        return None
    prefix, _, number = last.rpartition("-")
    return prefix, 0 if number == "r" else int(number) + 1


def upto(events: list[bytes], count: int) -> Reply:
    """The first ``count`` events, then a FIN."""
    return Reply(events[:count])


# -- case 1: a replay, then a cursor ---------------------------------------------------------


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("shape", ["restart ignoring the cursor, cut while dropping",
                                   "cursor re-sends a seen id, the replay cut while dropping"])
def test_case1_replay_then_cursor(via: str, shape: str) -> None:
    def server(request: HTTPRequest, number: int) -> Reply:
        if number == 0:
            return upto(honest("A"), 7)  # role, A-0..A-5
        if number == 1 and shape.startswith("restart"):
            return upto(honest("B"), 4)  # ignores Last-Event-ID: role, B-0..B-2
        if number == 1:
            return Reply([chat(PIECES[5], ident="A-5"), *honest("A", 6)])  # A-5 again: caught
        if number == 2 and not shape.startswith("restart"):
            return upto(honest("B"), 4)  # the replay (a new generation, new ids), cut at B-2
        at = resumed_from(request)
        return Reply(honest("A") if at is None else honest(at[0], at[1]))

    result = run(server, via)
    assert_contract(result, ANSWER)


# -- case 2: a restart without a role delta ----------------------------------------------------


@pytest.mark.parametrize("via", VIAS)
def test_case2_restart_without_role(via: str) -> None:
    def server(request: HTTPRequest, number: int) -> Reply:
        if number == 0:
            return upto(honest("a", role=False), 10)
        return Reply(honest(f"b{number}", role=False))  # ignores Last-Event-ID, new ids

    assert_contract(run(server, via), ANSWER)


# -- case 3: a non-Latin-1 event id, a non-Latin-1 key (sockets) ---------------------------------


def utf8_ids(request: HTTPRequest, number: int) -> Reply:
    events = honest("日本")
    if number == 0:
        return upto(events, 6)
    at = resumed_from(request)  # the prefix may arrive mis-decoded; the number tells
    return Reply(events if at is None else honest("日本", at[1]))


def test_case3_non_latin1_event_id() -> None:
    result = run(utf8_ids, "socket")
    assert_contract(result, ANSWER)


def test_case3_non_latin1_api_key() -> None:
    try:
        result = run(lambda request, number: Reply(honest("k")), "socket", api_key="hs_ключ")
    except holysse.UsageError:
        return  # refused clearly when the client is made
    assert_contract(result, ANSWER)


# -- case 4: memory ---------------------------------------------------------------------------


def retained_while_streaming(via: str, body: Iterator[bytes], **kwargs: Any) -> tuple[int, Run]:
    """Bytes still allocated (tracemalloc) when the finish arrives, over what
    was allocated before the stream started."""
    peak: list[int] = []
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]

        def measure(event: holysse.Event) -> None:
            if isinstance(event, holysse.Finished):
                peak.append(tracemalloc.get_traced_memory()[0] - base)

        chat_body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "on_event": measure}
        result = run(lambda request, number: Reply(body), via, body=chat_body, keep_events=False, **kwargs)
    finally:
        tracemalloc.stop()
    assert peak, result.error
    return peak[0], result


@pytest.mark.parametrize("via", VIAS)
def test_case4_huge_ids_are_not_all_kept(via: str) -> None:
    count, size = 150, 64 << 10
    pieces = tokens_of(ANSWER, 1) + ["."] * (count - len(ANSWER))
    body = (chat(p, ident=f"{i:0{size}d}") for i, p in enumerate(pieces))
    retained, result = retained_while_streaming(via, itertools.chain(body, done()))
    assert result.error is None and result.stream.text == ANSWER + "." * (count - len(ANSWER))
    assert retained < 2 << 20, f"{retained} bytes retained for {count} ids of {size} bytes"


@pytest.mark.parametrize("via", VIAS)
def test_case4_one_character_events_retain_at_most_twice_their_text(via: str) -> None:
    """What one more one-character event costs: the retention of 20,000
    events over that of 10,000 (fixed costs, imports and socket buffers of
    the first stream, cancel out)."""
    def retained(count: int) -> int:
        """Bytes still allocated once the stream ended (the Stream alive), over
        what was allocated before it, without the consumer's own copy of the
        text (measured at the end: the events of the read in progress are a
        working set bounded by the read size, not retention)."""
        events = [chat("x")] * 100  # a hundred events per read: the socket's pace, not the point here
        body = itertools.chain([chat(role=True)], (b"".join(events) for _ in range(count // 100)), done())
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            result = run(lambda request, number: Reply(body), via, keep_events=False)
            size = tracemalloc.get_traced_memory()[0] - base - sys.getsizeof(result.received)
        finally:
            tracemalloc.stop()
        assert result.error is None and len(result.stream.text) == count
        return size

    retained(2_000)  # warm up: imports, pools
    small, large = retained(10_000), retained(20_000)
    assert large - small <= 2 * 10_000, f"{(large - small) / 10_000:.1f} bytes retained per one-character event"


@pytest.mark.parametrize("via", VIAS)
def test_case4_name_only_tool_deltas_are_charged(via: str) -> None:
    body = itertools.chain([chat(role=True)], (chat(tool=(i, "lookup_the_weather")) for i in range(5_000)), done())
    result = run(lambda request, number: Reply(body), via, max_answer_chars=20_000)
    assert isinstance(result.error, holysse.ProtocolError), result.error


# -- case 5: endless non-progress ------------------------------------------------------------

CAP = 1.2  # seconds a non-progress body lasts before it ends (FIN): the test's own bound


def endless(kind: str) -> Iterator[bytes]:
    yield chat(role=True)
    yield from (chat(p) for p in PIECES[:3])
    if kind == "finish":
        yield chat(finish="stop")
    stop = time.monotonic() + CAP
    for number in itertools.count():
        if time.monotonic() > stop:
            return
        if kind == "usage":
            yield chat(usage=True)
        elif kind == "finish":
            yield chat(finish="stop")
        else:
            yield chat(tool=(number, "f"))


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("kind", ["usage", "finish", "tool names"])
def test_case5_endless_non_progress_ends_within_idle(via: str, kind: str) -> None:
    started = time.monotonic()
    bodies = iter([endless(kind)])

    def server(request: HTTPRequest, number: int) -> Reply:
        return Reply(next(bodies)) if number == 0 else Reply.with_status(400, b'{"error": {"message": "no more"}}')

    result = run(server, via, timeout=holysse.Timeout(connect=5, read=2, idle=0.15))
    assert isinstance(result.error, holysse.ProtocolError), result.error
    assert time.monotonic() - started < CAP


# -- case 6: Responses background, cut before the first delta --------------------------------


def responses_events(rid: str, start: int = 0) -> list[bytes]:
    def ev(kind: str, seq: int, **fields: Any) -> bytes:
        import json

        return f"event: {kind}\ndata: {json.dumps({'type': kind, 'sequence_number': seq, **fields})}\n\n".encode()

    response = {"id": rid, "object": "response", "status": "in_progress", "background": True, "output": []}
    items = [ev("response.created", 0, response=response), ev("response.in_progress", 1, response=response)]
    items += [ev("response.output_text.delta", 2 + i, item_id="msg_1", output_index=0, content_index=0, delta=p)
              for i, p in enumerate(PIECES)]
    final = {**response, "status": "completed"}
    items.append(ev("response.completed", 2 + N, response=final))
    return items[start:]


@pytest.mark.parametrize("via", VIAS)
def test_case6_background_response_is_read_again_not_created_again(via: str) -> None:
    def server(request: HTTPRequest, number: int) -> Reply:
        if number == 0:
            return Reply(responses_events("resp_1")[:2])
        if request.method == "GET" and "/responses/resp_1" in request.url:
            after = int(request.url.rpartition("starting_after=")[2])
            return Reply(responses_events("resp_1", after + 1))
        return Reply(responses_events(f"resp_{number + 1}"))  # a second billed generation

    result = run(server, via, dialect="openai-responses", body={"model": "m", "input": "hi", "background": True})
    assert_contract(result, ANSWER)
    assert [r.method for r in result.requests] == ["POST", "GET"]
    assert "starting_after=1" in result.requests[1].url


# -- case 7: follow() after a non-holysse error ---------------------------------------------------


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_case7_follow_and_final_after_a_foreign_error(via: str, error: type[BaseException]) -> None:
    seen: list[str] = []

    def on_text(text: str) -> None:
        seen.append(text)
        if len(seen) == 3:
            raise error("the consumer's callback failed")

    followed: list[object] = []
    holder: dict[str, holysse.Stream] = {}

    def follower() -> None:
        try:
            followed.extend(holder["stream"].accumulator.follow(timeout=5))
            followed.append("ended normally")
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            followed.append(exc)

    def server(request: HTTPRequest, number: int) -> Reply:
        return Reply(honest("f"))

    with (ReplyServer(server) if via == "socket" else _nothing()) as srv:
        from holysse.testing import MemoryTransport

        transport = MemoryTransport(server) if srv is None else None
        client = holysse.Client(api_key="hs_f", base_url="https://llm.test/v1" if srv is None else srv.url,
                                transport=transport, sleep=lambda s: None)
        stream = holder["stream"] = client.stream(model="m", messages=[], on_text=on_text)
        thread = threading.Thread(target=follower)
        thread.start()
        with pytest.raises(error):
            list(stream)
        thread.join(5)
        assert not thread.is_alive()
    assert isinstance(followed[-1], holysse.HolySSEError), followed[-1]
    with pytest.raises(holysse.HolySSEError):
        stream.final()


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


# -- case 8: a slow response head (sockets) -------------------------------------------------------


def test_case8_slow_head_is_bounded_by_the_deadline() -> None:
    from .scripted import ScriptedServer, sse_head

    def respond(conn: Any, request: Any, index: int) -> None:
        for byte in sse_head(extra=(("X-Padding", "p" * 40),)):
            conn.write(bytes([byte]))
            if server.closing.wait(0.02):
                return
        conn.write(b"".join(honest("s")))

    with ScriptedServer(respond) as server:
        client = holysse.Client(api_key="hs_s", base_url=server.url, sleep=lambda s: None,
                                timeout=holysse.Timeout(connect=5, read=0.3),
                                retry=holysse.RetryPolicy(max_attempts=3, deadline=0.5))
        started = time.monotonic()
        with pytest.raises(holysse.HolySSEError) as info:
            list(client.stream(model="m", messages=[]))
        elapsed = time.monotonic() - started
    assert elapsed < 1.5, f"{elapsed:.1f}s for a deadline of 0.5s"
    assert info.value.partial == ""


# -- case 9: an ignored prefill answered by a similar new turn -------------------------------------

OTHER = ANSWER[:40] + "but then this new turn goes its own way, as a fresh answer would."


@pytest.mark.parametrize("via", VIAS)
def test_case9_ignored_prefill_with_a_similar_new_turn(via: str) -> None:
    def server(request: HTTPRequest, number: int) -> Reply:
        body = request.json or {}
        if body.get("continue_final_message"):
            return Reply(honest_plain(OTHER))  # ignores the prefill: a new turn
        events = honest_plain(ANSWER)
        return upto(events, 16) if number == 0 else Reply(events)

    result = run(server, via, provider="llama.cpp")
    assert any(r.json and r.json.get("continue_final_message") for r in result.requests)
    assert_contract(result, ANSWER, finished=(OTHER,))


def honest_plain(text: str) -> list[bytes]:
    """A chat answer without SSE ids (as llama.cpp sends it)."""
    return [chat(role=True), *(chat(p) for p in tokens_of(text)), *done()]
