"""What the fake server answers to a request body, before any wire encoding.

This module reads request bodies of the three API shapes (the prompt, seed,
temperature, token limit, tools, prefill) and turns them into a
:class:`Generation`: the answer text, the finish reason, the tool calls and
the usage numbers. :mod:`holysse.testing.dialects` encodes a generation as
SSE events.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping

from .model import FakeModel, split_fragments, split_tokens

__all__ = [
    "CHAT", "ANTHROPIC", "RESPONSES", "DIALECTS", "RequestError", "ToolCallSpec", "Generation",
    "Planned", "resolve_dialect", "guess_dialect", "plan_generation",
]

logger = logging.getLogger(__name__)

CHAT = "openai-chat"
ANTHROPIC = "anthropic"
RESPONSES = "openai-responses"
DIALECTS = (CHAT, ANTHROPIC, RESPONSES)

_ALIASES = {
    "chat": CHAT, "openai": CHAT, "openai_chat": CHAT, "openai-chat": CHAT,
    "anthropic": ANTHROPIC, "messages": ANTHROPIC,
    "responses": RESPONSES, "openai_responses": RESPONSES, "openai-responses": RESPONSES,
}


class RequestError(Exception):
    """A request the fake API refuses (becomes an HTTP error response).

    :param status: the HTTP status.
    :param message: the error message.
    :param error_type: the provider's error type (``None``: derived from ``status``).
    """

    def __init__(self, status: int, message: str, error_type: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type


@dataclass(frozen=True)
class ToolCallSpec:
    """One tool call of a generation."""

    call_id: str
    name: str
    arguments: str

    @property
    def fragments(self) -> list[str]:
        """The argument fragments as streamed."""
        return split_fragments(self.arguments)


@dataclass(frozen=True)
class Generation:
    """Everything needed to encode one streamed answer, in any dialect."""

    gen_id: str
    dialect: str
    model: str
    created: int
    #: The streamed answer text (for a prefill, the continuation only).
    text: str
    #: Position of ``text[0]`` in the whole answer (token boundaries depend on it).
    offset: int
    #: ``"stop"``, ``"length"`` or ``"tool_calls"`` (each dialect maps it).
    finish: str
    tool_calls: tuple[ToolCallSpec, ...] = ()
    thinking: str = ""
    prompt_tokens: int = 0
    include_usage: bool = False
    background: bool = False
    #: Multiplies token lengths (see :func:`~holysse.testing.model.split_tokens`).
    token_scale: int = 1

    @property
    def tokens(self) -> list[str]:
        """The answer text cut into streamed tokens."""
        return split_tokens(self.text, self.offset, self.token_scale)

    @property
    def thinking_tokens(self) -> list[str]:
        """The thinking text cut into streamed tokens."""
        return split_tokens(self.thinking, 0, self.token_scale)

    @property
    def output_tokens(self) -> int:
        """Tokens counted in the usage report."""
        return (len(self.tokens) + len(self.thinking_tokens)
                + sum(len(call.fragments) for call in self.tool_calls))


@dataclass(frozen=True)
class Planned:
    """A generation and the complete answer it belongs to (for a prefill:
    the prefilled partial followed by the streamed continuation)."""

    generation: Generation
    full_answer: str


def resolve_dialect(name: str) -> str:
    """The canonical dialect name for ``name`` (``"chat"``, ``"anthropic"``, ...).

    :raises ValueError: unknown name.
    """
    try:
        return _ALIASES[name.lower()]
    except KeyError:
        raise ValueError(f"Unknown dialect {name!r}; use one of {', '.join(DIALECTS)}.") from None


def guess_dialect(body: Mapping[str, Any]) -> str:
    """Responses when the body has ``input`` and no ``messages``, else chat."""
    return RESPONSES if "input" in body and "messages" not in body else CHAT


def content_text(content: Any) -> str:
    """The text of a message ``content`` (a string or a list of text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "") for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text", "output_text")
            and isinstance(part.get("text"), str)
        )
    return ""


def _messages(body: Mapping[str, Any], dialect: str) -> list[dict[str, Any]]:
    key = "input" if dialect == RESPONSES else "messages"
    value = body.get(key)
    if dialect == RESPONSES and isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        raise RequestError(400, f"'{key}' must be a list of message objects.")
    return list(value)


def _split_prefill(messages: list[dict[str, Any]], body: Mapping[str, Any], dialect: str,
                   prefill: bool) -> tuple[list[dict[str, Any]], str | None]:
    """(conversation without a final prefilled assistant message, the partial or None)."""
    if not messages or messages[-1].get("role") != "assistant":
        return messages, None
    last = messages[-1]
    if not prefill:
        return messages[:-1], None
    if dialect == ANTHROPIC:
        partial = content_text(last.get("content"))
        if partial != partial.rstrip():
            raise RequestError(400, "final assistant content cannot end with trailing whitespace")
        return messages[:-1], partial
    if dialect == CHAT and (last.get("prefix") is True or body.get("continue_final_message") is True):
        return messages[:-1], content_text(last.get("content"))
    return messages[:-1], None


def _prompt(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def _prompt_tokens(body: Mapping[str, Any], messages: list[dict[str, Any]]) -> int:
    chars = sum(len(content_text(m.get("content"))) for m in messages)
    for key in ("system", "instructions"):
        chars += len(content_text(body.get(key)))
    return (chars + 3) // 4 + 3 * len(messages) + 1


def _max_tokens(body: Mapping[str, Any], dialect: str) -> int | None:
    if dialect == ANTHROPIC and body.get("max_tokens") is None:
        raise RequestError(400, "max_tokens: Field required")  # the Messages API requires it
    keys = ("max_output_tokens",) if dialect == RESPONSES else ("max_completion_tokens", "max_tokens")
    for key in keys:
        value = body.get(key)
        if value is not None:
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise RequestError(400, f"'{key}' must be a positive integer.")
            return value
    return None


def _tool_name(tool: Any) -> str | None:
    if not isinstance(tool, dict):
        return None
    function = tool.get("function")
    name = function.get("name") if isinstance(function, dict) else tool.get("name")
    return name if isinstance(name, str) else None


def _tool_calls(body: Mapping[str, Any], model: FakeModel, prompt: str, seed: int | None,
                gen_id: str, dialect: str) -> tuple[ToolCallSpec, ...]:
    names = [n for n in (_tool_name(t) for t in body.get("tools") or ()) if n]
    choice = body.get("tool_choice")
    if not names or choice == "none" or (isinstance(choice, dict) and choice.get("type") == "none"):
        return ()
    forced = _tool_name(choice) if isinstance(choice, dict) else None
    if forced:
        names = [forced]
    prefix = {CHAT: "call_", ANTHROPIC: "toolu_", RESPONSES: "call_"}[dialect]
    calls = []
    for index, name in enumerate(names[:2]):
        arguments = model.tool_arguments(prompt if index == 0 else f"{prompt}\n{name}", seed)
        calls.append(ToolCallSpec(f"{prefix}{gen_id}{index}", name, arguments))
    return tuple(calls)


def _thinking(body: Mapping[str, Any], model: FakeModel, prompt: str, seed: int | None,
              temperature: float | None, answer_chars: int, dialect: str) -> str:
    config = body.get("thinking")
    if dialect != ANTHROPIC or not isinstance(config, dict) or config.get("type") == "disabled":
        return ""
    return model.thinking(prompt, seed=seed, temperature=temperature, length=max(40, answer_chars // 4))


def plan_generation(
    model: FakeModel,
    body: Any,
    dialect: str,
    *,
    answer_chars: int,
    prefill: bool,
    gen_id: str,
    created: int,
    token_scale: int = 1,
) -> Planned:
    """Decide the answer to ``body``.

    :raises RequestError: the body is not a valid request for ``dialect``.
    """
    if not isinstance(body, dict):
        raise RequestError(400, "The request body must be a JSON object.")
    messages = _messages(body, dialect)
    conversation, partial = _split_prefill(messages, body, dialect, prefill)
    prompt = _prompt(conversation)
    seed = body.get("seed") if isinstance(body.get("seed"), int) else None
    temperature = body.get("temperature") if isinstance(body.get("temperature"), (int, float)) else None
    full = model.answer(prompt, seed=seed, temperature=temperature, length=answer_chars)
    offset = 0
    rest = full
    if partial is not None:
        offset = len(partial)
        if full.startswith(partial):
            rest = full[offset:]
        else:
            rest = model.continuation(prompt, partial, seed=seed, length=max(0, answer_chars - offset))
    tokens = split_tokens(rest, offset, token_scale)
    limit = _max_tokens(body, dialect)
    finish = "stop"
    if limit is not None and len(tokens) > limit:
        rest, finish = "".join(tokens[:limit]), "length"
    calls = _tool_calls(body, model, prompt, seed, gen_id, dialect) if finish == "stop" else ()
    if calls:
        finish = "tool_calls"
    options = body.get("stream_options")
    generation = Generation(
        gen_id=gen_id,
        dialect=dialect,
        model=str(body.get("model") or "fake-1"),
        created=created,
        text=rest,
        offset=offset,
        finish=finish,
        tool_calls=calls,
        thinking=_thinking(body, model, prompt, seed, temperature, answer_chars, dialect),
        prompt_tokens=_prompt_tokens(body, messages),
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        background=body.get("background") is True,
        token_scale=token_scale,
    )
    return Planned(generation, (partial or "") + rest)
