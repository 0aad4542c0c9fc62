"""Anthropic Messages (``POST /messages``, ``stream: true``).

Events: ``message_start`` (input tokens: a first :class:`~holysse.events.Usage`),
``content_block_start`` / ``content_block_delta`` / ``content_block_stop``
(``text_delta``, ``thinking_delta`` kept apart from the answer,
``input_json_delta`` for tool use), ``message_delta`` (``stop_reason`` and
the final usage), ``ping``, and the terminal ``message_stop``. An in-stream
``error`` event becomes :class:`~holysse.exceptions.ProviderError`; only
``overloaded_error`` is retried. Unknown event and delta types are ignored.

Tool calls are numbered in the order their ``tool_use`` blocks start
(``ToolCallDelta.index`` counts tool calls, not content blocks), so the same
code reads tool calls from every dialect.

Requests carry ``x-api-key`` and ``anthropic-version: 2023-06-01``. The API
requires ``max_tokens``: when the call omits it, ``max_completion_tokens`` is
used if given, else :attr:`Anthropic.default_max_tokens` (4096); an answer
cut by that limit ends with ``Finished("length", "max_tokens")``. Usage is
normalised: ``input_tokens`` counts the whole prompt (Anthropic's uncached
``input_tokens`` plus its cache reads and writes), ``cached_input_tokens``
the cache reads. OpenAI-style
``{"role": "system"}`` messages become the top-level ``system`` prompt.

Resume: by ``Last-Event-ID`` when the server sends SSE ids (Anthropic does
not), else by *prefill*: the partial answer goes back as the final assistant
message and the model continues it. Anthropic rejects a final assistant
message ending in whitespace, so trailing whitespace is held back from it;
the model writes it again and holysse drops it (no duplicate). Prefill is not
used while tool calls or thinking were delivered (a thinking block cannot be
sent back without its signature); replay is the fallback.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .._redact import guard
from ..events import Event, Finished, TextDelta, ThinkingDelta, ToolCallDelta, Usage
from ..exceptions import ProviderError
from .._types import HTTPRequest
from ..wire import ServerSentEvent
from .base import Dialect, Endpoint, ResumeState, content_text, event_json, streaming_post
from .profiles import ProviderProfile

__all__ = ["Anthropic", "AnthropicParser", "ANTHROPIC_VERSION"]

logger = guard(logging.getLogger(__name__))

#: The ``anthropic-version`` header sent unless the caller sets one.
ANTHROPIC_VERSION = "2023-06-01"
_RETRYABLE_ERROR_TYPES = frozenset({"overloaded_error"})
_TOOL_BLOCKS = frozenset({"tool_use", "server_tool_use"})


class AnthropicParser:
    """Parses one Messages connection (or several, resumed by cursor)."""

    def __init__(self) -> None:
        self.done = False
        #: True once this connection sent ``message_start``.
        self.started = False
        self.cursor: str | None = None
        self.response_id: str | None = None
        self.model: str | None = None
        self._input_tokens: int | None = None
        self._cached_tokens: int | None = None
        self._cache_written: int | None = None
        self._raw_usage: dict[str, Any] = {}
        #: content block index -> tool-call number, for tool_use blocks
        self._tools: dict[int, int] = {}
        #: tool_use blocks that started with a complete ``input`` and got no delta yet
        self._inputs: dict[int, Any] = {}

    def resumed(self) -> AnthropicParser:
        """Continue on a new connection: keep the tool numbering and usage."""
        self.done = self.started = False
        return self

    def checkpoint_state(self) -> dict[str, Any]:
        """What :meth:`restore_state` needs to continue by cursor elsewhere."""
        return {"tools": [[block, number] for block, number in list(self._tools.items())], "message": self.response_id}

    def restore_state(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`checkpoint_state` (taken in another process)."""
        self._tools = {int(block): int(number) for block, number in state.get("tools") or ()}
        self.response_id = state.get("message")

    def feed(self, sse: ServerSentEvent) -> list[Event]:
        obj = event_json(sse.data)
        kind = obj.get("type") or sse.event
        handler = _HANDLERS.get(kind)
        events = handler(self, obj) if handler is not None else []
        if sse.id:
            self.cursor = sse.id
        return events

    # -- event handlers -------------------------------------------------------

    def _message_start(self, obj: dict[str, Any]) -> list[Event]:
        self.started = True
        self._tools, self._inputs = {}, {}
        message = obj.get("message") or {}
        self.response_id = message.get("id") if isinstance(message.get("id"), str) else None
        self.model = message.get("model") if isinstance(message.get("model"), str) else None
        usage = message.get("usage")
        return self._usage(usage) if usage else []

    def _block_start(self, obj: dict[str, Any]) -> list[Event]:
        block = obj.get("content_block") or {}
        index = obj.get("index", 0)
        kind = block.get("type")
        if kind in _TOOL_BLOCKS:
            number = self._tools[index] = len(self._tools)
            if block.get("input"):
                self._inputs[index] = block["input"]
            return [ToolCallDelta(number, block.get("id"), block.get("name"), "")]
        if kind == "text" and block.get("text"):
            return [TextDelta(block["text"])]
        if kind == "thinking" and block.get("thinking"):
            return [ThinkingDelta(block["thinking"])]
        return []

    def _block_delta(self, obj: dict[str, Any]) -> list[Event]:
        delta = obj.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [TextDelta(delta["text"])]
        if kind == "thinking_delta" and delta.get("thinking"):
            return [ThinkingDelta(delta["thinking"])]
        if kind == "input_json_delta":
            index = obj.get("index", 0)
            self._inputs.pop(index, None)
            number = self._tools.get(index)
            if number is None:
                logger.debug("input_json_delta for block %r, which is not a tool_use block", index)
                return []
            if delta.get("partial_json"):
                return [ToolCallDelta(number, None, None, delta["partial_json"])]
        return []

    def _block_stop(self, obj: dict[str, Any]) -> list[Event]:
        index = obj.get("index", 0)
        given = self._inputs.pop(index, None)
        if given is None or index not in self._tools:
            return []
        # A server that sent the whole input with the block start and no deltas.
        arguments = json.dumps(given, ensure_ascii=False, separators=(",", ":"))
        return [ToolCallDelta(self._tools[index], None, None, arguments)]

    def _message_delta(self, obj: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        reason = (obj.get("delta") or {}).get("stop_reason")
        if reason:
            events.append(Finished.of(reason))
        usage = obj.get("usage")
        if usage:
            events += self._usage(usage)
        return events

    def _message_stop(self, obj: dict[str, Any]) -> list[Event]:
        self.done = True
        return []

    def _error(self, obj: dict[str, Any]) -> list[Event]:
        error: dict[str, Any] = obj["error"] if isinstance(obj.get("error"), dict) else {}
        kind = error.get("type") or "unknown"
        message = error.get("message") or "no message"
        raise ProviderError(
            f"Anthropic sent an error in the stream ({kind}): {message}",
            error_type=kind,
            retryable=kind in _RETRYABLE_ERROR_TYPES,
        )

    def _usage(self, usage: dict[str, Any]) -> list[Event]:
        """Usage so far: ``message_start`` gives the input, ``message_delta``
        the (cumulative) output and sometimes the input again."""
        if usage.get("input_tokens") is not None:
            self._input_tokens = usage["input_tokens"]
        if usage.get("cache_read_input_tokens") is not None:
            self._cached_tokens = usage["cache_read_input_tokens"]
        if usage.get("cache_creation_input_tokens") is not None:
            self._cache_written = usage["cache_creation_input_tokens"]
        self._raw_usage = {**self._raw_usage, **usage}
        prompt = None
        if self._input_tokens is not None:
            prompt = self._input_tokens + (self._cached_tokens or 0) + (self._cache_written or 0)
        output = usage.get("output_tokens")
        total = None if output is None or prompt is None else prompt + output
        return [Usage(prompt, output, total, self._cached_tokens, raw=dict(self._raw_usage))]


_HANDLERS = {
    "message_start": AnthropicParser._message_start,
    "content_block_start": AnthropicParser._block_start,
    "content_block_delta": AnthropicParser._block_delta,
    "content_block_stop": AnthropicParser._block_stop,
    "message_delta": AnthropicParser._message_delta,
    "message_stop": AnthropicParser._message_stop,
    "error": AnthropicParser._error,
}


class Anthropic(Dialect):
    """The Anthropic Messages dialect.

    :param default_max_tokens: ``max_tokens`` sent when the call gives
        neither ``max_tokens`` nor ``max_completion_tokens``.
    """

    name = "anthropic"
    terminal = "event: message_stop"

    def __init__(self, default_max_tokens: int = 4096) -> None:
        self.default_max_tokens = default_max_tokens

    def build_request(self, endpoint: Endpoint, body: dict[str, Any]) -> HTTPRequest:
        payload = dict(body)
        if "max_tokens" not in payload:
            payload["max_tokens"] = payload.pop("max_completion_tokens", None) or self.default_max_tokens
        _lift_system_messages(payload)
        return streaming_post(endpoint, "messages", payload, key_header="x-api-key", key_prefix="",
                              headers={"anthropic-version": ANTHROPIC_VERSION})

    def parser(self) -> AnthropicParser:
        return AnthropicParser()

    def whole_answer(self, obj: dict[str, Any]) -> list[Event] | None:
        """A ``message`` object reads as the events that would stream it."""
        content = obj.get("content")
        if obj.get("type") != "message" or not isinstance(content, list):
            return None
        parser = AnthropicParser()
        events = parser._message_start({})
        for index, block in enumerate(content):
            events += parser._block_start({"index": index, "content_block": block})
            events += parser._block_stop({"index": index})
        return events + parser._message_delta({"delta": {"stop_reason": obj.get("stop_reason")}, "usage": obj.get("usage")})

    def supports(self, strategy: str, state: ResumeState, profile: ProviderProfile) -> bool:
        if strategy == "cursor":
            return state.cursor is not None
        if strategy == "prefill":
            return (
                profile.prefill_flavour == "native"
                and bool(state.text.strip())
                and not state.tool_calls_open
                and not state.thinking
            )
        return strategy == "replay"

    def prefill_request(
        self, original: HTTPRequest, state: ResumeState, profile: ProviderProfile
    ) -> tuple[HTTPRequest, str]:
        return _prefill(original, state)


def _lift_system_messages(payload: dict[str, Any]) -> None:
    """Move OpenAI-style system messages to the top-level ``system`` field."""
    messages = payload.get("messages")
    if not isinstance(messages, list) or "system" in payload:
        return
    system = [m for m in messages if isinstance(m, dict) and m.get("role") == "system"]
    if system:
        payload["system"] = "\n\n".join(content_text(m.get("content")) for m in system)
        payload["messages"] = [m for m in messages if not (isinstance(m, dict) and m.get("role") == "system")]


def _prefill(original: HTTPRequest, state: ResumeState) -> tuple[HTTPRequest, str]:
    """The request continuing ``state.text``; trailing whitespace is held back
    (Anthropic rejects it) and expected again from the model."""
    body = dict(original.json)
    messages = list(body.get("messages") or ())
    prefix = ""
    if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant":
        prefix = content_text(messages.pop().get("content"))  # the caller's own prefill
    full = prefix + state.text
    kept = full.rstrip()
    body["messages"] = [*messages, {"role": "assistant", "content": kept}]
    if isinstance(body.get("max_tokens"), int):
        body["max_tokens"] = max(1, body["max_tokens"] - state.output_events)
    return original.replace(json=body), full[len(kept):]
