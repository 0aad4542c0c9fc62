"""OpenAI chat completions (``POST /chat/completions``, ``stream: true``).

The terminal marker is ``data: [DONE]``. Content arrives as
``choices[0].delta.content``; tool calls as ``delta.tool_calls`` fragments
keyed by ``index``; usage in a final chunk with empty ``choices`` (requested
with ``stream_options.include_usage``, which holysse sends by default).
Only choice 0 is read. An ``{"error": ...}`` object inside the stream becomes
:class:`~holysse.exceptions.ProviderError`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .._redact import guard
from .._status import code_retryable
from ..events import Event, Finished, TextDelta, ThinkingDelta, ToolCallDelta, Usage
from ..exceptions import HTTPStatusError, ProtocolError, ProviderError
from .._types import HTTPRequest
from ..wire import ServerSentEvent
from .base import Dialect, Endpoint, ResumeState, content_text, event_json, streaming_post
from .profiles import ProviderProfile

__all__ = ["OpenAIChat", "ChatParser", "provider_error"]

logger = guard(logging.getLogger(__name__))


_RETRYABLE_ERROR_TYPES = frozenset(
    {"server_error", "overloaded_error", "api_error", "rate_limit_error", "rate_limit_exceeded", "timeout", "internal_error"}
)


#: The ``stream_options`` holysse sends when the user sets none (compared by
#: identity: a refused ``stream_options`` is dropped only if it is this one).
_USAGE_PLEASE: dict[str, Any] = {"include_usage": True}


class ChatParser:
    """Parses one chat-completions connection."""

    def __init__(self) -> None:
        self.done = False
        #: True once this connection sent the start of an answer (a role delta).
        self.started = False
        self.cursor: str | None = None
        self.response_id: str | None = None
        self.model: str | None = None
        #: The completion id (``chatcmpl-...``) of the first chunk that had one.
        self.generation: str | None = None
        # For servers that leave out tool_calls[].index: the call each id opened.
        self._tool_index = -1
        self._tool_id: str | None = None

    def feed(self, sse: ServerSentEvent) -> list[Event]:
        data = sse.data
        if data == "[DONE]":
            self.done = True
            return []
        obj = event_json(data)
        if sse.event == "error":
            raise provider_error(obj.get("error") or obj)
        events = self.feed_object(obj)
        if sse.id:
            self.cursor = sse.id
        return events

    def feed_object(self, obj: dict[str, Any]) -> list[Event]:
        """The events of one decoded chunk."""
        if obj.get("error"):
            raise provider_error(obj["error"])
        if self.response_id is None:
            self._note(obj)
        try:
            return self._events(obj)
        except (AttributeError, TypeError, KeyError, IndexError) as exc:
            raise ProtocolError(
                f"A stream event does not have the chat-completions shape ({type(exc).__name__}: {exc}); "
                f"is this server OpenAI-compatible? Event starts {json.dumps(obj)[:80]!r}."
            ) from None

    def _events(self, obj: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        if self.generation is None:
            ident = obj.get("id")
            if ident and type(ident) is str:
                self.generation = ident
        choices = obj.get("choices")
        if choices:
            choice = choices[0]
            if len(choices) > 1 or choice.get("index", 0) != 0:
                choice = next((c for c in choices if c.get("index", 0) == 0), None)
            if choice is not None:
                delta = choice.get("delta")
                if not self.started and delta and "role" in delta:
                    self.started = True
                if delta:
                    self._delta_events(delta, events)
                reason = choice.get("finish_reason")
                if reason:
                    events.append(Finished.of(reason))
        usage = obj.get("usage")
        if usage:
            events.append(_usage(usage))
        return events

    def _note(self, obj: dict[str, Any]) -> None:
        ident, model = obj.get("id"), obj.get("model")
        self.response_id = ident if isinstance(ident, str) and ident else None
        self.model = model if isinstance(model, str) else self.model

    def resumed(self) -> ChatParser:
        """A fresh parser that keeps the cursor, the answer's id and model and
        the numbering of tool calls that came without an ``index``."""
        parser = ChatParser()
        parser.cursor, parser.response_id, parser.model = self.cursor, self.response_id, self.model
        parser._tool_index, parser._tool_id = self._tool_index, self._tool_id
        return parser

    def checkpoint_state(self) -> dict[str, Any]:
        """What :meth:`restore_state` needs to continue by cursor elsewhere."""
        return {"tool_index": self._tool_index, "tool_id": self._tool_id}

    def restore_state(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`checkpoint_state` (taken in another process)."""
        self._tool_index = int(state.get("tool_index", -1))
        self._tool_id = state.get("tool_id")

    def _delta_events(self, delta: dict[str, Any], events: list[Event]) -> None:
        content = delta.get("content")
        if content and type(content) is str:
            events.append(TextDelta(content))
            if len(delta) == 1:
                return  # most deltas carry text alone
        elif content and isinstance(content, list):
            events += _content_parts(content)
        refusal = delta.get("refusal")  # the model declines: that is its answer, as in the Responses API
        if refusal and type(refusal) is str:
            events.append(TextDelta(refusal))
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning and type(reasoning) is str:
            events.append(ThinkingDelta(reasoning))
        legacy = delta.get("function_call")  # the deprecated functions API: one call, index 0
        if legacy:
            events.append(ToolCallDelta(0, None, legacy.get("name"), _arguments(legacy.get("arguments"))))
        for call in delta.get("tool_calls") or ():
            function = call.get("function") or {}
            events.append(
                ToolCallDelta(
                    index=self._tool_call_index(call),
                    id=call.get("id"),
                    name=function.get("name"),
                    arguments=_arguments(function.get("arguments")),
                )
            )

    def _tool_call_index(self, call: dict[str, Any]) -> int:
        """The call's ``index``; when a server leaves it out, a new ``id``
        opens the next call and fragments without an id continue the last."""
        index = call.get("index")
        if type(index) is int:
            self._tool_index = index
        else:
            ident = call.get("id")
            if ident and ident != self._tool_id or self._tool_index < 0:
                self._tool_index += 1
            index = self._tool_index
        self._tool_id = call.get("id") or self._tool_id
        return index



def _arguments(arguments: Any) -> str:
    """Tool-call arguments as JSON text; some servers send a whole call's
    arguments as a JSON object instead of a string."""
    if isinstance(arguments, str):
        return arguments
    if arguments is None:
        return ""
    return json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))


def _content_parts(parts: list[Any]) -> list[Event]:
    """``content`` sent as a list of typed parts (Mistral's reasoning models:
    ``{"type": "thinking", "thinking": [text parts]}`` then ``{"type":
    "text", "text": ...}``); other part types (references, images) carry no
    answer text."""
    events: list[Event] = []
    for part in parts:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and part.get("text") and type(part["text"]) is str:
            events.append(TextDelta(part["text"]))
        elif kind == "thinking":
            thinking = content_text(part.get("thinking"))
            if thinking:
                events.append(ThinkingDelta(thinking))
    return events


def _usage(usage: dict[str, Any]) -> Usage:
    details = usage.get("prompt_tokens_details") or {}
    completion = usage.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=usage.get("prompt_tokens"),
        output_tokens=usage.get("completion_tokens"),
        total_tokens=usage.get("total_tokens"),
        cached_input_tokens=details.get("cached_tokens"),
        reasoning_tokens=completion.get("reasoning_tokens"),
        raw=usage,
    )


def provider_error(error: Any) -> ProviderError:
    """A :class:`ProviderError` from an OpenAI-shaped ``error`` value."""
    if not isinstance(error, dict):
        return ProviderError(f"The provider sent an error in the stream: {error!r}")
    error_type = error.get("type")
    code = error.get("code")
    message = error.get("message") or "no message"
    retryable = error_type in _RETRYABLE_ERROR_TYPES or code in _RETRYABLE_ERROR_TYPES or code_retryable(code)
    return ProviderError(
        f"The provider sent an error in the stream ({error_type or code or 'unknown'}): {message}",
        error_type=error_type,
        code=None if code is None else str(code),
        retryable=retryable,
    )


class OpenAIChat(Dialect):
    """The OpenAI chat-completions dialect (the default)."""

    name = "openai-chat"
    terminal = "data: [DONE]"

    def build_request(self, endpoint: Endpoint, body: dict[str, Any]) -> HTTPRequest:
        payload = dict(body)
        if "stream_options" not in payload:
            payload["stream_options"] = _USAGE_PLEASE
        elif payload["stream_options"] is None:  # the user's way to send none
            del payload["stream_options"]
        return streaming_post(endpoint, "chat/completions", payload)

    def whole_answer(self, obj: dict[str, Any]) -> list[Event] | None:
        """A ``chat.completion`` reads as one chunk whose delta is the message."""
        choices = obj.get("choices")
        if not isinstance(choices, list) or not all(isinstance(c, dict) and "message" in c for c in choices):
            return None
        if not choices and obj.get("object") != "chat.completion":
            return None
        return ChatParser().feed_object(dict(obj, choices=[dict(c, delta=c["message"]) for c in choices]))

    def without_refused_field(self, request: HTTPRequest, error: HTTPStatusError) -> HTTPRequest | None:
        """Servers that predate ``stream_options`` (older Azure API versions,
        strict validators) refuse it with 400 or 422; holysse asked for usage
        on its own, so it asks again without (the stream then has no usage)."""
        body = request.json
        if (
            error.status_code in (400, 422)
            and isinstance(body, dict)
            and body.get("stream_options") is _USAGE_PLEASE
            and "stream_options" in f"{error} {error.body_excerpt}"
        ):
            return request.replace(json={k: v for k, v in body.items() if k != "stream_options"})
        return None

    def parser(self) -> ChatParser:
        return ChatParser()

    def supports(self, strategy: str, state: ResumeState, profile: ProviderProfile) -> bool:
        if strategy == "cursor":
            return state.cursor is not None
        if strategy == "prefill":
            return bool(state.text) and not state.tool_calls_open and profile.prefill_flavour in ("prefix", "continue")
        return strategy == "replay"

    def prefill_request(
        self, original: HTTPRequest, state: ResumeState, profile: ProviderProfile
    ) -> tuple[HTTPRequest, str]:
        return original.replace(json=_prefill_body(original.json, state, profile)), ""


def _prefill_body(body: dict[str, Any], state: ResumeState, profile: ProviderProfile) -> dict[str, Any]:
    payload = dict(body)
    message: dict[str, Any] = {"role": "assistant", "content": state.text}
    if profile.prefill_flavour == "prefix":
        message["prefix"] = True
    else:
        payload["continue_final_message"] = True
        payload["add_generation_prompt"] = False
    payload["messages"] = [*body.get("messages", ()), message]
    for key in ("max_tokens", "max_completion_tokens"):
        if isinstance(payload.get(key), int):
            payload[key] = max(1, payload[key] - state.output_events)
    return payload
