"""Typed events a :class:`~holysse.stream.Stream` yields.

Every event has a ``text`` attribute (``""`` for events that carry no answer
text), so ``print(event.text, end="")`` always works. Events are frozen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Union

__all__ = [
    "TextDelta",
    "ThinkingDelta",
    "ToolCallDelta",
    "ToolCall",
    "Usage",
    "Finished",
    "Reconnecting",
    "Resumed",
    "Reset",
    "Event",
]


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the answer text."""

    text: str


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    """A piece of the model's reasoning, kept apart from the answer."""

    thinking: str
    text: ClassVar[str] = ""


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a tool call. Deltas with the same ``index`` belong together;
    ``id`` and ``name`` come with the first one, ``arguments`` is a JSON
    fragment to concatenate."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    text: ClassVar[str] = ""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A complete tool call, as assembled by the accumulator."""

    index: int
    id: str | None
    name: str | None
    arguments: str

    def parsed_arguments(self) -> Any:
        """The arguments decoded from JSON (``{}`` when empty)."""
        import json

        return json.loads(self.arguments) if self.arguments else {}


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts reported by the server for one connection."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    text: ClassVar[str] = ""

    @property
    def prompt_tokens(self) -> int | None:
        """OpenAI's name for :attr:`input_tokens`."""
        return self.input_tokens

    @property
    def completion_tokens(self) -> int | None:
        """OpenAI's name for :attr:`output_tokens`."""
        return self.output_tokens


@dataclass(frozen=True, slots=True)
class Finished:
    """The model finished its answer. ``reason`` is the provider's finish or
    stop reason (``"stop"``, ``"length"``, ``"tool_calls"``, ``"end_turn"``, ...)."""

    reason: str | None
    text: ClassVar[str] = ""


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """The connection broke (or was refused); holysse waits ``delay`` seconds
    and tries again. ``attempt`` counts from 1."""

    attempt: int
    delay: float
    reason: str
    text: ClassVar[str] = ""


@dataclass(frozen=True, slots=True)
class Resumed:
    """A new connection is delivering the answer again.

    ``strategy`` is ``"retry"`` (nothing had arrived yet), ``"cursor"``,
    ``"prefill"`` or ``"replay"``; ``resent_chars`` is how many characters
    the server sent again and holysse dropped (verified equal)."""

    strategy: str
    attempt: int
    resent_chars: int = 0
    text: ClassVar[str] = ""


@dataclass(frozen=True, slots=True)
class Reset:
    """Text delivered so far is withdrawn: the new answer differs from it.
    Clear what you showed and start again from the events that follow.
    ``delivered`` is the withdrawn text."""

    delivered: str
    reason: str
    text: ClassVar[str] = ""


Event = Union[TextDelta, ThinkingDelta, ToolCallDelta, Usage, Finished, Reconnecting, Resumed, Reset]

