"""RetryPolicy: pure decisions and delays, with an injected random source;
and, against a real server, that server hints are never undercut."""

from __future__ import annotations

import dataclasses
import email.utils

import pytest

import holysse
from holysse.retry import RetryPolicy, parse_retry_after
from holysse.testing import FakeServer, Fault

from .conftest import CHAT, Sleeps, make_client


def top(a: float, b: float) -> float:
    """A 'random' source that always draws the upper bound."""
    return b


def test_from_value_accepts_policies_ints_and_bools() -> None:
    policy = RetryPolicy(max_attempts=2)
    assert RetryPolicy.from_value(policy) is policy
    assert RetryPolicy.from_value(None) == RetryPolicy() == RetryPolicy.from_value(True)
    assert RetryPolicy.from_value(3).max_attempts == 3
    assert RetryPolicy.from_value(False).max_attempts == 0
    assert RetryPolicy.from_int(4).max_attempts == 4


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": -1}, {"max_attempts": 1.5}, {"max_attempts": True}, {"backoff_initial": -1},
     {"backoff_max": "3"}, {"deadline": 0}, {"deadline": -5}],
)
def test_bad_values_are_usage_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(holysse.UsageError, match="RetryPolicy"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_from_value_refuses_other_types() -> None:
    with pytest.raises(holysse.UsageError, match="retry must be"):
        RetryPolicy.from_value("3")  # type: ignore[arg-type]


def test_policy_is_frozen_and_copies_are_new_values() -> None:
    policy = RetryPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_attempts = 9  # type: ignore[misc]
    assert policy.with_attempts(9).max_attempts == 9 and policy.max_attempts == 6


def test_backoff_bounds_grow_exponentially_and_are_capped() -> None:
    policy = RetryPolicy(backoff_initial=0.5, backoff_max=3.0)
    assert [policy.backoff(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert policy.backoff(10_000) == 3.0  # no overflow for absurd attempt numbers


def test_full_jitter_draws_between_zero_and_the_bound() -> None:
    draws: list[tuple[float, float]] = []

    def uniform(a: float, b: float) -> float:
        draws.append((a, b))
        return (a + b) / 2

    policy = RetryPolicy(backoff_initial=1.0, backoff_max=8.0, uniform=uniform)
    assert [policy.next_delay(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert draws == [(0.0, 1.0), (0.0, 2.0), (0.0, 4.0), (0.0, 8.0), (0.0, 8.0)]
    assert RetryPolicy(backoff_initial=1.0, jitter=False).next_delay(3) == 4.0


def test_server_hints_are_never_undercut_but_capped() -> None:
    policy = RetryPolicy(backoff_initial=0.1, server_hint_max=60.0, uniform=top)
    assert policy.next_delay(1, server_hint=5.0) == 5.0
    assert policy.next_delay(1, server_hint=0.01) == pytest.approx(0.1)  # backoff is longer
    assert policy.next_delay(1, server_hint=3600.0) == 60.0


def test_can_retry_counts_attempts_and_the_deadline() -> None:
    policy = RetryPolicy(max_attempts=2, deadline=10.0)
    assert policy.can_retry(1, 0.0) and policy.can_retry(2, 9.9)
    assert not policy.can_retry(3, 0.0) and not policy.can_retry(1, 10.0)
    assert policy.remaining(4.0) == 6.0 and policy.remaining(20.0) == 0.0
    assert RetryPolicy().remaining(1e9) is None
    assert not RetryPolicy.from_value(False).can_retry(1)


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (408, {}, True), (409, {}, True), (429, {}, True), (500, {}, True), (502, {}, True),
        (503, {}, True), (529, {}, True), (418, {}, False), (302, {}, False),
        (400, {}, False), (401, {}, False), (403, {}, False), (404, {}, False), (422, {}, False),
        (503, {"X-Should-Retry": "false"}, False), (418, {"x-should-retry": "true"}, True),
        (401, {"x-should-retry": "true"}, False), (422, {"x-should-retry": "true"}, False),
        (429, {"x-should-retry": "maybe"}, True),
    ],
)
def test_which_statuses_are_retried(status: int, headers: dict[str, str], expected: bool) -> None:
    assert RetryPolicy().should_retry_status(status, headers) is expected


def test_parse_retry_after_forms() -> None:
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after({"Retry-After": "7"}) == 7.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    assert parse_retry_after({"RETRY-AFTER": date}, now=now) == pytest.approx(30.0)
    assert parse_retry_after({"Retry-After": email.utils.formatdate(now - 30, usegmt=True)}, now=now) == 0.0
    assert parse_retry_after({"retry-after-ms": "250", "Retry-After": "9"}) == 0.25
    for junk in ("", "soon", "-3", "+5", "1_000", "٣", "inf", "nan"):
        assert parse_retry_after({"Retry-After": junk}) is None, junk
    assert parse_retry_after({}) is None


# -- against a server -------------------------------------------------------------


def test_sse_retry_field_is_honoured_after_a_cut(sleeps: Sleeps) -> None:
    with FakeServer(answer_chars=400, sse_retry=2500) as server:
        server.set_faults([Fault.fin(server.event_offsets(CHAT)[10] + 2)])
        stream = make_client(server, sleeps).stream(**CHAT)
        assert stream.final().text == server.expected_text(CHAT)
    assert len(sleeps) == 1 and sleeps[0] >= 2.5


def test_retry_after_date_is_honoured(server: FakeServer, sleeps: Sleeps) -> None:
    import time

    when = email.utils.formatdate(time.time() + 42, usegmt=True)
    server.set_faults([Fault.status(503, retry_after=when)])
    stream = make_client(server, sleeps).stream(**CHAT)
    assert stream.final().text == server.expected_text(CHAT)
    assert len(sleeps) == 1 and 38 <= sleeps[0] <= 42


def test_x_should_retry_false_stops_at_once(server: FakeServer, sleeps: Sleeps) -> None:
    server.set_faults([Fault.status(503, headers={"x-should-retry": "false"})])
    with pytest.raises(holysse.HTTPStatusError) as info:
        list(make_client(server, sleeps).stream(**CHAT))
    assert info.value.status_code == 503 and not info.value.retryable and sleeps == []


def test_retry_false_never_reconnects(server: FakeServer, sleeps: Sleeps) -> None:
    server.set_faults([Fault.fin(server.event_offsets(CHAT)[5])])
    client = make_client(server, sleeps, retry=False)
    with pytest.raises(holysse.RetriesExhausted) as info:
        list(client.stream(**CHAT))
    assert sleeps == [] and len(server.requests) == 1
    assert info.value.partial and server.expected_text(CHAT).startswith(info.value.partial)


def test_delay_or_give_up_names_the_reason_and_keeps_the_cause() -> None:
    policy = RetryPolicy(max_attempts=2, backoff_initial=1.0, deadline=10.0, uniform=top)
    cut = holysse.StreamInterrupted("cut mid-answer")
    assert policy.delay_or_give_up(1, 0.0, cut) == 1.0
    assert policy.delay_or_give_up(2, 0.0, cut, server_hint=4.0) == 4.0
    history = ((1, "cut", 1.0), (2, "cut", 2.0))
    with pytest.raises(holysse.RetriesExhausted, match="Gave up after 2 reconnect attempts") as info:
        policy.delay_or_give_up(3, 1.0, cut, history=history)
    assert info.value.__cause__ is cut and info.value.attempts == history
    with pytest.raises(holysse.RetriesExhausted, match="deadline .* passed"):
        policy.delay_or_give_up(1, 10.0, cut)
    with pytest.raises(holysse.RetriesExhausted, match="leaves no time"):
        policy.delay_or_give_up(1, 8.0, cut, server_hint=5.0)
