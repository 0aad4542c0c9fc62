"""``client.responses.create(...)`` of the drop-in.

``stream=True`` returns a :class:`ResponseEventStream` of Responses API
events rebuilt from holysse's events (so a cut, a resume or a replay never
shows): ``response.created``, then per output item ``output_item.added``,
its deltas (``output_text.delta``, ``function_call_arguments.delta``,
``reasoning_summary_text.delta``) and ``.done`` events, then
``response.completed`` (``response.incomplete`` when the answer was cut by
the token limit or a filter) with the whole ``Response`` and its usage.
Sequence numbers count from 0 in the events handed out. ``stream=False``
returns that final ``Response``.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from ..events import Finished, Reset, TextDelta, ThinkingDelta, ToolCallDelta, Usage
from ..exceptions import StreamDiverged
from ._objects import make
from ._stream import OpenAIStream

if TYPE_CHECKING:
    from ..stream import Stream

__all__ = ["Responses", "ResponseEventStream"]

_EVENT_TYPES = {
    "response.created": "ResponseCreatedEvent",
    "response.output_item.added": "ResponseOutputItemAddedEvent",
    "response.output_item.done": "ResponseOutputItemDoneEvent",
    "response.content_part.added": "ResponseContentPartAddedEvent",
    "response.content_part.done": "ResponseContentPartDoneEvent",
    "response.output_text.delta": "ResponseTextDeltaEvent",
    "response.output_text.done": "ResponseTextDoneEvent",
    "response.function_call_arguments.delta": "ResponseFunctionCallArgumentsDeltaEvent",
    "response.function_call_arguments.done": "ResponseFunctionCallArgumentsDoneEvent",
    "response.reasoning_summary_text.delta": "ResponseReasoningSummaryTextDeltaEvent",
    "response.completed": "ResponseCompletedEvent",
    "response.incomplete": "ResponseIncompleteEvent",
}


class _Item:
    """One output item being streamed."""

    def __init__(self, kind: str, item_id: str, index: int, call: ToolCallDelta | None = None) -> None:
        self.kind = kind
        self.id = item_id
        self.index = index
        self.parts: list[str] = []
        self.call_id = (call.id if call is not None else None) or f"call_{uuid.uuid4().hex[:24]}"
        self.name = (call.name if call is not None else None) or ""

    def json(self, status: str) -> dict[str, Any]:
        text = "".join(self.parts)
        if self.kind == "message":
            content = [] if status == "in_progress" else [_text_part(text)]
            return {"id": self.id, "type": "message", "role": "assistant", "status": status, "content": content}
        if self.kind == "reasoning":
            summary = [] if status == "in_progress" else [{"type": "summary_text", "text": text}]
            return {"id": self.id, "type": "reasoning", "summary": summary, "status": status}
        return {"id": self.id, "type": "function_call", "call_id": self.call_id, "name": self.name,
                "arguments": text if status != "in_progress" else "", "status": status}


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


class ResponseEventStream(OpenAIStream):
    """openai's ``Stream[ResponseStreamEvent]``: iterate it once, use it as a
    context manager, :meth:`close` it; ``holysse_stream`` is the stream
    underneath."""

    def __init__(self, stream: Stream, model: str, url: str) -> None:
        self._model = model
        self._created = time.time()
        self._sequence = 0
        self._items: list[_Item] = []
        self._open: _Item | None = None
        self._calls: dict[int, _Item] = {}
        self._id: str | None = None
        #: The final ``Response`` once the stream ended.
        self.final_response: Any = None
        super().__init__(stream, url)

    def _objects(self) -> Iterator[Any]:
        finished: Finished | None = None
        usage: Usage | None = None
        started = False
        for event in self.holysse_stream:
            kind = type(event)
            if not started and kind in (TextDelta, ThinkingDelta, ToolCallDelta):
                started = True
                yield self._event("response.created", response=self._response("in_progress", None, None))
            if kind is TextDelta:
                yield from self._delta("message", event.text)
            elif kind is ThinkingDelta:
                yield from self._delta("reasoning", event.thinking)  # type: ignore[union-attr]
            elif kind is ToolCallDelta:
                yield from self._call(event)  # type: ignore[arg-type]
            elif kind is Finished:
                finished = event  # type: ignore[assignment]
            elif kind is Usage:
                usage = event  # type: ignore[assignment]
            elif kind is Reset:  # never happens: the drop-in streams with on_divergence="raise"
                raise StreamDiverged("The replayed answer diverged.", partial=event.delivered)  # type: ignore[union-attr]
        if not started:
            yield self._event("response.created", response=self._response("in_progress", None, None))
        yield from self._close_open()
        status = "completed" if finished is None or finished.reason in ("stop", "tool_calls") else "incomplete"
        self.final_response = self._response(status, finished, usage)
        yield self._event(f"response.{status}", response=self.final_response)

    def _event(self, kind: str, **fields: Any) -> Any:
        data = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return make(f"responses.{_EVENT_TYPES[kind]}", data)

    def _open_item(self, kind: str, prefix: str, call: ToolCallDelta | None = None) -> Iterator[Any]:
        yield from self._close_open()
        item = _Item(kind, f"{prefix}_{uuid.uuid4().hex}", len(self._items), call)
        self._items.append(item)
        self._open = item
        yield self._event("response.output_item.added", output_index=item.index, item=item.json("in_progress"))
        if kind == "message":
            yield self._event("response.content_part.added", item_id=item.id, output_index=item.index,
                              content_index=0, part=_text_part(""))

    def _close_open(self) -> Iterator[Any]:
        item, self._open = self._open, None
        if item is None:
            return
        text = "".join(item.parts)
        if item.kind == "message":
            yield self._event("response.output_text.done", item_id=item.id, output_index=item.index,
                              content_index=0, text=text, logprobs=[])
            yield self._event("response.content_part.done", item_id=item.id, output_index=item.index,
                              content_index=0, part=_text_part(text))
        elif item.kind == "function_call":
            yield self._event("response.function_call_arguments.done", item_id=item.id, output_index=item.index,
                              arguments=text)
        yield self._event("response.output_item.done", output_index=item.index, item=item.json("completed"))

    def _delta(self, kind: str, text: str) -> Iterator[Any]:
        if self._open is None or self._open.kind != kind:
            yield from self._open_item(kind, "msg" if kind == "message" else "rs")
        item = self._open
        assert item is not None
        item.parts.append(text)
        if kind == "message":
            yield self._event("response.output_text.delta", item_id=item.id, output_index=item.index,
                              content_index=0, delta=text, logprobs=[])
        else:
            yield self._event("response.reasoning_summary_text.delta", item_id=item.id, output_index=item.index,
                              summary_index=0, delta=text)

    def _call(self, event: ToolCallDelta) -> Iterator[Any]:
        item = self._calls.get(event.index)
        if item is None:
            yield from self._open_item("function_call", "fc", event)
            item = self._calls[event.index] = self._open  # type: ignore[assignment]
        assert item is not None
        if item is not self._open:  # a server that interleaves calls: keep each in its own item
            self._open = item
        if event.arguments:
            item.parts.append(event.arguments)
            yield self._event("response.function_call_arguments.delta", item_id=item.id, output_index=item.index,
                              delta=event.arguments)

    def _response(self, status: str, finished: Finished | None, usage: Usage | None) -> dict[str, Any]:
        stream = self.holysse_stream
        if self._id is None:
            self._id = stream.id or f"resp_{uuid.uuid4().hex}"
        incomplete = None
        if status == "incomplete" and finished is not None:
            incomplete = {"reason": "max_output_tokens" if finished.reason == "length" else "content_filter"}
        return {
            "id": self._id, "object": "response", "created_at": self._created, "status": status,
            "model": stream.model or self._model, "output": [item.json("completed") for item in self._items]
            if status != "in_progress" else [],
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "error": None,
            "incomplete_details": incomplete, "instructions": None, "metadata": {},
            "usage": None if usage is None else _usage(usage),
        }


def _usage(usage: Usage) -> dict[str, Any]:
    inputs, outputs = usage.input_tokens or 0, usage.output_tokens or 0
    return {"input_tokens": inputs, "output_tokens": outputs,
            "total_tokens": usage.total_tokens if usage.total_tokens is not None else inputs + outputs,
            "input_tokens_details": {"cached_tokens": usage.cached_input_tokens or 0, "cache_write_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens or 0}}


class Responses:
    """``client.responses``.

    :param start: starts a holysse stream in a dialect with a request body.
    :param base_url: where the requests go (for error objects).
    """

    def __init__(self, start: Callable[[str, dict[str, Any]], Stream], base_url: str) -> None:
        self._start = start
        self._base_url = base_url

    def create(self, *, model: str, stream: bool = False, **params: Any) -> Any:
        """openai's ``responses.create``: a :class:`ResponseEventStream` with
        ``stream=True``, else the final ``Response`` (read from a resilient
        stream underneath). Every other argument goes to the request."""
        url = self._base_url + "/responses"
        if isinstance(params.get("input"), Mapping):
            raise TypeError("input must be a string or a list of input items.")
        events = ResponseEventStream(self._start("openai-responses", dict(params, model=model)), model, url)
        if stream:
            return events
        for _ in events:
            pass
        return make("responses.Response", events.final_response)
