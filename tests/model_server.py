"""A generated model of misbehaving LLM servers (issue 12, part 6).

A :class:`Scenario` is a dialect, a resume mode, the answers the server may
give (``answers[0]`` is the true one) and what the server does on each
connection (:class:`Conn`); past the script it is honest. :class:`ModelServer`
plays a scenario as a :class:`~holysse.testing.MemoryTransport` script and
remembers what it sent, so the oracle (:mod:`tests.model_check`) knows which
answers were possible and which finished. Scenarios are drawn in
:mod:`tests.model_draw`.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass, field

from holysse.testing import Reply
from holysse.transport import HTTPRequest

from .model_wire import ANTHROPIC, CHAT, RESPONSES, Flags, error_event, nonprogress_event, render

__all__ = ["Conn", "Scenario", "ModelServer", "ACTS", "CUTS", "RUNTIME_HOLES"]

#: What the server does with a connection.
ACTS = ("honest", "restart", "different", "partial-prefill", "status", "stall-head", "open-error")
# restart: the current answer again from its start, ignoring the cursor or prefill; different: another
# answer (which may share a start with the true one); partial-prefill: continues a prefill but echoes the
# prefilled text first (a plain request or a cursor is answered honestly)
CUTS = ("fin", "rst", "stall")
#: Holes the server avoids while playing (whether a request is a prefill is the client's choice):
#: ``prefill-restart:ids``: a prefill answered by a restart or an echo that carries SSE ids.
#: ``finished-then-different``: another answer after a connection that delivered the finish (stop
#: reason) but was cut before the terminal marker.
RUNTIME_HOLES = frozenset({"prefill-restart:ids", "finished-then-different"})
#: A new turn that repeats at least this many characters of the delivered
#: text's start (or all of it, when shorter) can be told from a continuation.
_FIRST = {CHAT: 1, ANTHROPIC: 2, RESPONSES: 1}  # start events of each dialect's rendering
SIMILAR_START = 16  # as the core's MIN_RESTART_MATCH

@dataclass(frozen=True)
class Conn:
    """What the server does with one connection."""

    act: str = "honest"
    #: restart / different: send the start event (role delta, message_start, response.created)
    role: bool = True
    #: restart / different: the completion id (and Responses id) of the first connection, not a new one
    same_cid: bool = False
    #: restart / different: the SSE id prefix of the first connection (ids collide), not a new one
    same_prefix: bool = False
    ids: str = "plain"
    #: different: which other answer (1..)
    answer: int = 1
    cut: str | None = None
    #: where the cut lands, as a fraction of the body's bytes
    at: float = 1.0
    status: int = 429
    retry_after: int = 0
    nonprogress: int = 0
    #: an in-stream error: "retryable" or "fatal"
    error: str | None = None
    #: where non-progress events and the error go, as a fraction of the events
    where: float = 0.5


@dataclass(frozen=True)
class Scenario:
    dialect: str
    resume: str
    provider: str
    divergence: str
    answers: tuple[tuple[str, ...], ...]
    conns: tuple[Conn, ...]
    background: bool = True
    seed: int = 0
    #: behaviours decided while playing that the server avoids (:data:`RUNTIME_HOLES`)
    avoid: frozenset[str] = frozenset()

    def text(self, answer: int) -> str:
        return "".join(self.answers[answer])


@dataclass(frozen=True)
class Served:
    """One rendering the server sent (what a cursor continues)."""

    answer: int
    flags: Flags
    tokens: tuple[str, ...]
    final: str


@dataclass
class ModelServer:
    """Plays :attr:`scenario`; callable as a ``MemoryTransport`` script."""

    scenario: Scenario
    #: SSE id -> (answer, flags, event index); the first occurrence wins
    sent: dict[str, tuple[Served, int]] = field(default_factory=dict)
    #: response id -> (answer, flags)
    responses: dict[str, Served] = field(default_factory=dict)
    #: the flags of the first connection that served each answer
    first: dict[int, Flags] = field(default_factory=dict)
    current: int = 0
    #: a connection delivered the finish but not the terminal marker
    finish_only: bool = False
    connections: int = 0
    #: texts the answer may legitimately have; texts of generations whose end was sent
    possible: set[str] = field(default_factory=set)
    finished: set[str] = field(default_factory=set)
    drawn: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.possible.update(self.scenario.text(i) for i in range(len(self.scenario.answers)))

    def __call__(self, request: HTTPRequest, number: int) -> Reply:
        sc = self.scenario
        number = self.connections
        self.connections += 1
        conn = sc.conns[number] if number < len(sc.conns) else Conn()
        kind = self._kind(request)
        self.drawn[f"act:{conn.act}"] += 1 if number < len(sc.conns) else 0
        self.drawn[f"{kind}->{conn.act}"] += 1
        if conn.act == "status":
            self.drawn[f"status:{conn.status}"] += 1
            body = json.dumps({"error": {"message": "busy", "type": "server_error"}})
            return Reply.with_status(conn.status, body, headers={"Retry-After": str(conn.retry_after)})
        if conn.act == "stall-head":
            return Reply.stall_before_head()
        if conn.act == "open-error":
            from holysse import ConnectError

            return Reply.fails(ConnectError("the model server refused the connection"))
        served = self._serve(conn, request, kind, number)
        if served is None:
            return Reply.with_status(404, json.dumps({"error": {"message": "unknown cursor"}}))
        owner = request.url.split("/responses/", 1)[1].split("?", 1)[0] if request.method == "GET" else None
        return self._reply(conn, *served, owner=owner)

    def _kind(self, request: HTTPRequest) -> str:
        if request.method == "GET" or any(k.lower() == "last-event-id" for k in request.headers):
            return "cursor"
        body = request.json or {}
        messages = body.get("messages") or []
        if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant":
            return "prefill"
        return "plain"

    def _serve(self, conn: Conn, request: HTTPRequest, kind: str,
               number: int) -> tuple[int, Flags, list[str], int, str] | None:
        """(answer, flags, tokens, first event index to send, final text)."""
        sc = self.scenario
        if conn.act == "different" and self.finish_only and "finished-then-different" in sc.avoid:
            conn = dataclasses.replace(conn, act="honest")
            self.drawn["another answer after a late cut (hole finished-then-different): honest instead"] += 1
        if kind == "prefill" and "prefill-restart:ids" in sc.avoid and conn.act != "honest" and conn.ids != "none":
            conn = dataclasses.replace(conn, ids="none", same_prefix=False)
            self.drawn["prefill answered without ids (hole prefill-restart:ids)"] += 1
        fresh = Flags(cid=f"c{number}", prefix=f"c{number}", ids=conn.ids, background=sc.background)
        if conn.act in ("restart", "different"):
            answer = min(conn.answer, len(sc.answers) - 1) if conn.act == "different" else self.current
            model = self.first.get(answer) or self.first.get(0) or fresh
            if self._detectable(conn, request, kind, answer, model):
                self.current = answer
                flags = Flags(role=conn.role, cid=model.cid if conn.same_cid else fresh.cid,
                              prefix=model.prefix if conn.same_prefix else fresh.prefix,
                              ids=model.ids if conn.same_prefix else conn.ids, background=sc.background)
                self.drawn[f"{kind}->{conn.act}:{'role' if conn.role else 'no-role'}"] += 1
                self.drawn[f"same-cid:{conn.same_cid}"] += 1
                self.drawn[f"same-prefix:{conn.same_prefix}"] += 1
                return answer, flags, list(sc.answers[answer]), 0 if conn.role else -1, sc.text(answer)
            self.drawn[f"undetectable {kind}->{conn.act}: honest instead"] += 1
        if kind == "cursor":
            return self._continue(request)
        if kind == "prefill":
            return self._prefill(conn, request, fresh)
        return self.current, fresh, list(sc.answers[self.current]), 0, sc.text(self.current)

    def _detectable(self, conn: Conn, request: HTTPRequest, kind: str, answer: int, model: Flags) -> bool:
        """Whether a client can tell this restart from an honest answer (the
        rows of the README's decision table); when it cannot, the model's
        server answers honestly instead."""
        if kind == "plain":
            return True  # a replay is checked against what was delivered
        text = self.scenario.text(answer)
        delivered = self._delivered(request, kind)
        shared = len(_common_prefix(text, delivered))
        repeats_start = shared >= min(len(delivered), SIMILAR_START)
        if kind == "prefill":
            return repeats_start  # a continuation never begins by repeating the answer's own beginning
        if conn.role:
            return True
        if self.scenario.dialect == RESPONSES:
            return False  # re-sent sequence numbers look like a resend of the same events
        colliding = conn.same_prefix and model.ids != "none" and self._first_id_seen(answer, model)
        return repeats_start or colliding or (self.scenario.dialect == CHAT and not conn.same_cid)

    def _first_id_seen(self, answer: int, model: Flags) -> bool:
        """Reused SSE ids tell another answer apart only when the first one
        sent (no start event) is an id the client already has: ids it has not
        seen yet look like an honest continuation (the README's table)."""
        rendered = render(self.scenario.dialect, list(self.scenario.answers[answer]),
                          dataclasses.replace(model, role=False))
        first = next((ident for ident in rendered.ids[rendered.first:] if ident is not None), None)
        return first is not None and first in self.sent

    def _delivered(self, request: HTTPRequest, kind: str) -> str:
        """At least what the client delivered before sending ``request``."""
        sc = self.scenario
        if kind == "prefill":
            return str(request.json["messages"][-1]["content"])
        found = self._cursor(request)
        if found is None:
            return ""
        served, index = found
        first = _FIRST[sc.dialect]
        after = "".join(served.tokens[max(0, index - first + 1):])
        return served.final[: len(served.final) - len(after)]

    def _cursor(self, request: HTTPRequest) -> tuple[Served, int] | None:
        """(answer, flags, index of the last event the client has) for a cursor request."""
        if request.method == "GET":  # Responses: /responses/{id}?stream=true&starting_after=N
            rid = request.url.split("/responses/", 1)[1].split("?", 1)[0]
            if rid not in self.responses:
                return None
            return self.responses[rid], int(request.url.rpartition("starting_after=")[2])
        last = next(v for k, v in request.headers.items() if k.lower() == "last-event-id")
        return self.sent.get(_from_wire(last))

    def _continue(self, request: HTTPRequest) -> tuple[int, Flags, list[str], int, str] | None:
        found = self._cursor(request)
        if found is None:
            return None
        served, index = found
        self.current = served.answer
        return served.answer, served.flags, list(served.tokens), index + 1, served.final

    def _prefill(self, conn: Conn, request: HTTPRequest,
                 fresh: Flags) -> tuple[int, Flags, list[str], int, str]:
        """Continue the prefilled text; ``partial-prefill`` echoes the prefill first."""
        prefill = str(request.json["messages"][-1]["content"])
        sc = self.scenario
        answer = next((i for i in (self.current, *range(len(sc.answers))) if sc.text(i).startswith(prefill)),
                      self.current)
        text = sc.text(answer)
        final = prefill + text[len(prefill):]
        rest = final if conn.act == "partial-prefill" else text[len(prefill):]
        return answer, fresh, [rest[i:i + 4] for i in range(0, len(rest), 4)], 0, final

    def _reply(self, conn: Conn, answer: int, flags: Flags, tokens: list[str], start: int, final: str,
               owner: str | None = None) -> Reply:
        """The reply; registers what the client got (ids, response ids, finished answers).
        ``owner``: the response a Responses ``GET`` asked for."""
        sc = self.scenario
        rendered = render(sc.dialect, tokens, flags)
        served = Served(answer, flags, tuple(tokens), final)
        if start < 0:  # no start event
            start = rendered.first
        self.first.setdefault(answer, flags)
        # (bytes, SSE id, index in the rendering); inserted events have index -1
        events = [(rendered.events[i], rendered.ids[i], i) for i in range(start, len(rendered.events))]
        self.possible.add(final)
        self.drawn[f"ids:{flags.ids}"] += sc.dialect != RESPONSES
        at = int(conn.where * len(events))
        if conn.nonprogress:
            self.drawn["nonprogress"] += 1
            events[at:at] = [(nonprogress_event(sc.dialect, flags.cid, n), None, -1) for n in range(conn.nonprogress)]
        if conn.error is not None:
            self.drawn[f"error:{conn.error}"] += 1
            events[at:] = [(error_event(sc.dialect, conn.error == "retryable", start + at + 100), None, -1)]
        total = sum(len(e[0]) for e in events)
        after = total if conn.cut is None else int(conn.at * total)
        finish = len(rendered.events) - (1 if sc.dialect == RESPONSES else 2)
        offset = 0
        for data, ident, index in events:
            offset += len(data)
            if offset > after:
                break
            if sc.dialect == RESPONSES and index >= 0:  # the server continues the latest stream under a response id
                self.responses[flags.cid if index == 0 else owner or flags.cid] = served
            if ident is not None:
                # a repeated id is continued after its first event in that rendering; another
                # rendering that reuses it (colliding ids) takes it over
                known = self.sent.get(ident)
                if known is None or known[0] != served:
                    self.sent[ident] = (served, index)
            if index == finish:
                self.finished.add(final)  # whole once its finish arrived, even without the terminal marker
                self.finish_only = after < total
        if start > finish and conn.error is None:
            self.finished.add(final)
        chunks = [e[0] for e in events]
        if conn.cut is None:
            return Reply(chunks)
        self.drawn[f"cut:{conn.cut}"] += 1
        return Reply(chunks, end=conn.cut, after=after)


def _from_wire(value: str) -> str:
    """A header value as the server reads it: its bytes (Latin-1, as HTTP
    libraries send a ``str``) decoded as UTF-8, as browsers send ``Last-Event-ID``."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _common_prefix(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return a[:n]
