"""When and how long to wait before a reconnect: :class:`RetryPolicy`.

The policy is a frozen value object. It decides whether another attempt is
allowed and computes the delay before it; it never sleeps (the client sleeps
through an injectable ``sleep``) and never looks at the answer (what to do
after part of the answer arrived is the resume strategy's business).

Delays are exponential with *full jitter* (a uniform draw between 0 and
``backoff_initial * 2 ** (attempt - 1)``, capped at ``backoff_max``), and
never shorter than what the server asked for: ``Retry-After`` (seconds or an
HTTP date), ``retry-after-ms``, or the SSE ``retry:`` field, each capped at
``server_hint_max``.

Before anything was received from the server, a server that is not there at
all (a refused connection, a host name that does not resolve, no route: a
:class:`~holysse.exceptions.ConnectError` with ``unreachable``) is retried
only within ``connect_budget`` seconds of the stream's start (5 s): with the
default backoff, attempts at about 0, 0.5, 1.5 and 3.5 s at most, then
:class:`~holysse.exceptions.RetriesExhausted`. Everything else (429, 5xx,
stalls, timeouts, and any failure once the server has answered) keeps the
full ``max_attempts`` schedule.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Sequence

from ._status import NEVER_RETRY_STATUSES, RETRY_STATUSES, header_value, retryable
from .exceptions import RetriesExhausted, UsageError

__all__ = ["RetryPolicy", "parse_retry_after", "header_value", "NEVER_RETRY_STATUSES", "RETRY_STATUSES"]



@dataclass(frozen=True)
class RetryPolicy:
    """How and when :class:`~holysse.Client` reconnects. Safe to share
    between threads.

    :param max_attempts: reconnect attempts allowed in a row without progress.
        The count starts over whenever a connection delivered part of the
        answer, so a long answer may survive more cuts than this in total.
        ``0`` disables reconnecting.
    :param backoff_initial: the upper bound of the first delay, in seconds;
        attempt ``n`` draws from ``[0, backoff_initial * 2 ** (n - 1)]``.
    :param backoff_max: the cap of that upper bound, in seconds.
    :param server_hint_max: the cap for waits the server asks for
        (``Retry-After``, ``retry-after-ms``, SSE ``retry:``), in seconds.
    :param deadline: a limit for the whole stream in seconds (connections,
        reads and waits together), or ``None``. Separate from the read timeout,
        which limits the silence between two reads.
    :param connect_budget: before anything was received in this stream, how
        long (seconds since the stream started) failures to reach the server
        at all are retried: refused connections, unknown hosts, no route
        (``ConnectError.unreachable``). ``None``: like any other error.
    :param jitter: draw delays at random (full jitter); ``False`` uses the
        upper bound itself (predictable, for tests and demos).
    :param uniform: the random source, ``uniform(a, b)``; injectable for tests.
    """

    max_attempts: int = 6
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    server_hint_max: float = 120.0
    deadline: float | None = None
    connect_budget: float | None = 5.0
    jitter: bool = True
    uniform: Callable[[float, float], float] = field(default=random.uniform, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or self.max_attempts < 0:
            raise UsageError(f"RetryPolicy.max_attempts must be an int >= 0, not {self.max_attempts!r}.")
        for name in ("backoff_initial", "backoff_max", "server_hint_max"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise UsageError(f"RetryPolicy.{name} must be a number of seconds >= 0, not {value!r}.")
        for name in ("deadline", "connect_budget"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0):
                raise UsageError(f"RetryPolicy.{name} must be a positive number of seconds or None, not {value!r}.")

    @classmethod
    def from_value(cls, value: RetryPolicy | int | bool | None) -> RetryPolicy:
        """Accept a policy, a number of attempts (``retry=3``), ``True`` or
        ``None`` (the default policy) or ``False`` (never reconnect).

        :raises UsageError: for anything else.
        """
        if isinstance(value, RetryPolicy):
            return value
        if value is None or value is True:
            return cls()
        if value is False:
            return cls(max_attempts=0)
        if isinstance(value, int):
            return cls(max_attempts=value)
        raise UsageError(f"retry must be a RetryPolicy, an int or a bool, not {type(value).__name__}.")

    from_int = from_value

    def with_attempts(self, max_attempts: int) -> RetryPolicy:
        """A copy allowing ``max_attempts`` attempts."""
        return replace(self, max_attempts=max_attempts)

    # -- decisions -----------------------------------------------------------

    def can_retry(self, attempt: int, elapsed: float = 0.0) -> bool:
        """Whether reconnect attempt number ``attempt`` (from 1) may happen
        ``elapsed`` seconds after the stream started."""
        if attempt > self.max_attempts:
            return False
        return self.deadline is None or elapsed < self.deadline

    def remaining(self, elapsed: float) -> float | None:
        """Seconds left before the deadline (``None`` without one, ``0`` past it)."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - elapsed)

    def should_retry_status(self, status: int, headers: Mapping[str, str] | None = None) -> bool:
        """Whether an HTTP error status may be retried.

        400, 401, 403, 404 and 422 never are. Otherwise an
        ``x-should-retry: true|false`` header decides when present; without it
        408, 409, 429 and every 5xx are retried.
        """
        return retryable(status, headers)

    # -- delays --------------------------------------------------------------

    def backoff(self, attempt: int) -> float:
        """The upper bound of the delay before attempt ``attempt`` (from 1)."""
        exponent = min(max(attempt - 1, 0), 64)  # 2 ** 64 already exceeds any cap
        return min(self.backoff_max, self.backoff_initial * 2.0**exponent)

    def next_delay(self, attempt: int, server_hint: float | None = None) -> float:
        """The delay before attempt ``attempt`` (from 1), in seconds.

        :param server_hint: how long the server asked us to wait (seconds),
            or ``None``. The delay is never shorter than the hint, capped at
            :attr:`server_hint_max`.
        """
        bound = self.backoff(attempt)
        delay = self.uniform(0.0, bound) if self.jitter and bound > 0 else bound
        if server_hint is not None and server_hint > 0:
            delay = max(delay, min(server_hint, self.server_hint_max))
        return delay

    def delay_or_give_up(
        self,
        attempt: int,
        elapsed: float,
        error: BaseException,
        server_hint: float | None = None,
        history: Sequence[tuple[int, str, float]] = (),
        *,
        received: bool = True,
    ) -> float:
        """The delay before reconnect attempt ``attempt`` (from 1), after
        ``error``, ``elapsed`` seconds into the stream.

        :param server_hint: how long the server asked us to wait, if it did.
        :param history: the attempts so far, ``(attempt, reason, delay)``,
            for the error.
        :param received: whether anything (a response head) was received
            from the server in this stream; when not, an ``unreachable``
            error is retried only within :attr:`connect_budget`.
        :raises RetriesExhausted: no attempt is left, the deadline or the
            connect budget passed or leaves no time for the delay;
            ``__cause__`` is ``error``.
        """
        cause = _sentence(str(error))
        done = attempt - 1
        if self.remaining(elapsed) == 0:
            raise RetriesExhausted(
                f"The stream deadline ({self.deadline}s) passed after {done} reconnect attempts: {cause} "
                "The partial answer is in exc.partial; raise RetryPolicy.deadline to allow more time.",
                attempts=tuple(history),
            ) from error
        if not self.can_retry(attempt, elapsed):
            raise RetriesExhausted(
                f"Gave up after {done} reconnect attempts ({elapsed:.1f}s): {cause} "
                "The partial answer is in exc.partial; raise RetryPolicy.max_attempts or deadline to keep trying.",
                attempts=tuple(history),
            ) from error
        delay = self.next_delay(attempt, server_hint)
        budget = self.connect_budget
        spent = max(elapsed, sum(step[2] for step in history))  # the same with an injected sleep
        if budget is not None and not received and getattr(error, "unreachable", False) and spent + delay >= budget:
            raise RetriesExhausted(
                f"Gave up after {done} reconnect attempts ({elapsed:.1f}s): {cause} Nothing answered there, so "
                f"holysse stopped within the connect budget ({budget:g}s); raise RetryPolicy.connect_budget to "
                "wait longer for a server that is starting.",
                attempts=tuple(history),
                unreachable=True,
            ) from error
        remaining = self.remaining(elapsed)
        if remaining is not None and delay >= remaining:
            raise RetriesExhausted(
                f"The stream deadline ({self.deadline}s) leaves no time to reconnect after: {cause} "
                "The partial answer is in exc.partial.",
                attempts=tuple(history),
            ) from error
        return delay


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """How long the server asked us to wait, in seconds, or ``None``.

    ``retry-after-ms`` (milliseconds, OpenAI) wins over ``Retry-After``
    (seconds, or an HTTP date). Unparsable or negative values are ignored;
    a date in the past means 0.

    :param now: the current time as a Unix timestamp (injectable for tests).
    """
    ms = _number(header_value(headers, "retry-after-ms"))
    if ms is not None:
        return ms / 1000.0
    raw = header_value(headers, "retry-after")
    if raw is None:
        return None
    seconds = _number(raw)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _sentence(text: str) -> str:
    """``text`` ending with exactly one full stop (or its own ``?``/``!``)."""
    text = text.rstrip(". ")
    return text if text.endswith(("?", "!")) else text + "."


def _number(raw: str | None) -> float | None:
    if raw is None:
        return None
    text = raw.strip()
    if not text or not all(c.isdigit() or c == "." for c in text) or not text.isascii():
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 else None
