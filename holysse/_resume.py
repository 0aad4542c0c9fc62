"""Resume strategies and the filter that keeps a resumed stream duplicate-free.

After a cut, a new connection may send part of the answer again: all of it
(``replay``), what followed the last SSE id when ids were sparse (``cursor``),
or whitespace held back from a prefilled message (``prefill``). The
:class:`ResendFilter` checks that what comes again equals what was delivered,
drops it, and lets only new content through. When it differs, the answer has
*diverged*: a replay resets (or raises), the other strategies fall back to
replay. :class:`PrefillGuard` catches a resumed connection that starts the
answer over instead of continuing it.

Whitespace held back from a prefill is a *seam*: the model writes its own
whitespace there. When that begins with what was held back (the usual case),
the held part is dropped; when it does not, the model's whitespace is dropped
instead, since what was delivered cannot be taken back. Either way no text is
repeated and none is lost; only the whitespace at the seam may differ from
what the model would have written without the cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from ._delivered import Position
from .events import Event, Finished, Reset, TextDelta, ThinkingDelta, ToolCallDelta
from .exceptions import StreamDiverged

__all__ = [
    "Expectation", "PrefillGuard", "ResendFilter", "ResendTally", "ResumeMismatch", "ResumeRefused", "expected_again",
]

class ResumeMismatch(Exception):
    """Internal: a cursor or prefill connection did not re-send what it should;
    the stream falls back to replay."""


class ResumeRefused(ResumeMismatch):
    """The server refused a cursor or prefill resume request."""


class PrefillGuard:
    """Catches a server that ignored a prefill and answered afresh.

    A prefilled request should continue the delivered text; a server that
    does not support the flavour sent (or a gateway that drops it) starts the
    answer over instead. The guard holds back a prefill connection's first
    events while their text repeats the delivered text from its start: at the
    first character that differs they are released (a true continuation,
    usually at once); when they repeat all of it, or the answer ends in the
    middle of it, the server :attr:`restarted` and the loop treats the
    connection as a replay (verified, re-sent text dropped). A true
    continuation never begins by repeating the answer's own beginning: when
    the first ``min_match`` characters or more repeat it and then the text
    differs, the server answered a similar new turn, and the guard raises
    :class:`ResumeMismatch` (the stream falls back to a replay request).

    Also used on cursor connections that should send nothing again.

    :param delivered: the answer text delivered before the cut.
    :param min_match: characters of the start that may coincide (``0``:
        any partial repeat is released as a continuation).
    """

    __slots__ = ("_delivered", "_pos", "_held", "_min", "active", "restarted")

    def __init__(self, delivered: str, *, min_match: int = 0) -> None:
        self._delivered = delivered
        self._min = min(min_match, len(delivered)) if min_match else 0
        self._pos = 0
        self._held: list[Event] = []
        #: Still holding events back.
        self.active = bool(delivered)
        #: The connection repeats the answer from its start.
        self.restarted = False

    def feed(self, events: list[Event]) -> list[Event]:
        """The events to process now: ``[]`` while holding, then every held
        event and the rest (check :attr:`restarted` to know how)."""
        if not self.active:
            return events
        for i, event in enumerate(events):
            self._held.append(event)
            kind = type(event)
            if kind is TextDelta:
                self._match(event.text)
            elif kind is Finished:
                self.restarted = self._repeated()  # ended inside the delivered text
                self.active = False
            elif kind in (ThinkingDelta, ToolCallDelta):
                self.active = False
            if not self.active:
                held, self._held = self._held, []
                return held + events[i + 1 :]
        return []

    def end(self) -> list[Event]:
        """The connection reached its terminal marker: release what is held
        (the server :attr:`restarted` if it ended inside the delivered text)."""
        if not self.active:
            return []
        self.active, self.restarted = False, self._repeated()
        held, self._held = self._held, []
        return held

    def _repeated(self) -> bool:
        """The text so far repeats the delivered start, beyond whitespace (a
        prefill's held-back whitespace, sent again, is not a repeat)."""
        return self._pos > 0 and bool(self._delivered[: self._pos].strip())

    def release(self) -> list[Event]:
        """Stop holding: the events held so far."""
        self.active = False
        held, self._held = self._held, []
        return held

    def _match(self, text: str) -> None:
        delivered, pos = self._delivered, self._pos
        size = min(len(text), len(delivered) - pos)
        if not delivered.startswith(text[:size], pos):
            self.active = False
            if self._min:
                same = 0
                while same < size and text[same] == delivered[pos + same]:
                    same += 1
                if pos + same >= self._min and delivered[: pos + same].strip():
                    raise ResumeMismatch(
                        f"the resumed connection re-sent the first {pos + same} characters of the answer, then "
                        "differed: the server ignored the resume and answered a new turn"
                    )
            return
        self._pos = pos + len(text)
        if self._pos >= len(delivered):
            self.active, self.restarted = False, True


@dataclass
class Expectation:
    """What a resumed connection will send again, per channel."""

    text: str = ""
    thinking: str = ""
    tool_arguments: dict[int, str] = field(default_factory=dict)
    #: tool-call indices already announced (their id and name were delivered)
    known_tools: dict[int, str | None] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.text or self.thinking or any(self.tool_arguments.values()) or self.known_tools)


def expected_again(
    strategy: str, held: str, mark: Position, *, text: str, thinking: str,
    tool_args: dict[int, str], tool_names: Mapping[int, str | None],
) -> Expectation:
    """What a connection resumed by ``strategy`` sends again before anything
    new: all that was delivered (``replay``), the text held back from the
    prefilled message (``prefill``), or what came after ``mark`` (``cursor``)."""
    if strategy == "replay":
        return Expectation(text, thinking, tool_args, dict(tool_names))
    if strategy == "prefill":
        return Expectation(text=held)
    return Expectation(
        text[mark.text:],
        thinking[mark.thinking:],
        {i: args[mark.tools.get(i, 0):] for i, args in tool_args.items()},
        {i: n for i, n in tool_names.items() if i in mark.tools},
    )


class ResendFilter:
    """Filters one resumed connection's events.

    :param expected: what the server will send again.
    :param strategy: the strategy in use (decides what divergence does).
    :param on_divergence: ``"reset"`` or ``"raise"`` (replay only).
    :param delivered: the text delivered so far (for :class:`Reset` and errors).
    """

    def __init__(self, expected: Expectation, strategy: str, on_divergence: str, delivered: str) -> None:
        self._text = expected.text
        self._text_pos = 0
        #: a prefill seam: whitespace only is expected, the model's own is buffered here
        self._seam: str | None = "" if strategy == "prefill" and expected.text and not expected.text.strip() else None
        self._thinking = expected.thinking
        self._thinking_pos = 0
        self._tools = dict(expected.tool_arguments)
        self._tool_pos = dict.fromkeys(self._tools, 0)
        self._known_tools = dict(expected.known_tools)
        self._strategy = strategy
        self._on_divergence = on_divergence
        self._delivered = delivered
        self._seen: list[Event] = []
        #: Characters the server sent again that were dropped.
        self.resent_chars = 0
        #: Content events (about one token each) that were entirely re-sent.
        self.resent_events = 0
        self._checking = True
        #: Characters this connection is expected to send again.
        self.expected_chars = len(self._text) + len(self._thinking) + sum(map(len, self._tools.values()))
        #: False once the filter has nothing left to do.
        self.active = True

    @property
    def checking(self) -> bool:
        """Still dropping (and checking) text the server sends again."""
        return self.active and self._checking

    @property
    def expects_text(self) -> bool:
        """The connection should send answer text again first."""
        return bool(self._text)

    def position(self) -> Position:
        """How far the server has re-sent, per channel, counted from the
        start of what it was expected to send again."""
        return Position(self._text_pos, self._thinking_pos, {i: p for i, p in self._tool_pos.items() if p})

    def feed(self, event: Event) -> list[Event]:
        """The events to deliver for ``event`` (often none while re-sending)."""
        if not self.active:
            return [event]
        checking = self._checking
        if checking and self._strategy == "replay":
            self._seen.append(event)
        try:
            out = self._filter(event)
        except _Diverged as diverged:
            return self._diverge(diverged.reason)
        if checking and not self._pending():
            self._checking = False
            self._seen = []
        # Tool calls announced before the cut must not be announced twice.
        self.active = self._checking or bool(self._known_tools)
        return out

    def end(self) -> list[Event]:
        """The stream reached its terminal marker: anything still expected
        never came, so the answer diverged."""
        if self.active and self._checking and self._pending() and self._seam is None:
            return self._diverge("the new answer ended before reaching the text already delivered")
        return []

    def _filter(self, event: Event) -> list[Event]:
        if isinstance(event, TextDelta):
            rest = self._consume_text(event.text)
            return [TextDelta(rest)] if rest else self._dropped()
        if isinstance(event, ThinkingDelta):
            rest = self._consume_thinking(event.thinking)
            return [ThinkingDelta(rest)] if rest else self._dropped()
        if isinstance(event, ToolCallDelta):
            return self._tool_delta(event)
        if isinstance(event, Finished) and self._pending() and self._seam is None:
            raise _Diverged(f"the new answer ended ({event.reason}) before reaching the text already delivered")
        return [event]

    def _dropped(self) -> list[Event]:
        self.resent_events += 1
        return []

    def _consume_text(self, text: str) -> str:
        if self._seam is not None and self._text_pos < len(self._text):
            return self._consume_seam(text)
        n = self._resent(self._text, self._text_pos, text, "answer differs from the delivered text")
        self._text_pos += n
        return text[n:]

    def _resent(self, expected: str, pos: int, text: str, what: str) -> int:
        """How many characters at the start of ``text`` repeat ``expected``
        from ``pos`` (all that overlap must).

        :raises _Diverged: they differ.
        """
        n = min(len(text), len(expected) - pos)
        if n <= 0:
            return 0
        if not expected.startswith(text[:n], pos):
            raise _Diverged(f"the new {what} at character {pos}")
        self.resent_chars += n
        return n

    def _consume_seam(self, text: str) -> str:
        """Buffer the model's leading whitespace; at its first other character
        drop the held-back whitespace (or the model's, see the module docstring)."""
        assert self._seam is not None
        rest = text.lstrip()
        self._seam += text[: len(text) - len(rest)]
        if not rest:
            return ""
        held, run = self._text, self._seam
        self._text_pos = len(held)
        self.resent_chars += len(held) if run.startswith(held) else len(run)
        return (run[len(held):] if run.startswith(held) else "") + rest

    def _consume_thinking(self, text: str) -> str:
        n = self._resent(self._thinking, self._thinking_pos, text, "reasoning differs from the delivered one")
        self._thinking_pos += n
        return text[n:]

    def _tool_delta(self, event: ToolCallDelta) -> list[Event]:
        index = event.index
        ident, name = event.id, event.name
        if index in self._known_tools:
            if name is not None and self._known_tools[index] not in (None, name):
                raise _Diverged(f"tool call {index} now calls {name!r}, not {self._known_tools[index]!r}")
            ident = name = None
        pos = self._tool_pos.get(index, 0)
        n = self._resent(self._tools.get(index, ""), pos, event.arguments, f"tool call {index} arguments differ")
        if n:
            self._tool_pos[index] = pos + n
        arguments = event.arguments[n:]
        if ident is None and name is None and not arguments:
            return self._dropped()
        return [ToolCallDelta(index, ident, name, arguments)]

    def _pending(self) -> bool:
        return (
            self._text_pos < len(self._text)
            or self._thinking_pos < len(self._thinking)
            or any(self._tool_pos[i] < len(args) for i, args in self._tools.items())
        )

    def _diverge(self, reason: str) -> list[Event]:
        self.active = self._checking = False
        if self._strategy != "replay":
            raise ResumeMismatch(f"{self._strategy} resume did not match: {reason}")
        if self._on_divergence == "raise":
            replayed = "".join(e.text for e in self._seen)
            raise StreamDiverged(
                f"The replayed answer diverged: {reason}. The partial answer is in exc.partial; "
                "pass a seed (or temperature=0) for replays that match, or on_divergence='reset'.",
                partial=self._delivered,
                replayed=replayed,
            )
        seen, self._seen = self._seen, []
        return [Reset(self._delivered, f"replay diverged: {reason}"), *seen]


class _Diverged(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ResendTally:
    """What resumed connections sent again (and holysse dropped) over a
    whole stream: finished connections' filters are folded into the totals,
    the current one counts as it goes."""

    __slots__ = ("_chars", "_events", "_current")

    def __init__(self) -> None:
        self._chars = self._events = 0
        self._current: ResendFilter | None = None

    def follow(self, flt: ResendFilter | None) -> None:
        """Fold the current connection's filter in; count ``flt`` from now on."""
        if self._current is not None:
            self._chars += self._current.resent_chars
            self._events += self._current.resent_events
        self._current = flt

    @property
    def totals(self) -> tuple[int, int]:
        """Characters and content events sent again so far."""
        flt = self._current
        if flt is None:
            return self._chars, self._events
        return self._chars + flt.resent_chars, self._events + flt.resent_events
