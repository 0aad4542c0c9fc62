"""``client.chat.completions.create(...)`` of the drop-in.

A streamed call returns a :class:`ChatCompletionStream` of
``ChatCompletionChunk`` objects built from holysse's events, so they carry
the answer exactly once whatever the network did: the reconnects and resumes
happen underneath and never show. ``stream=False`` reads the same resilient
stream to its end and returns one ``ChatCompletion``.

Chunks are in openai's shape: the first content chunk has ``delta.role ==
"assistant"``; tool calls come as ``delta.tool_calls`` fragments; the finish
as a chunk with an empty delta and ``finish_reason``; with
``stream_options={"include_usage": True}`` a last chunk has empty
``choices`` and the ``usage``. Reasoning text (DeepSeek, vLLM) is in the
extra field ``delta.reasoning_content``.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any, Callable, Iterator

from ..events import Finished, Reset, TextDelta, ThinkingDelta, ToolCallDelta, Usage
from ..exceptions import StreamDiverged
from ._objects import make, maker
from ._stream import OpenAIStream, reraise

if TYPE_CHECKING:
    from ..stream import Stream

__all__ = ["ChatCompletionStream", "chat_completion", "chat_usage", "finish_reason"]

#: The finish reasons openai's chat types accept.
_OPENAI_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})


def finish_reason(finished: Finished | None) -> str | None:
    """The chat ``finish_reason`` for holysse's :class:`Finished`: the
    provider's word when openai knows it, else the portable one (a refusal
    reads as ``content_filter``, another reason as ``stop``)."""
    if finished is None:
        return None
    if finished.raw_reason in _OPENAI_REASONS:
        return finished.raw_reason
    if finished.reason in _OPENAI_REASONS:
        return finished.reason
    return "content_filter" if finished.reason == "refusal" else "stop"


def chat_usage(usage: Usage) -> dict[str, Any]:
    """A ``CompletionUsage`` dict for holysse's :class:`Usage`."""
    prompt = usage.input_tokens or 0
    completion = usage.output_tokens or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": usage.total_tokens if usage.total_tokens is not None else prompt + completion,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens or 0},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens or 0},
    }


def _delta(content: str | None = None, role: str | None = None) -> dict[str, Any]:
    return {"role": role, "content": content, "tool_calls": None, "refusal": None, "function_call": None}


class ChatCompletionStream(OpenAIStream):
    """openai's ``Stream[ChatCompletionChunk]``: iterate it once, use it as a
    context manager, :meth:`close` it. ``holysse_stream`` is the
    :class:`~holysse.Stream` underneath (metrics, the text so far)."""

    def __init__(self, stream: Stream, model: str, include_usage: bool, url: str) -> None:
        self._requested_model = model
        self._include_usage = include_usage
        self._created = int(time.time())
        self._id: str | None = None
        self._model = model
        self._role_sent = False
        self._chunk: Callable[[dict[str, Any]], Any] = maker("chat.ChatCompletionChunk")
        super().__init__(stream, url)

    def _objects(self) -> Iterator[Any]:
        usage: Usage | None = None
        for event in self.holysse_stream:
            kind = type(event)
            if kind is TextDelta:
                yield self._make(self._content(event.text), None)
            elif kind is ToolCallDelta:
                yield self._make(self._tool_call(event), None)  # type: ignore[arg-type]
            elif kind is ThinkingDelta:
                delta = _delta(role=self._role())
                delta["reasoning_content"] = event.thinking  # type: ignore[union-attr]
                yield self._make(delta, None)
            elif kind is Finished:
                yield self._make(_delta(), finish_reason(event))  # type: ignore[arg-type]
            elif kind is Usage:
                usage = event  # type: ignore[assignment]  # the last report is the answer's
            elif kind is Reset:  # never happens: the drop-in streams with on_divergence="raise"
                raise StreamDiverged("The replayed answer diverged.", partial=event.delivered)  # type: ignore[union-attr]
        if usage is not None and self._include_usage:
            yield self._chunk({**self._base(), "choices": [], "usage": chat_usage(usage)})

    def _role(self) -> str | None:
        if self._role_sent:
            return None
        self._role_sent = True
        return "assistant"

    def _content(self, text: str) -> dict[str, Any]:
        return _delta(text, self._role())

    def _tool_call(self, event: ToolCallDelta) -> dict[str, Any]:
        delta = _delta(role=self._role())
        function = {"name": event.name, "arguments": event.arguments}
        delta["tool_calls"] = [{"index": event.index, "id": event.id, "type": "function" if event.id else None,
                                "function": function}]
        return delta

    def _base(self) -> dict[str, Any]:
        if self._id is None:  # pinned at the first chunk: a replayed connection has another id
            stream = self.holysse_stream
            self._id = stream.id or f"chatcmpl-{uuid.uuid4().hex}"
            self._model = stream.model or self._requested_model
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model,
                "system_fingerprint": None, "service_tier": None, "usage": None}

    def _make(self, delta: dict[str, Any], reason: str | None) -> Any:
        base = self._base()
        base["choices"] = [{"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}]
        return self._chunk(base)


def chat_completion(stream: Stream, model: str, url: str) -> Any:
    """Read ``stream`` to its end and return the ``ChatCompletion``."""
    created = int(time.time())
    try:
        snapshot = stream.final()
    except Exception as exc:
        reraise(exc, url)
    calls = [{"id": call.id or f"call_{uuid.uuid4().hex[:24]}", "type": "function",
              "function": {"name": call.name or "", "arguments": call.arguments}} for call in snapshot.tool_calls]
    message: dict[str, Any] = {"role": "assistant", "content": snapshot.text or (None if calls else ""),
                               "refusal": None, "tool_calls": calls or None, "function_call": None,
                               "annotations": None, "audio": None}
    if snapshot.thinking:
        message["reasoning_content"] = snapshot.thinking
    finished = stream.accumulator.finished
    return make("chat.ChatCompletion", {
        "id": stream.id or f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": created,
        "model": stream.model or model,
        "system_fingerprint": None,
        "service_tier": None,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(finished) or "stop",
                     "logprobs": None}],
        "usage": None if snapshot.usage is None else chat_usage(snapshot.usage),
    })
