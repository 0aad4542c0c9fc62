"""The client against a real fake server on 127.0.0.1, faults at the socket."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

import holysse
from holysse import (
    Finished,
    Reconnecting,
    Reset,
    Resumed,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from holysse.testing import FakeServer, Fault

from .conftest import CHAT, Sleeps, close_while_blocked, make_client


def collect(stream: holysse.Stream) -> tuple[str, list[Any]]:
    events = list(stream)
    return "".join(e.text for e in events), events


def test_plain_stream_yields_the_answer_usage_and_finish(server: FakeServer) -> None:
    client = make_client(server)
    with client.stream(**CHAT) as stream:
        text, events = collect(stream)
    assert text == server.expected_text(CHAT) == stream.text
    assert stream.finish_reason == "stop"
    assert isinstance(stream.usage, Usage) and stream.usage.output_tokens
    assert any(isinstance(e, Finished) for e in events)
    assert not any(isinstance(e, (Reconnecting, Resumed, Reset)) for e in events)
    assert stream.metrics.ttft is not None and stream.metrics.ttfb is not None
    body = server.requests[-1].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert server.requests[-1].header("Authorization") == "Bearer hs_" + "k" * 32


def refusing_stream_options(status: int, then: list[Fault | None]) -> Any:
    """A fault plan: a server that predates ``stream_options`` (it answers
    ``status`` to any request carrying it); the others get ``then`` in turn."""
    refusal = Fault.status(status, body={"error": {
        "message": "Unrecognized request argument supplied: stream_options", "type": "invalid_request_error"}})
    later = iter(then)

    def plan(request: Any) -> Fault | None:
        return refusal if "stream_options" in request.body else next(later, None)
    return plan


@pytest.mark.parametrize("status", [400, 422])
def test_a_refused_stream_options_is_left_out_for_this_and_every_resume(
    server: FakeServer, sleeps: Sleeps, status: int
) -> None:
    offsets = server.event_offsets(CHAT)
    server.set_faults(refusing_stream_options(status, [Fault.rst(offsets[len(offsets) // 2] + 3)]))
    client = make_client(server, sleeps, resume="prefill", provider="vllm")
    stream = client.stream(**CHAT)
    text, events = collect(stream)
    assert text == stream.text == server.expected_text(CHAT)
    assert ["stream_options" in r.body for r in server.requests] == [True, False, False]
    assert server.requests[-1].body["messages"][-1]["role"] == "assistant"  # the prefill resume
    assert [type(e) for e in events].count(Reconnecting) == 1  # the refusal is no reconnect
    assert stream.usage is None and stream.finish_reason == "stop"


def test_stream_options_the_user_set_are_never_dropped(server: FakeServer, sleeps: Sleeps) -> None:
    server.set_faults(refusing_stream_options(400, []))
    client = make_client(server, sleeps)
    with pytest.raises(holysse.HTTPStatusError, match="stream_options") as info:
        list(client.stream(**CHAT, stream_options={"include_usage": True}))
    assert info.value.status_code == 400 and len(server.requests) == 1 and not sleeps


def test_stream_options_none_sends_none(server: FakeServer) -> None:
    client = make_client(server)
    with client.stream(**CHAT, stream_options=None) as stream:
        text, _ = collect(stream)
    assert text == server.expected_text(CHAT) and "stream_options" not in server.requests[-1].body
    assert stream.usage is None


@pytest.mark.parametrize("kind", ["fin", "rst", "stall"])
@pytest.mark.parametrize("strategy", ["cursor", "prefill", "replay"])
def test_cut_mid_answer_resumes_without_gap_or_duplicate(
    server: FakeServer, sleeps: Sleeps, kind: str, strategy: str
) -> None:
    offsets = server.event_offsets(CHAT)
    at = offsets[len(offsets) // 3] + 5  # inside an event
    server.set_faults([getattr(Fault, kind)(at)])
    client = make_client(server, sleeps, resume=strategy, provider="vllm", timeout=(2, 0.2))
    stream = client.stream(**CHAT)
    text, events = collect(stream)
    assert text == stream.text == server.expected_text(CHAT)
    reconnecting = [e for e in events if isinstance(e, Reconnecting)]
    resumed = [e for e in events if isinstance(e, Resumed)]
    assert len(reconnecting) == 1 and len(resumed) == 1
    assert resumed[0].strategy == strategy
    assert stream.metrics.reconnects == {strategy: 1}
    second = server.requests[-1]
    if strategy == "cursor":
        assert second.header("Last-Event-ID")
        assert stream.metrics.wasted_output_tokens == 0
    elif strategy == "prefill":
        last = second.body["messages"][-1]
        assert last["role"] == "assistant" and text.startswith(last["content"]) and last["content"]
        assert second.body["continue_final_message"] is True
    else:
        assert second.body == server.requests[0].body
        assert stream.metrics.wasted_output_tokens > 0


def test_prefix_flavour_marks_the_assistant_message(server: FakeServer, sleeps: Sleeps) -> None:
    server.set_faults([Fault.fin(server.event_offsets(CHAT)[40] + 3)])
    client = make_client(server, sleeps, resume="prefill", provider="deepseek")
    assert client.stream(**CHAT).final().text == server.expected_text(CHAT)
    last = server.requests[-1].body["messages"][-1]
    assert last["prefix"] is True and "continue_final_message" not in server.requests[-1].body


def test_auto_prefers_cursor_when_ids_are_sent_and_replay_when_not(sleeps: Sleeps) -> None:
    for ids, expected in ((True, "cursor"), (False, "replay")):
        with FakeServer(answer_chars=400, ids=ids) as srv:
            srv.set_faults([Fault.rst(srv.event_offsets(CHAT)[30] + 1)])
            stream = make_client(srv, sleeps).stream(**CHAT)
            assert stream.final().text == srv.expected_text(CHAT)
            assert stream.metrics.reconnects == {expected: 1}


def test_server_ignoring_last_event_id_is_treated_as_replay(server: FakeServer, sleeps: Sleeps) -> None:
    server.set_faults([Fault.fin(server.event_offsets(CHAT)[25] + 2), Fault.drop_ids()])
    stream = make_client(server, sleeps, resume="cursor").stream(**CHAT)
    assert stream.final().text == server.expected_text(CHAT)
    assert stream.metrics.wasted_output_tokens > 0


def test_malformed_json_event_is_a_cut_and_resumes(server: FakeServer, sleeps: Sleeps) -> None:
    server.set_faults([Fault.malformed_json(20)])
    stream = make_client(server, sleeps).stream(**CHAT)
    assert stream.final().text == server.expected_text(CHAT)
    assert stream.metrics.total_reconnects == 1


def test_retryable_in_stream_error_resumes(server: FakeServer, sleeps: Sleeps) -> None:
    server.set_faults([Fault.error_event(15, error_type="server_error", retryable=True)])
    stream = make_client(server, sleeps).stream(**CHAT)
    assert stream.final().text == server.expected_text(CHAT)


def test_fatal_in_stream_error_raises_with_partial(server: FakeServer, sleeps: Sleeps) -> None:
    server.set_faults([Fault.error_event(15, error_type="invalid_request_error", message="nope", retryable=False)])
    stream = make_client(server, sleeps).stream(**CHAT)
    received = []
    with pytest.raises(holysse.ProviderError) as info:
        for event in stream:
            received.append(event.text)
    assert "nope" in str(info.value)
    assert info.value.partial == "".join(received) == stream.text != ""
    assert len(server.requests) == 1


def test_429_waits_at_least_retry_after(server: FakeServer, sleeps: Sleeps) -> None:
    server.set_faults([Fault.status(429, retry_after=3)])
    stream = make_client(server, sleeps).stream(**CHAT)
    events = list(stream)
    assert stream.text == server.expected_text(CHAT)
    assert sleeps == [pytest.approx(3.0)] or sleeps[0] >= 3.0
    assert [e.strategy for e in events if isinstance(e, Resumed)] == ["retry"]


def test_retry_after_ms_and_5xx_are_retried(server: FakeServer, sleeps: Sleeps) -> None:
    server.set_faults([Fault.status(503, retry_after_ms=1500), Fault.status(500), Fault.headers_stall()])
    stream = make_client(server, sleeps, timeout=(2, 0.2)).stream(**CHAT)
    assert stream.final().text == server.expected_text(CHAT)
    assert sleeps[0] >= 1.5 and len(sleeps) == 3


@pytest.mark.parametrize("status", [400, 404, 422])
def test_client_errors_fail_at_once(server: FakeServer, sleeps: Sleeps, status: int) -> None:
    server.set_faults([Fault.status(status)])
    with pytest.raises(holysse.HTTPStatusError) as info:
        list(make_client(server, sleeps).stream(**CHAT))
    assert info.value.status_code == status and not info.value.retryable
    assert len(server.requests) == 1 and sleeps == []


def test_401_names_the_env_var_and_never_the_key(sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    secret = "hs_" + "S3cr3t" * 6
    caplog.set_level(logging.DEBUG)
    with FakeServer(api_key="hs_" + "other" * 7) as srv:
        monkeypatch.setenv("HOLYSHEEP_API_KEY", secret)
        client = holysse.Client(base_url=srv.url, sleep=sleeps)
        with pytest.raises(holysse.AuthenticationError) as info:
            list(client.stream(**CHAT))
        assert "HOLYSHEEP_API_KEY" in str(info.value) and "was refused" in str(info.value)
        monkeypatch.delenv("HOLYSHEEP_API_KEY")
        with pytest.raises(holysse.AuthenticationError) as missing:
            list(holysse.Client(base_url=srv.url, sleep=sleeps).stream(**CHAT))
        assert "no API key was sent" in str(missing.value) and "HOLYSHEEP_API_KEY" in str(missing.value)
    everything = [repr(client), str(info.value), repr(info.value), repr(info.value.__dict__),
                  *(r.getMessage() for r in caplog.records), repr(client.endpoint)]
    assert all(secret not in text for text in everything)
    assert len(caplog.records) > 0


def test_wrong_content_type_is_reported_not_parsed(server: FakeServer) -> None:
    server.set_faults([Fault.content_type("text/html", body=b"<html><body>Login</body></html>")])
    with pytest.raises(holysse.ProtocolError) as info:
        list(make_client(server).stream(**CHAT))
    assert "text/html" in str(info.value) and "text/event-stream" in str(info.value)


def test_json_error_with_200_is_reported(server: FakeServer) -> None:
    body = b'{"error": {"message": "model not found", "type": "invalid_request_error"}}'
    server.set_faults([Fault.content_type("application/json", body=body)])
    with pytest.raises(holysse.ProtocolError, match="model not found"):
        list(make_client(server).stream(**CHAT))


def test_resume_none_raises_with_the_partial(server: FakeServer, sleeps: Sleeps) -> None:
    server.set_faults([Fault.fin(server.event_offsets(CHAT)[30] + 4)])
    stream = make_client(server, sleeps, resume="none").stream(**CHAT)
    received = []
    with pytest.raises(holysse.StreamInterrupted) as info:
        for event in stream:
            received.append(event.text)
    assert info.value.partial == "".join(received) == stream.text
    assert server.expected_text(CHAT).startswith(info.value.partial) and info.value.partial


def test_retries_exhausted_carries_history_and_partial(server: FakeServer, sleeps: Sleeps) -> None:
    cut = server.event_offsets(CHAT)[10] + 1
    server.set_faults([Fault.fin(cut)] + [Fault.status(503)] * 10)
    client = make_client(server, sleeps, retry=holysse.RetryPolicy(max_attempts=3, backoff_initial=0.01))
    with pytest.raises(holysse.RetriesExhausted) as info:
        list(client.stream(**CHAT))
    assert len(info.value.attempts) == 3 and len(sleeps) == 3
    assert isinstance(info.value.__cause__, holysse.HTTPStatusError)
    assert info.value.partial and server.expected_text(CHAT).startswith(info.value.partial)


def test_divergent_replay_yields_reset_never_mixed_text(sleeps: Sleeps) -> None:
    body = {"model": "fake-1", "messages": [{"role": "user", "content": "Be creative."}], "temperature": 1.0}
    with FakeServer(answer_chars=500, ids=False) as srv:
        srv.set_faults([Fault.fin(4000)])
        stream = make_client(srv, sleeps, resume="replay").stream(**body)
        shown = ""
        resets = []
        for event in stream:
            if isinstance(event, Reset):
                assert event.delivered == shown
                resets.append(event)
                shown = ""
            shown += event.text
        assert len(resets) == 1
        assert shown == stream.text == srv.answers[-1] != srv.answers[0]


def test_divergent_replay_can_raise(sleeps: Sleeps) -> None:
    body = {"model": "fake-1", "messages": [{"role": "user", "content": "Be creative."}], "temperature": 1.0}
    with FakeServer(answer_chars=500, ids=False) as srv:
        srv.set_faults([Fault.fin(4000)])
        stream = make_client(srv, sleeps, resume="replay", on_divergence="raise").stream(**body)
        with pytest.raises(holysse.StreamDiverged) as info:
            list(stream)
        assert info.value.partial and srv.answers[0].startswith(info.value.partial)


def test_tool_calls_survive_a_cut(sleeps: Sleeps) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    body = dict(CHAT, tools=tools)
    for strategy in ("cursor", "replay"):
        with FakeServer(answer_chars=300) as srv:
            offsets = srv.event_offsets(body)
            srv.set_faults([Fault.fin(offsets[-6] + 2)])
            stream = make_client(srv, sleeps, resume=strategy).stream(**body)
            deltas = [e for e in stream if isinstance(e, ToolCallDelta)]
            calls = stream.tool_calls
            assert calls and calls[0].name == "lookup"
            assert calls[0].arguments == srv.model.tool_arguments("Tell me about streams.", 3)
            assert sum(1 for d in deltas if d.name) == len(calls)  # each call announced once
            assert stream.finish_reason == "tool_calls"


def test_close_from_another_thread_ends_a_blocked_read(server: FakeServer) -> None:
    server.set_faults([Fault.stall(server.event_offsets(CHAT)[5])])
    stream = make_client(server, timeout=(2, 30)).stream(**CHAT)
    raised = close_while_blocked(stream)
    assert isinstance(raised, holysse.StreamClosed) and raised.partial == stream.text != ""


def test_delivery_is_immediate_on_every_body_shape() -> None:
    for options in ({"chunked": True}, {"chunked": False}, {"gzip": True}):
        with FakeServer(answer_chars=300, **options) as srv:
            srv.set_faults([Fault.stall(srv.event_offsets(CHAT)[3])])
            stream = make_client(srv, timeout=(2, 20)).stream(**CHAT)
            for event in stream:
                if isinstance(event, TextDelta):
                    break  # arrived while the server holds the rest back
            stream.close()
            assert stream.metrics.total_reconnects == 0 and stream.text, options


def test_a_stream_is_iterable_once_and_break_releases_it(server: FakeServer) -> None:
    stream = make_client(server).stream(**CHAT)
    for _event in stream:
        break
    with pytest.raises(holysse.UsageError, match="only once"):
        iter(stream)
    assert stream.done


def test_closed_client_refuses_new_streams(server: FakeServer) -> None:
    client = make_client(server)
    client.close()
    with pytest.raises(holysse.UsageError, match="closed"):
        client.stream(**CHAT)


def test_text_stream_and_callbacks(server: FakeServer) -> None:
    seen: list[str] = []
    stream = make_client(server).stream(on_text=seen.append, **CHAT)
    assert "".join(stream.text_stream) == "".join(seen) == server.expected_text(CHAT)


def test_deadline_stops_reconnecting(server: FakeServer, sleeps: Sleeps) -> None:
    server.set_faults([Fault.status(503, retry_after=50)] * 3)
    client = make_client(server, sleeps, retry=holysse.RetryPolicy(deadline=10))
    with pytest.raises(holysse.RetriesExhausted, match="deadline"):
        list(client.stream(**CHAT))
    assert sleeps == []


def test_shared_client_across_threads(server: FakeServer) -> None:
    client = make_client(server)
    results: dict[int, str] = {}

    def run(i: int) -> None:
        body = dict(CHAT, seed=100 + i)
        results[i] = client.stream(**body).final().text

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert all(results[i] == server.expected_text(dict(CHAT, seed=100 + i)) for i in range(8))
    assert len(set(results.values())) == 8


def test_close_from_another_thread_between_events_raises_in_the_reader(server: FakeServer) -> None:
    """The reader is between two events (not blocked in a read) when another
    thread closes the stream: its next step raises StreamClosed with the
    partial answer, never a silent end or a 'generator already executing'."""
    stream = make_client(server).stream(**CHAT)
    events = iter(stream)
    received = next(event for event in events if event.text).text
    closer = threading.Thread(target=stream.close)
    closer.start()
    closer.join(5)
    assert not closer.is_alive()
    with pytest.raises(holysse.StreamClosed) as info:
        for event in events:
            received += event.text
    assert info.value.partial == stream.text == received != server.expected_text(CHAT)
    assert stream.done
