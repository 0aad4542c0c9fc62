"""OpenAI Responses (``POST /responses``, ``stream: true``).

Events: ``response.created`` (the response id; ``background`` says whether
it can be resumed), ``response.output_text.delta``, reasoning deltas (kept
apart as :class:`~holysse.events.ThinkingDelta`),
``response.output_item.added`` for function calls and
``response.function_call_arguments.delta`` for their arguments, and one of
the terminal events: ``response.completed`` (``Finished("stop")``, or
``"tool_calls"`` when the output calls functions; the raw reason is the
status, ``"completed"``), ``response.incomplete`` (``Finished("length",
"max_output_tokens")`` when ``max_output_tokens`` cut it, else its reason),
``response.failed``. An ``error`` event or ``response.failed`` becomes
:class:`~holysse.exceptions.ProviderError` (server errors are retried).
Every event has a ``sequence_number``; events at or before the last one seen
are dropped (a server that resent them).

Resume by cursor: a response created with ``"background": true`` can be
read again with ``GET {base}/responses/{id}?stream=true&starting_after=N``,
where ``N`` is the last sequence number processed; nothing is generated
twice. A response the server no longer has (404/400: expired) makes holysse
fall back to replay (a new ``POST``), announced by a ``Resumed("replay")``.
The Responses API has no prefill.

For portability, ``messages=`` is sent as ``input=`` and ``max_tokens=`` /
``max_completion_tokens=`` as ``max_output_tokens=`` when those are absent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .._redact import guard
from ..events import Event, Finished, TextDelta, ThinkingDelta, ToolCallDelta, Usage
from ..exceptions import UsageError
from .._types import HTTPRequest
from ..wire import ServerSentEvent
from .base import Dialect, Endpoint, ResumeState, event_json, join_url, streaming_post, with_query
from .openai_chat import provider_error
from .profiles import ProviderProfile

__all__ = ["OpenAIResponses", "ResponsesParser", "ResponseCursor"]

logger = guard(logging.getLogger(__name__))

_THINKING_DELTAS = frozenset({"response.reasoning_summary_text.delta", "response.reasoning_text.delta"})
_TEXT_DELTAS = frozenset({"response.output_text.delta", "response.refusal.delta"})
_LIFECYCLE = frozenset({"response.created", "response.queued", "response.in_progress"})


@dataclass(frozen=True)
class ResponseCursor:
    """Where a background response can be read again from."""

    response_id: str
    sequence_number: int

    def __str__(self) -> str:
        return f"{self.response_id}@{self.sequence_number}"


class ResponsesParser:
    """Parses one Responses connection (or several, resumed by cursor)."""

    def __init__(self) -> None:
        self.done = False
        #: True once this connection sent ``response.created``.
        self.started = False
        self.cursor: ResponseCursor | None = None
        self.response_id: str | None = None
        self.model: str | None = None
        self._background = False
        self._sequence: int | None = None
        #: function-call item id (and output index) -> tool-call number
        self._calls: dict[Any, int] = {}
        self._call_count = 0

    def resumed(self) -> ResponsesParser:
        """Continue on a new connection: keep the tool numbering and the
        last sequence number."""
        self.done = self.started = False
        return self

    def checkpoint_state(self) -> dict[str, Any]:
        """What :meth:`restore_state` needs to continue by cursor elsewhere."""
        calls = [[key[1], number] if isinstance(key, tuple) else [key, number] for key, number in list(self._calls.items())]
        return {"response_id": self.response_id, "background": self._background, "sequence": self._sequence,
                "calls": [[isinstance(key, tuple), *pair] for key, pair in zip(list(self._calls), calls)],
                "call_count": self._call_count}

    def restore_state(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`checkpoint_state` (taken in another process)."""
        self.response_id = state.get("response_id")
        self._background = bool(state.get("background"))
        sequence = state.get("sequence")
        self._sequence = sequence if isinstance(sequence, int) else None
        self._calls = {(("output", key) if by_output else key): int(number)
                       for by_output, key, number in state.get("calls") or ()}
        self._call_count = int(state.get("call_count") or 0)

    def feed(self, sse: ServerSentEvent) -> list[Event]:
        obj = event_json(sse.data)
        kind = obj.get("type") or sse.event
        sequence = obj.get("sequence_number")
        if kind == "response.created":
            self._restart()
        elif isinstance(sequence, int) and self._sequence is not None and sequence <= self._sequence:
            logger.debug("Dropping %s with sequence number %d (already at %d)", kind, sequence, self._sequence)
            return []
        events = self._events(kind, obj)
        if isinstance(sequence, int):
            self._sequence = sequence
            if self._background and self.response_id:
                self.cursor = ResponseCursor(self.response_id, sequence)
        return events

    def _restart(self) -> None:
        self.started = True
        self._calls, self._call_count, self._sequence = {}, 0, None

    def _events(self, kind: str, obj: dict[str, Any]) -> list[Event]:
        if kind in _TEXT_DELTAS:
            return [TextDelta(obj["delta"])] if obj.get("delta") else []
        if kind == "response.function_call_arguments.delta":
            number = self._call_number(obj)
            return [ToolCallDelta(number, None, None, obj["delta"])] if number is not None and obj.get("delta") else []
        if kind in _THINKING_DELTAS:
            return [ThinkingDelta(obj["delta"])] if obj.get("delta") else []
        if kind == "response.output_item.added":
            return self._item_added(obj)
        if kind in _LIFECYCLE:
            self._note_response(obj.get("response") or {})
            return []
        if kind in ("response.completed", "response.incomplete"):
            return self._finished(kind, obj.get("response") or {})
        if kind == "response.failed":
            response = obj.get("response") or {}
            raise provider_error(response.get("error") or {"message": "the response failed"})
        if kind == "error":  # documented flat; some servers nest it in "error"
            nested = obj.get("error")
            raise provider_error(nested if isinstance(nested, dict) else
                                 {"code": obj.get("code"), "message": obj.get("message")})
        return []

    def _note_response(self, response: dict[str, Any]) -> None:
        if response.get("id"):
            self.response_id = str(response["id"])
        if isinstance(response.get("model"), str):
            self.model = response["model"]
        if "background" in response:
            self._background = response["background"] is True

    def _item_added(self, obj: dict[str, Any]) -> list[Event]:
        item = obj.get("item") or {}
        if item.get("type") != "function_call":
            return []
        number = self._call_count
        self._call_count += 1
        self._calls[item.get("id")] = self._calls[("output", obj.get("output_index"))] = number
        return [ToolCallDelta(number, item.get("call_id"), item.get("name"), item.get("arguments") or "")]

    def _call_number(self, obj: dict[str, Any]) -> int | None:
        number = self._calls.get(obj.get("item_id"))
        if number is None:
            number = self._calls.get(("output", obj.get("output_index")))
        if number is None:
            logger.debug("Function-call arguments for an unknown item %r", obj.get("item_id"))
        return number

    def _finished(self, kind: str, response: dict[str, Any]) -> list[Event]:
        self.done = True
        self._note_response(response)
        if kind == "response.incomplete":
            finished = Finished.of((response.get("incomplete_details") or {}).get("reason") or "incomplete")
        else:
            finished = Finished("tool_calls" if self._call_count else "stop", "completed")
        events: list[Event] = [finished]
        usage = response.get("usage")
        if usage:
            events.append(_usage(usage))
        return events


_ENDINGS = {"completed": "response.completed", "incomplete": "response.incomplete", "failed": "response.failed"}


def _item_text(item: dict[str, Any]) -> list[Event]:
    """The answer and reasoning text of one output item of a whole response."""
    kind = item.get("type")
    if kind == "message":
        texts = [part.get("text") or part.get("refusal") for part in item.get("content") or ()]
        return [TextDelta(text) for text in texts if text]
    if kind == "reasoning":
        parts = [*(item.get("summary") or ()), *(item.get("content") or ())]
        return [ThinkingDelta(part["text"]) for part in parts if part.get("text")]
    return []


def _usage(usage: dict[str, Any]) -> Usage:
    return Usage(
        input_tokens=usage.get("input_tokens"),
        output_tokens=usage.get("output_tokens"),
        total_tokens=usage.get("total_tokens"),
        cached_input_tokens=(usage.get("input_tokens_details") or {}).get("cached_tokens"),
        reasoning_tokens=(usage.get("output_tokens_details") or {}).get("reasoning_tokens"),
        raw=usage,
    )


class OpenAIResponses(Dialect):
    """The OpenAI Responses dialect."""

    name = "openai-responses"
    terminal = "response.completed"
    resumes_before_content = True

    def build_request(self, endpoint: Endpoint, body: dict[str, Any]) -> HTTPRequest:
        payload = dict(body)
        if "input" not in payload and "messages" in payload:
            payload["input"] = payload.pop("messages")
        for alias in ("max_completion_tokens", "max_tokens"):
            if alias in payload and "max_output_tokens" not in payload:
                payload["max_output_tokens"] = payload.pop(alias)
        return streaming_post(endpoint, "responses", payload)

    def parser(self) -> ResponsesParser:
        return ResponsesParser()

    def whole_answer(self, obj: dict[str, Any]) -> list[Event] | None:
        """A finished ``response`` object reads as the events that would
        stream it (a queued or running one is not an answer yet)."""
        output = obj.get("output")
        ending = _ENDINGS.get(str(obj.get("status")))
        if obj.get("object") != "response" or not isinstance(output, list) or ending is None:
            return None
        parser = ResponsesParser()
        events: list[Event] = []
        for index, item in enumerate(output):
            events += parser._item_added({"item": item, "output_index": index})
            events += _item_text(item)
        return events + parser._events(ending, {"response": obj})

    def supports(self, strategy: str, state: ResumeState, profile: ProviderProfile) -> bool:
        if strategy == "cursor":
            return isinstance(state.cursor, ResponseCursor)
        return strategy == "replay"

    def cursor_request(self, original: HTTPRequest, state: ResumeState) -> HTTPRequest:
        """``GET {base}/responses/{id}?stream=true&starting_after=N``: the
        stored response, from the event after the last one delivered."""
        cursor = state.cursor
        if not isinstance(cursor, ResponseCursor):
            raise UsageError("A Responses cursor resume needs the response id and a sequence number.")
        url = with_query(join_url(original.url, quote(cursor.response_id, safe="")),
                         stream="true", starting_after=cursor.sequence_number)
        return original.replace(method="GET", url=url, json=None)
