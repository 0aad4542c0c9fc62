"""Typed events a :class:`~holysse.stream.Stream` yields.

Every event has a ``text`` attribute (``""`` for events that carry no answer
text), so ``print(event.text, end="")`` always works. Events are frozen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Union

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
    "PORTABLE_REASONS",
    "portable_reason",
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
    """Token counts reported by the server for one connection, with the same
    meaning in every dialect.

    :param input_tokens: the whole prompt, cached part included (Anthropic
        reports the cache reads and writes apart: they are added here).
    :param output_tokens: the generated tokens, reasoning included.
    :param total_tokens: input plus output.
    :param cached_input_tokens: the part of ``input_tokens`` read from the
        provider's prompt cache.
    :param reasoning_tokens: the part of ``output_tokens`` spent reasoning.
    :param raw: the usage object as the provider sent it (not compared).
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    raw: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    text: ClassVar[str] = ""

    @property
    def prompt_tokens(self) -> int | None:
        """OpenAI's name for :attr:`input_tokens`."""
        return self.input_tokens

    @property
    def completion_tokens(self) -> int | None:
        """OpenAI's name for :attr:`output_tokens`."""
        return self.output_tokens


#: The portable finish reasons (:attr:`Finished.reason`), the same in every dialect.
PORTABLE_REASONS = ("stop", "length", "tool_calls", "content_filter", "refusal", "other")

_PORTABLE = {
    **dict.fromkeys(("stop", "end_turn", "stop_sequence", "eos", "end", "completed"), "stop"),
    **dict.fromkeys(("length", "max_tokens", "max_output_tokens", "model_context_window_exceeded"), "length"),
    **dict.fromkeys(("tool_calls", "tool_use", "function_call"), "tool_calls"),
    **dict.fromkeys(("content_filter", "safety", "recitation", "blocklist", "prohibited_content", "spii"),
                    "content_filter"),
    "refusal": "refusal",
}


def portable_reason(raw: str | None) -> str | None:
    """The portable name (one of :data:`PORTABLE_REASONS`) of a provider's
    finish or stop reason: ``end_turn`` -> ``stop``, ``max_tokens`` ->
    ``length``, ``tool_use`` -> ``tool_calls`` ...; ``other`` for a reason
    with no portable meaning, ``None`` for none."""
    if raw is None:
        return None
    return _PORTABLE.get(raw.lower(), "other")


@dataclass(frozen=True, slots=True)
class Finished:
    """The model finished its answer.

    :param reason: why, the same word in every dialect: ``"stop"`` (a
        natural end or a stop sequence), ``"length"`` (cut by the token
        limit), ``"tool_calls"`` (it wants tools run), ``"content_filter"``,
        ``"refusal"`` or ``"other"`` (:data:`PORTABLE_REASONS`).
    :param raw_reason: the provider's own word (``"end_turn"``,
        ``"max_tokens"``, ``"tool_use"``, ``"stop_sequence"``, ...).
    """

    reason: str | None
    raw_reason: str | None = None
    text: ClassVar[str] = ""

    @classmethod
    def of(cls, raw: str | None) -> Finished:
        """The event for a provider's ``raw`` reason."""
        return cls(portable_reason(raw), raw)


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

