"""What one stream delivered: :class:`Delivered`.

The answer's text, reasoning and tool calls live in the stream's
:class:`~holysse.accumulator.Accumulator` (held once); :class:`Delivered`
keeps the rest the resume core decides with: the lengths per channel, the
tool calls announced, the content events, the cursor together with the
exact delivered :class:`Position` it belongs to, the SSE ids already
delivered (:class:`EventIds`, bounded), and the id of the generation the
text comes from. Nothing here grows with the number of events.

No I/O, no clock.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Mapping

from ._limits import AnswerBudget
from .accumulator import Accumulator
from .dialects.base import ResumeState
from .events import Event, Finished, Reset, TextDelta, ThinkingDelta, ToolCallDelta

__all__ = ["Delivered", "EventIds", "Position"]


@dataclass(frozen=True)
class Position:
    """Delivered lengths per channel: where a cursor points in the answer
    (a cursor resume sends again only what came after)."""

    text: int = 0
    thinking: int = 0
    tools: Mapping[int, int] = field(default_factory=dict)

    def after(self, base: Position) -> Position:
        """This position, counted from ``base`` instead of the answer's start."""
        tools = dict(base.tools)
        for index, length in self.tools.items():
            tools[index] = tools.get(index, 0) + length
        return Position(base.text + self.text, base.thinking + self.thinking, tools)


class EventIds:
    """The SSE ids of the last :attr:`WINDOW` events delivered, to catch a
    server that answers a ``Last-Event-ID`` by sending again events already
    delivered (their text would be delivered twice).

    Ids are opaque strings, so only ids seen before are caught, not an
    order. Only their hashes are kept, in a bounded window: memory does not
    grow with the number or the size of the ids.
    """

    WINDOW = 4096

    __slots__ = ("_seen", "_order", "_current")

    def __init__(self) -> None:
        self._seen: set[int] = set()
        self._order: deque[int] = deque()
        self._current = ""

    def new_connection(self) -> None:
        """A new connection starts: its first id is checked even if equal to
        the last one seen."""
        self._current = ""

    def seen(self, event_id: str) -> bool:
        """Record ``event_id`` (sticky ids repeat it: ignored); whether it was
        delivered before (on an earlier event of this or another connection)."""
        if not event_id or event_id == self._current:
            return False
        self._current = event_id
        key = hash(event_id)
        if key in self._seen:
            return True
        self._seen.add(key)
        self._order.append(key)
        if len(self._order) > self.WINDOW:
            self._seen.discard(self._order.popleft())
        return False


class Delivered:
    """What the consumer received, beyond the text the accumulator holds.

    :param acc: the accumulator the events go to.
    :param max_answer_chars: the answer size limit.
    """

    def __init__(self, acc: Accumulator, max_answer_chars: int | None) -> None:
        self.acc = acc
        self.budget = AnswerBudget(max_answer_chars)
        self.thinking_len = 0
        self.tool_lens: dict[int, int] = {}
        self.tool_names: dict[int, str | None] = {}
        #: Content events delivered (about one token each).
        self.content_events = 0
        #: Where a cursor resume continues from, and the position it belongs to.
        self.cursor: Any = None
        self.position = Position()
        #: The generation (completion/message/response id) the text comes from.
        self.generation: str | None = None
        self.ids = EventIds()
        self.finished = False
        #: Guards the cursor and position against :meth:`checkpoint_state` in another thread.
        self.lock = threading.Lock()

    def add(self, event: Event) -> bool:
        """Deliver ``event``; whether it was progress (new content, a first
        finish), as opposed to a repeat that says nothing new.

        :raises ProtocolError: the answer passed ``max_answer_chars``.
        """
        kind = type(event)
        progress = True
        if kind is TextDelta:
            self.budget.spend(len(event.text))
            self.content_events += 1
            self.finished = False  # content after a finish: that finish was not this answer's end
        elif kind is ThinkingDelta:
            self.budget.spend(len(event.thinking))  # type: ignore[union-attr]
            self.content_events += 1
            self.thinking_len += len(event.thinking)  # type: ignore[union-attr]
            self.finished = False
        elif kind is ToolCallDelta:
            progress = self._tool(event)  # type: ignore[arg-type]
            self.finished = False
        elif kind is Finished:
            progress = not self.finished
            self.finished = True
        elif kind is Reset:
            self.reset()
        else:
            progress = False  # usage, lifecycle: says nothing new about the answer
        self.acc.add(event)
        return progress

    def _tool(self, event: ToolCallDelta) -> bool:
        index, names = event.index, self.tool_names
        new = index not in names
        renamed = event.name is not None and names.get(index) != event.name
        # A new call costs its announcement, so endless empty calls hit the budget.
        self.budget.spend(len(event.arguments) + (len(event.id or "") + len(event.name or "") + 16 if new else 0))
        self.content_events += 1
        self.tool_lens[index] = self.tool_lens.get(index, 0) + len(event.arguments)
        if new or event.name:
            names[index] = event.name or names.get(index)
        return bool(event.arguments) or new or renamed

    def move_cursor(self, cursor: Any, position: Position | None = None) -> None:
        """The cursor moved to ``cursor``, which points at ``position`` (by
        default: everything delivered so far)."""
        if position is None:
            position = Position(len(self.acc), self.thinking_len, dict(self.tool_lens))
        with self.lock:
            self.cursor, self.position = cursor, position

    def here(self) -> Position:
        """Everything delivered so far, as a position."""
        return Position(len(self.acc), self.thinking_len, dict(self.tool_lens))

    def reset(self) -> None:
        """The text was taken back: everything starts over."""
        self.budget.reset()
        self.thinking_len = 0
        self.tool_lens = {}
        self.tool_names = {}
        self.finished = False
        self.generation = None
        with self.lock:
            self.cursor, self.position = None, Position()

    def state(self, text: str | None = None) -> ResumeState:
        """What a dialect needs to build a resume request."""
        return ResumeState(
            text=self.acc.text if text is None else text,
            cursor=self.cursor,
            output_events=self.content_events,
            tool_calls_open=bool(self.tool_names),
            thinking=self.acc.thinking,
        )
