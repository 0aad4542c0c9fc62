"""Drawing scenarios (:class:`~tests.model_server.Scenario`) from a seed, the
behaviours a scenario shows (what ``KNOWN_HOLES`` name), scenarios built on
purpose for holes that need several connections in a row, and printing one.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Iterable

from .model_server import ACTS, CUTS, RUNTIME_HOLES, Conn, Scenario
from .model_wire import ANTHROPIC, CHAT, DIALECTS, ID_SCHEMES, RESPONSES

__all__ = ["draw", "describe", "features", "scenario_features"]

_WORDS = [" alpha", " bravo", " charlie", " delta", " echo", " foxtrot", " golf", " hotel", " india", " juliet",
          " kilo", " lima", " mike", " november", " oscar", " papa", " quebec", " romeo", " sierra", " tango",
          " é", " 日本", "ß", ".\n", "end. ", " x", "y", " zulu", " über", "  two", " ok", " 語"]
_OTHER = [" ONE", " TWO", " THREE", " FOUR", " FIVE", " SIX", " SEVEN", " EIGHT", " NINE", " TEN", " Ñ", " 中"]


def _answers(rng: random.Random) -> tuple[tuple[str, ...], ...]:
    true = tuple(rng.sample(_WORDS, rng.randint(2, 9)))
    answers = [true]
    for _ in range(rng.randint(0, 2)):
        shared = rng.randint(0, len(true))
        answers.append(true[:shared] + tuple(rng.sample(_OTHER, rng.randint(1, 6))))
    return tuple(answers)


def _conn(rng: random.Random, answers: int, holes: frozenset[str]) -> Conn:
    while True:
        act = rng.choices(ACTS, weights=(32, 14, 12, 10, 13, 5, 5))[0]
        streaming = act not in ("status", "stall-head", "open-error")
        cut = rng.choice(CUTS) if streaming and rng.random() < 0.65 else None
        conn = Conn(
            act=act,
            role=rng.random() < 0.5,
            same_cid=rng.random() < 0.5,
            same_prefix=rng.random() < 0.5,
            ids=rng.choice(ID_SCHEMES) if rng.random() < 0.5 else "plain",
            answer=rng.randint(1, max(1, answers - 1)),
            cut=cut,
            at=rng.random(),
            status=rng.choice((429, 500, 502, 503, 529)),
            retry_after=rng.randint(0, 3),
            nonprogress=rng.randint(1, 30) if streaming and rng.random() < 0.15 else 0,
            error=(rng.choice(("retryable", "retryable", "fatal")) if streaming and rng.random() < 0.1 else None),
            where=rng.random(),
        )
        if not (holes & features(conn)):
            return conn


def features(conn: Conn) -> set[str]:
    """The behaviours a connection shows (what KNOWN_HOLES name)."""
    found = {conn.act, f"ids:{conn.ids}"}
    if conn.act in ("restart", "different"):
        found.add(f"{conn.act}:{'role' if conn.role else 'no-role'}")
        if conn.same_prefix:  # the first rendering's ids again (unless it had none)
            found.add(f"{conn.act}:colliding-ids")
        elif conn.ids == "none":
            found.add(f"{conn.act}:without-ids")
    if conn.cut:
        found.add(f"cut:{conn.cut}")
    if conn.error:
        found.add(f"error:{conn.error}")
    if conn.nonprogress:
        found.add("nonprogress")
    return found


def scenario_features(sc: Scenario) -> set[str]:
    """The behaviours of a scenario: its connections', and ``mixed-ids`` (some
    connections send SSE ids, some do not: a replay may bring ids), and
    ``ends-like-start`` (the true answer's last characters, up to 4, are also its first)."""
    found = {f"dialect:{sc.dialect}", f"resume:{sc.resume}"}
    for conn in sc.conns:
        found |= features(conn)
    streaming = [c for c in sc.conns if c.act not in ("status", "stall-head", "open-error")]
    if sc.dialect != RESPONSES and {c.ids == "none" for c in streaming} == {True, False}:
        found.add("mixed-ids")
    text = sc.text(0)
    if any(text[-k:] == text[:k] for k in range(1, min(5, len(text)))):
        found.add("ends-like-start")
    return found


def draw(seed: int, holes: Iterable[str] = (), force: str | None = None) -> Scenario:
    """The scenario of ``seed``, showing no behaviour in ``holes``; with
    ``force``, one that shows that behaviour."""
    rng = random.Random(seed)
    blocked = frozenset(holes) - {force}
    if force in _BUILT:
        return _BUILT[force](rng, seed, blocked)
    for _ in range(1000):
        sc = _draw(rng, seed, blocked)
        found = scenario_features(sc)
        if not found & blocked and (force is None or force in found):
            return sc
    raise AssertionError(f"no scenario without {sorted(blocked)} and with {force} from seed {seed}")


def _prefill_restart(rng: random.Random, seed: int, blocked: frozenset[str]) -> Scenario:
    """A cut without SSE ids (the next resume is a prefill), answered by a
    restart or an echo that carries ids, cut; then what comes."""
    while True:
        sc = _draw(rng, seed, blocked)
        if sc.dialect == RESPONSES or sc.provider == "generic":
            continue
        first = Conn(ids="none", cut=rng.choice(CUTS), at=rng.random())
        restart = Conn(act=rng.choice(("restart", "partial-prefill")), cut=rng.choice(CUTS), at=rng.random(),
                       ids=rng.choice(("plain", "backwards", "non-ascii")))
        return dataclasses.replace(sc, conns=(first, restart, *sc.conns[:2]), resume=rng.choice(("auto", "prefill")))


def _colliding(rng: random.Random, seed: int, blocked: frozenset[str]) -> Scenario:
    """A cut, another answer reusing the first connection's SSE ids, then a
    connection that leaves the stream without a cursor of its own, cut."""
    while True:
        sc = _draw(rng, seed, blocked)
        if sc.dialect == RESPONSES or len(sc.answers) < 2:
            continue
        conns = (Conn(cut=rng.choice(CUTS), at=rng.uniform(0.3, 1.0), nonprogress=rng.choice((0, 20)), where=0.97),
                 Conn(act="different", same_prefix=True, cut=rng.choice((None, *CUTS)), at=rng.random()),
                 Conn(ids="none", cut=rng.choice(CUTS), at=rng.random()), *sc.conns[:1])
        return dataclasses.replace(sc, conns=conns)


def _without_ids(rng: random.Random, seed: int, blocked: frozenset[str]) -> Scenario:
    """A cut with SSE ids, another answer without ids (a Reset), cut before its end."""
    while True:
        sc = _draw(rng, seed, blocked)
        if sc.dialect == RESPONSES or len(sc.answers) < 2:
            continue
        conns = (Conn(cut=rng.choice(CUTS), at=rng.uniform(0.3, 1.0)),
                 Conn(act="different", ids="none", cut=rng.choice(CUTS), at=rng.uniform(0.3, 0.9)), *sc.conns[:1])
        return dataclasses.replace(sc, conns=conns)


def _finished_then_different(rng: random.Random, seed: int, blocked: frozenset[str]) -> Scenario:
    """The finish arrives, the terminal marker does not; the resume is
    answered by another answer that extends the delivered one, cut."""
    while True:
        sc = _draw(rng, seed, blocked)
        if sc.dialect == RESPONSES:
            continue
        true = sc.answers[0]
        longer = true + tuple(rng.sample(_OTHER, rng.randint(1, 4)))
        conns = (Conn(cut=rng.choice(CUTS), at=rng.uniform(0.97, 0.9999)),
                 Conn(act="different", cut=rng.choice(CUTS), at=rng.uniform(0.3, 0.8)), *sc.conns[:1])
        return dataclasses.replace(sc, answers=(true, longer), conns=conns)


#: Holes whose scenarios are built on purpose (they need several connections in a row).
_BUILT = {"prefill-restart:ids": _prefill_restart, "different:colliding-ids": _colliding,
          "different:without-ids": _without_ids, "finished-then-different": _finished_then_different}


def _draw(rng: random.Random, seed: int, blocked: frozenset[str]) -> Scenario:
    dialect = rng.choice(DIALECTS)
    provider = {CHAT: rng.choice(("generic", "vllm", "deepseek")), ANTHROPIC: "anthropic"}.get(dialect, "generic")
    answers = _answers(rng)
    conns = tuple(_conn(rng, len(answers), blocked) for _ in range(rng.randint(1, 4)))
    resume = rng.choices(("auto", "cursor", "prefill", "replay"), weights=(40, 20, 20, 20))[0]
    divergence = "reset" if rng.random() < 0.85 else "raise"
    return Scenario(dialect, resume, provider, divergence, answers, conns, rng.random() < 0.75, seed,
                    blocked & RUNTIME_HOLES)


def describe(sc: Scenario) -> str:
    """A readable scenario."""
    lines = [f"Scenario(seed={sc.seed}): dialect={sc.dialect} resume={sc.resume} provider={sc.provider} "
             f"on_divergence={sc.divergence}" + (f" background={sc.background}" if sc.dialect == RESPONSES else "")
             + (f" avoid={sorted(sc.avoid)}" if sc.avoid else "")]
    for number, tokens in enumerate(sc.answers):
        lines.append(f"  answer {number}{' (true)' if number == 0 else ''}: {list(tokens)}")
    default = Conn()
    for number, conn in enumerate(sc.conns, 1):
        changed = {k: v for k, v in conn.__dict__.items() if getattr(default, k) != v}
        lines.append(f"  connection {number}: {conn.act} {changed}")
    lines.append(f"  connection {len(sc.conns) + 1}...: honest")
    return "\n".join(lines)
