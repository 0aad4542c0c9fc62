"""Running a :class:`~tests.model_server.Scenario` through the public client
and ``MemoryTransport``, the oracle, and shrinking a failing scenario.

The oracle (issue 12, part 6): the text the consumer received (a ``Reset``
starts it over) equals ``stream.text``; every text shown before a ``Reset``
and the text at an error were a prefix of an answer the server could give (no
silent duplicate, no gap); a stream that ends without error ends with the
whole text of a generation whose end the server sent; an error is a
:class:`HolySSEError` whose ``partial`` is what was delivered; the number of
connections stays within the script plus a few. A scenario in which the server
is honest apart from cuts, statuses and retryable errors must give the true
answer exactly, without a ``Reset``.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterator

import holysse
from holysse import Reset, TextDelta
from holysse.testing import MemoryTransport, Reply
from holysse.transport import HTTPRequest

from .model_draw import scenario_features
from .model_server import Conn, ModelServer, Scenario

__all__ = ["Outcome", "check", "shrink"]

#: Events one stream may yield before the model calls it endless.
MAX_EVENTS = 5000
#: Connections past the script the client may use (fallbacks after a refused resume).
SPARE_CONNECTIONS = 3
_POLICY = holysse.RetryPolicy(max_attempts=12, backoff_initial=0.0001, backoff_max=0.001)
_HONEST_ACTS = frozenset({"honest", "status", "stall-head", "open-error"})


class _Dispatch:
    """One client per configuration: its transport plays the current server."""

    def __init__(self) -> None:
        self.server: ModelServer | None = None

    def __call__(self, request: HTTPRequest, number: int) -> Reply:
        assert self.server is not None
        return self.server(request, number)


_clients: dict[tuple[str, str, str, str], tuple[holysse.Client, _Dispatch, MemoryTransport]] = {}


def _client(sc: Scenario) -> tuple[holysse.Client, _Dispatch, MemoryTransport]:
    key = (sc.dialect, sc.provider, sc.resume, sc.divergence)
    if key not in _clients:
        dispatch = _Dispatch()
        transport = MemoryTransport(dispatch)
        client = holysse.Client(api_key="hs_model", base_url="https://model.test/v1", transport=transport,
                                sleep=lambda seconds: None, dialect=sc.dialect, provider=sc.provider,
                                resume=sc.resume, on_divergence=sc.divergence, retry=_POLICY)
        _clients[key] = client, dispatch, transport
    return _clients[key]


@dataclasses.dataclass
class Outcome:
    """What one scenario gave, and what was wrong with it (``problem``)."""

    segments: list[str]
    text: str
    error: BaseException | None
    connections: int
    problem: str | None
    server: ModelServer


def run(sc: Scenario) -> Outcome:
    client, dispatch, transport = _client(sc)
    server = dispatch.server = ModelServer(sc)
    transport.requests.clear()
    transport.timeouts.clear()
    body: dict[str, object] = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "seed": 7}
    if sc.dialect == "openai-responses" and sc.background:
        body["background"] = True
    stream = client.stream(**body)
    segments = [""]
    parts: list[str] = []
    error: BaseException | None = None
    count = 0
    try:
        for event in stream:
            count += 1
            if type(event) is TextDelta:
                parts.append(event.text)
            elif isinstance(event, Reset):
                segments[-1] = "".join(parts)
                segments.append("")
                parts = []
            if count > MAX_EVENTS:
                stream.close()
                break
    except Exception as exc:  # noqa: BLE001 - judged by the oracle
        error = exc
    segments[-1] = "".join(parts)
    outcome = Outcome(segments, stream.text, error, server.connections, None, server)
    outcome.problem = _judge(sc, outcome, count, transport)
    return outcome


def _judge(sc: Scenario, out: Outcome, count: int, transport: MemoryTransport) -> str | None:
    if count > MAX_EVENTS:
        return f"more than {MAX_EVENTS} events: endless"
    if transport.open_responses:
        return f"{transport.open_responses} response(s) left open"
    if out.error is not None and not isinstance(out.error, holysse.HolySSEError):
        return f"raised {type(out.error).__name__} (not a HolySSEError): {out.error}"
    final = out.segments[-1]
    if final != out.text:
        return f"the consumer received {final!r} but stream.text is {out.text!r}"
    possible = out.server.possible
    for shown in out.segments[:-1]:
        if not any(p.startswith(shown) for p in possible):
            return f"text shown before a Reset was never an answer's start (duplicate or gap): {shown!r}"
    if out.connections > len(sc.conns) + 1 + SPARE_CONNECTIONS:
        return f"{out.connections} connections for a script of {len(sc.conns)} (then honest)"
    if out.error is not None:
        partial = getattr(out.error, "partial", None)
        if partial != out.text:
            return f"{type(out.error).__name__}.partial {partial!r} is not the delivered text {out.text!r}"
        if not any(p.startswith(out.text) for p in possible):
            return f"failed ({type(out.error).__name__}) after delivering a text no answer starts with: {out.text!r}"
    elif out.text not in out.server.finished:
        return f"ended without error with {out.text!r}, not the text of a finished generation"
    if _must_complete(sc) and (out.error is not None or len(out.segments) > 1 or out.text != sc.text(0)):
        return (f"an honest server (apart from cuts, statuses, retryable errors) gave {out.text!r} with "
                f"{len(out.segments) - 1} Reset(s) and error {out.error!r}, not the true answer")
    return None


def _must_complete(sc: Scenario) -> bool:
    return all(c.act in _HONEST_ACTS and c.error != "fatal" for c in sc.conns)


def check(sc: Scenario) -> str | None:
    """``None`` when ``sc`` meets the contract, else what went wrong."""
    return run(sc).problem


def _simpler(sc: Scenario) -> Iterator[Scenario]:
    conns = sc.conns
    for i in range(len(conns)):
        yield dataclasses.replace(sc, conns=conns[:i] + conns[i + 1:])
    simple = Conn()
    for i, conn in enumerate(conns):
        for name in ("error", "nonprogress", "cut", "ids", "same_cid", "same_prefix", "role", "retry_after",
                     "act", "answer", "status"):
            value = getattr(simple, name)
            if getattr(conn, name) != value:
                yield dataclasses.replace(sc, conns=conns[:i] + (dataclasses.replace(conn, **{name: value}),)
                                          + conns[i + 1:])
        for name in ("at", "where"):
            value = getattr(conn, name)
            for better in (round(value, 1), round(value, 2)):
                if better != value:
                    yield dataclasses.replace(sc, conns=conns[:i] + (dataclasses.replace(conn, **{name: better}),)
                                              + conns[i + 1:])
    if len(sc.answers) > 1:
        yield dataclasses.replace(sc, answers=sc.answers[:-1],
                                  conns=tuple(dataclasses.replace(c, answer=min(c.answer, len(sc.answers) - 2))
                                              for c in conns))
    for number, tokens in enumerate(sc.answers):
        for j in range(len(tokens) - 1, -1, -1):
            if len(tokens) > 1:
                fewer = sc.answers[:number] + (tokens[:j] + tokens[j + 1:],) + sc.answers[number + 1:]
                yield dataclasses.replace(sc, answers=fewer)
    for name, value in (("resume", "auto"), ("divergence", "reset"), ("background", True)):
        if getattr(sc, name) != value:
            yield dataclasses.replace(sc, **{name: value})


def shrink(sc: Scenario, failing: Callable[[Scenario], str | None] = check, budget: int = 3000,
           holes: frozenset[str] = frozenset()) -> Scenario:
    """A smaller scenario that still fails (greedy: first simpler one that
    fails, repeat) and shows no behaviour in ``holes``."""
    tries = 0
    progress = True
    while progress and tries < budget:
        progress = False
        for candidate in _simpler(sc):
            tries += 1
            if _valid(candidate) and not scenario_features(candidate) & holes and failing(candidate) is not None:
                sc, progress = candidate, True
                break
    return sc


def _valid(sc: Scenario) -> bool:
    return all(0 < c.answer < max(2, len(sc.answers)) or c.act != "different" for c in sc.conns)
