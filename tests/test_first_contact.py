"""First contact: a missing key for the HolySheep gateway fails at once,
without the network; a server that is not there (refused, unknown host) is
given up within 5 s with default settings; 401 advice says where the key
came from and what this server expects; bad arguments are one kind of error."""

from __future__ import annotations

import time
from typing import Any

import pytest

import holysse
from holysse.testing import FakeServer
from holysse.transport import HTTPRequest, Timeout

from .conftest import CHAT, Sleeps
from .relay_support import free_port

KEY = "sk-" + "F1rstC0ntact" * 3


class NoNetwork:
    """A transport that fails the test if anything is sent."""

    def __init__(self) -> None:
        self.opened: list[HTTPRequest] = []

    def open(self, request: HTTPRequest, timeout: Timeout) -> Any:
        self.opened.append(request)
        raise AssertionError("nothing may be sent")

    def close(self) -> None:
        pass


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOLYSHEEP_API_KEY", raising=False)
    monkeypatch.delenv("HOLYSHEEP_BASE_URL", raising=False)


@pytest.mark.usefixtures("no_env")
def test_no_key_for_the_default_gateway_fails_at_once_without_the_network() -> None:
    transport = NoNetwork()
    started = time.perf_counter()
    with pytest.raises(holysse.UsageError, match="HOLYSHEEP_API_KEY"):
        holysse.Client(transport=transport).stream(**CHAT)
    took = time.perf_counter() - started
    assert took < 0.1 and transport.opened == []
    with pytest.raises(holysse.UsageError, match="HOLYSHEEP_API_KEY"):
        holysse.Client(transport=transport).models()
    assert "key=missing" in repr(holysse.Client(transport=transport))


@pytest.mark.usefixtures("no_env")
def test_servers_that_need_no_key_keep_working_without_one() -> None:
    with FakeServer(answer_chars=200) as server, holysse.Client(base_url=server.url) as client:
        stream = client.stream(**CHAT)
        assert stream.final().text == server.expected_text(CHAT)
        assert server.requests[0].header("Authorization") is None


@pytest.mark.parametrize("where", ["refused", "unknown host"])
def test_a_server_that_is_not_there_is_given_up_within_5_s_by_default(where: str) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1" if where == "refused" else "http://no-such-host.invalid/v1"
    client = holysse.Client(api_key=KEY, base_url=url, allow_insecure_http=True)
    started = time.monotonic()
    with client, pytest.raises(holysse.RetriesExhausted) as info:
        list(client.stream(**CHAT))
    took = time.monotonic() - started
    assert took < 5.0, took
    cause = info.value.__cause__
    assert isinstance(cause, holysse.ConnectError) and cause.unreachable
    assert len(info.value.attempts) >= 2  # still a few tries: a server may be starting
    if len(info.value.attempts) < holysse.RetryPolicy().max_attempts:  # (short random waits may use them all)
        assert "connect budget" in str(info.value)


def test_the_connect_budget_holds_with_an_injected_sleep_and_not_for_other_errors() -> None:
    refused = holysse.ConnectError("refused", unreachable=True)
    for policy in (holysse.RetryPolicy(jitter=False), holysse.RetryPolicy()):
        history: list[tuple[int, str, float]] = []
        with pytest.raises(holysse.RetriesExhausted):
            for attempt in range(1, 10):
                delay = policy.delay_or_give_up(attempt, 0.0, refused, None, history, received=False)
                history.append((attempt, "refused", delay))
        assert sum(step[2] for step in history) < 5.0
        if not policy.jitter:  # the schedule the README states: waits of 0.5, 1 and 2 s, then give up
            assert [step[2] for step in history] == [0.5, 1.0, 2.0]
    policy = holysse.RetryPolicy()
    # Once the server has answered, or for an error that is not "nobody there": the full schedule.
    for error, received in ((refused, True), (holysse.ConnectError("TLS failed"), False)):
        assert all(policy.delay_or_give_up(n, 0.0, error, None, (), received=received) >= 0 for n in range(1, 7))
    with pytest.raises(holysse.UsageError):
        holysse.RetryPolicy(connect_budget=0)


def test_a_refused_connection_after_the_answer_started_keeps_the_full_schedule() -> None:
    sleeps = Sleeps()
    with FakeServer(answer_chars=2000, token_delay=0.002) as server:
        client = holysse.Client(api_key=KEY, base_url=server.url, sleep=sleeps)
        stream = client.stream(**CHAT)
        received = 0
        with pytest.raises(holysse.RetriesExhausted) as info:
            for event in stream:
                received += len(event.text)
                if received > 100 and server.port:
                    server.close()  # the server goes away mid-answer: every reconnect is refused
        assert info.value.partial and len(info.value.attempts) == holysse.RetryPolicy().max_attempts
        client.close()


# -- the 401 advice ---------------------------------------------------------------------------------


def test_401_advice_says_where_the_key_came_from_and_the_hs_hint_only_for_holysheep(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOLYSHEEP_API_KEY", raising=False)
    with FakeServer(api_key="sk-" + "right" * 8) as server:
        sleeps = Sleeps()
        with pytest.raises(holysse.AuthenticationError) as given:
            list(holysse.Client(api_key=KEY, base_url=server.url, sleep=sleeps).stream(**CHAT))
        with pytest.raises(holysse.AuthenticationError) as header:
            list(holysse.Client(base_url=server.url, headers={"x-api-key": KEY}, sleep=sleeps).stream(**CHAT))
        monkeypatch.setenv("HOLYSHEEP_API_KEY", KEY)
        with pytest.raises(holysse.AuthenticationError) as env:
            list(holysse.Client(base_url=server.url, sleep=sleeps).stream(**CHAT))
    assert "from api_key=" in str(given.value) and "Authorization: Bearer" in str(given.value)
    assert "from headers= (x-api-key)" in str(header.value)
    assert "from HOLYSHEEP_API_KEY" in str(env.value)
    for error in (given, header, env):
        assert "hs_" not in str(error.value) and "this server" in str(error.value)
        assert KEY not in str(error.value)


# -- one rule for bad arguments ------------------------------------------------------------------------


@pytest.mark.parametrize("call", [
    lambda: holysse.Client(api_key=KEY, base_url="http://127.0.0.1:9/v1", timeout="5s"),
    lambda: holysse.Client(api_key=KEY, base_url="http://127.0.0.1:9/v1", timeout=(1, 2, 3, 4)),
    lambda: holysse.Timeout(connect=True),
    lambda: holysse.RetryPolicy(max_attempts=-1),
    lambda: holysse.LatencyMonitor(window=0),
], ids=["timeout-string", "timeout-4-tuple", "timeout-bool", "negative-attempts", "monitor-window"])
def test_bad_arguments_raise_usage_error_which_is_also_a_value_error(call: Any) -> None:
    with pytest.raises(holysse.UsageError) as info:
        call()
    assert isinstance(info.value, ValueError) and isinstance(info.value, RuntimeError)


def test_a_wait_that_runs_out_is_a_holysse_error_and_a_timeout_error() -> None:
    with FakeServer(answer_chars=2000, token_delay=0.05) as server:
        client = holysse.Client(api_key=KEY, base_url=server.url)
        stream = client.stream(**CHAT)
        events = iter(stream)
        next(events)
        with pytest.raises(holysse.HolySSEError) as info:
            stream.final(0.01)
        assert "final(timeout=)" in str(info.value) or "within" in str(info.value)
        assert isinstance(info.value, TimeoutError)
        stream.close()
        client.close()
