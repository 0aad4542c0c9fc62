"""Wire shapes of the three APIs the fake server speaks.

Each encoder turns a :class:`~holysse.testing.generation.Generation` into the
list of SSE events the real API would send, as ``(event_type, data)`` pairs
(``event_type`` is ``None`` for plain ``data:`` events). Also here: the JSON
error bodies, in-stream error events and non-streaming JSON answers of each
API. SSE serialisation and HTTP framing live in
:mod:`holysse.testing.framing`.

- OpenAI chat: ``data: {chunk}`` events, ``data: [DONE]`` at the end.
- Anthropic Messages: ``event: <type>`` + ``data: {"type": <type>, ...}``,
  ``ping`` every 20 events, ``message_stop`` at the end.
- OpenAI Responses: ``event: <type>``, every payload has a ``sequence_number``
  equal to its event index; ``response.completed`` (or ``.incomplete``) at the end.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

from .generation import ANTHROPIC, CHAT, RESPONSES, Generation

__all__ = ["SSEItem", "encode_events", "error_body", "stream_error_events", "final_json", "models_json"]

logger = logging.getLogger(__name__)

#: One SSE event before serialisation: (event type or None, data).
SSEItem = tuple[str | None, str]

_PING_EVERY = 20
_SLOT = "\x00slot\x00"


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
#: Compact JSON, UTF-8 characters kept as they are.
_dumps = _ENCODER.encode
#: JSON for one string (what ``_dumps`` gives for a ``str``, faster).
_dump_str: Callable[[str], str] = json.encoder.encode_basestring


def _template(value: Any) -> Callable[[str], str]:
    """A fast encoder for ``value`` with one string replaced by ``_SLOT``:
    returns ``f(s)`` giving the JSON of ``value`` with ``s`` in the slot."""
    prefix, suffix = _dumps(value).split(_dumps(_SLOT))
    return lambda text: prefix + _dump_str(text) + suffix


# -- OpenAI chat --------------------------------------------------------------


def _chat_usage(gen: Generation) -> dict[str, int]:
    output = gen.output_tokens
    return {"prompt_tokens": gen.prompt_tokens, "completion_tokens": output,
            "total_tokens": gen.prompt_tokens + output}


def _chat_events(gen: Generation) -> list[SSEItem]:
    base = {"id": f"chatcmpl-{gen.gen_id}", "object": "chat.completion.chunk", "created": gen.created,
            "model": gen.model, "system_fingerprint": "fp_holysse"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        return _dumps({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]})

    content = _template({**base, "choices": [{"index": 0, "delta": {"content": _SLOT}, "logprobs": None,
                                              "finish_reason": None}]})
    events: list[SSEItem] = [(None, chunk({"role": "assistant", "content": ""}))]
    events.extend((None, content(token)) for token in gen.tokens)
    for index, call in enumerate(gen.tool_calls):
        head = {"index": index, "id": call.call_id, "type": "function",
                "function": {"name": call.name, "arguments": ""}}
        events.append((None, chunk({"tool_calls": [head]})))
        fragment = _template({**base, "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": index, "function": {"arguments": _SLOT}}]}, "logprobs": None, "finish_reason": None}]})
        events.extend((None, fragment(piece)) for piece in call.fragments)
    events.append((None, chunk({}, gen.finish)))
    if gen.include_usage:
        events.append((None, _dumps({**base, "choices": [], "usage": _chat_usage(gen)})))
    events.append((None, "[DONE]"))
    return events


# -- Anthropic Messages -------------------------------------------------------

_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def _message(gen: Generation, *, final: bool) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if final:
        if gen.thinking:
            content.append({"type": "thinking", "thinking": gen.thinking, "signature": _signature(gen)})
        content.append({"type": "text", "text": gen.text})
        content.extend({"type": "tool_use", "id": c.call_id, "name": c.name, "input": json.loads(c.arguments)}
                       for c in gen.tool_calls)
    return {"id": f"msg_{gen.gen_id}", "type": "message", "role": "assistant", "model": gen.model,
            "content": content, "stop_reason": _STOP_REASONS[gen.finish] if final else None,
            "stop_sequence": None,
            "usage": {"input_tokens": gen.prompt_tokens, "output_tokens": gen.output_tokens if final else 1}}


def _signature(gen: Generation) -> str:
    return f"sig_{gen.gen_id}_{len(gen.thinking)}"


def _anthropic_block(index: int, start: dict[str, Any], delta_key: str, delta_type: str,
                     pieces: list[str]) -> list[SSEItem]:
    events: list[SSEItem] = [("content_block_start", _dumps(
        {"type": "content_block_start", "index": index, "content_block": start}))]
    delta = _template({"type": "content_block_delta", "index": index, "delta": {"type": delta_type, delta_key: _SLOT}})
    events.extend(("content_block_delta", delta(piece)) for piece in pieces)
    return events


def _anthropic_events(gen: Generation) -> list[SSEItem]:
    body: list[SSEItem] = []
    index = 0
    if gen.thinking:
        body += _anthropic_block(index, {"type": "thinking", "thinking": "", "signature": ""}, "thinking",
                                 "thinking_delta", gen.thinking_tokens)
        body.append(("content_block_delta", _dumps({"type": "content_block_delta", "index": index, "delta": {
            "type": "signature_delta", "signature": _signature(gen)}})))
        body.append(("content_block_stop", _dumps({"type": "content_block_stop", "index": index})))
        index += 1
    body += _anthropic_block(index, {"type": "text", "text": ""}, "text", "text_delta", gen.tokens)
    body.append(("content_block_stop", _dumps({"type": "content_block_stop", "index": index})))
    for call in gen.tool_calls:
        index += 1
        body += _anthropic_block(index, {"type": "tool_use", "id": call.call_id, "name": call.name, "input": {}},
                                 "partial_json", "input_json_delta", call.fragments)
        body.append(("content_block_stop", _dumps({"type": "content_block_stop", "index": index})))
    start = {"type": "message_start", "message": _message(gen, final=False)}
    events: list[SSEItem] = [("message_start", _dumps(start))]
    ping = ("ping", '{"type":"ping"}')
    for number, item in enumerate(body):
        if number % _PING_EVERY == 0:
            events.append(ping)
        events.append(item)
    events.append(("message_delta", _dumps({
        "type": "message_delta", "delta": {"stop_reason": _STOP_REASONS[gen.finish], "stop_sequence": None},
        "usage": {"output_tokens": gen.output_tokens}})))
    events.append(("message_stop", '{"type":"message_stop"}'))
    return events


# -- OpenAI Responses ---------------------------------------------------------


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": []}


def _message_item(gen: Generation, done: bool) -> dict[str, Any]:
    return {"id": f"msg_{gen.gen_id}", "type": "message", "status": "completed" if done else "in_progress",
            "role": "assistant", "content": [_text_part(gen.text)] if done else []}


def _call_item(gen: Generation, index: int, done: bool) -> dict[str, Any]:
    call = gen.tool_calls[index]
    return {"id": f"fc_{gen.gen_id}{index}", "type": "function_call", "status": "completed" if done else "in_progress",
            "call_id": call.call_id, "name": call.name, "arguments": call.arguments if done else ""}


def _response(gen: Generation, status: str) -> dict[str, Any]:
    final = status in ("completed", "incomplete")
    output = [_message_item(gen, True)] + [_call_item(gen, i, True) for i in range(len(gen.tool_calls))]
    usage = {"input_tokens": gen.prompt_tokens, "input_tokens_details": {"cached_tokens": 0},
             "output_tokens": gen.output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
             "total_tokens": gen.prompt_tokens + gen.output_tokens}
    return {"id": f"resp_{gen.gen_id}", "object": "response", "created_at": gen.created, "status": status,
            "background": gen.background, "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "model": gen.model, "output": output if final else [], "usage": usage if final else None}


def _responses_events(gen: Generation) -> list[SSEItem]:
    items: list[dict[str, Any]] = [
        {"type": "response.created", "response": _response(gen, "in_progress")},
        {"type": "response.in_progress", "response": _response(gen, "in_progress")},
        {"type": "response.output_item.added", "output_index": 0, "item": _message_item(gen, False)},
        {"type": "response.content_part.added", "item_id": f"msg_{gen.gen_id}", "output_index": 0,
         "content_index": 0, "part": _text_part("")},
    ]
    events: list[SSEItem] = []
    head = f'{{"type":"response.output_text.delta","item_id":"msg_{gen.gen_id}","output_index":0,' \
           f'"content_index":0,"sequence_number":'
    tail = [
        {"type": "response.output_text.done", "item_id": f"msg_{gen.gen_id}", "output_index": 0,
         "content_index": 0, "text": gen.text},
        {"type": "response.content_part.done", "item_id": f"msg_{gen.gen_id}", "output_index": 0,
         "content_index": 0, "part": _text_part(gen.text)},
        {"type": "response.output_item.done", "output_index": 0, "item": _message_item(gen, True)},
    ]
    for index, call in enumerate(gen.tool_calls):
        item_id = f"fc_{gen.gen_id}{index}"
        tail.append({"type": "response.output_item.added", "output_index": index + 1,
                     "item": _call_item(gen, index, False)})
        tail += [{"type": "response.function_call_arguments.delta", "item_id": item_id, "output_index": index + 1,
                  "delta": piece} for piece in call.fragments]
        tail.append({"type": "response.function_call_arguments.done", "item_id": item_id,
                     "output_index": index + 1, "arguments": call.arguments})
        tail.append({"type": "response.output_item.done", "output_index": index + 1,
                     "item": _call_item(gen, index, True)})
    status = "incomplete" if gen.finish == "length" else "completed"
    tail.append({"type": f"response.{status}", "response": _response(gen, status)})
    for item in items:
        events.append((str(item["type"]), _dumps({**item, "sequence_number": len(events)})))
    for token in gen.tokens:
        events.append(("response.output_text.delta", f"{head}{len(events)},\"delta\":{_dump_str(token)}}}"))
    for item in tail:
        events.append((str(item["type"]), _dumps({**item, "sequence_number": len(events)})))
    return events


# -- shared -------------------------------------------------------------------

_ENCODERS: dict[str, Callable[[Generation], list[SSEItem]]] = {
    CHAT: _chat_events, ANTHROPIC: _anthropic_events, RESPONSES: _responses_events,
}


def encode_events(gen: Generation) -> list[SSEItem]:
    """The complete list of SSE events for ``gen`` in its dialect."""
    return _ENCODERS[gen.dialect](gen)


_OPENAI_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error",
                 404: "invalid_request_error", 408: "timeout", 409: "conflict", 413: "invalid_request_error",
                 422: "invalid_request_error", 429: "rate_limit_exceeded"}
_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                    500: "api_error", 529: "overloaded_error"}


def error_body(dialect: str, status: int, message: str, error_type: str | None = None) -> bytes:
    """An HTTP error body in the provider's shape.

    :param dialect: decides the shape (Anthropic or OpenAI).
    :param error_type: the error type; by default derived from ``status``.
    """
    if dialect == ANTHROPIC:
        kind = error_type or _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return _dumps({"type": "error", "error": {"type": kind, "message": message}}).encode("utf-8")
    kind = error_type or _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    code = {401: "invalid_api_key", 404: "not_found", 429: "rate_limit_exceeded"}.get(status)
    return _dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode("utf-8")


def stream_error_events(gen: Generation, at_event: int, error_type: str, message: str,
                        retryable: bool) -> list[SSEItem]:
    """The in-stream error a provider sends instead of event ``at_event`` and after."""
    if gen.dialect == ANTHROPIC:
        kind = error_type
        if error_type == "server_error":
            kind = "overloaded_error" if retryable else "api_error"
        return [("error", _dumps({"type": "error", "error": {"type": kind, "message": message}}))]
    if gen.dialect == RESPONSES:
        failed = {**_response(gen, "failed"), "error": {"code": error_type, "message": message}}
        return [
            ("error", _dumps({"type": "error", "code": error_type, "message": message, "param": None,
                              "sequence_number": at_event})),
            ("response.failed", _dumps({"type": "response.failed", "response": failed,
                                        "sequence_number": at_event + 1})),
        ]
    return [(None, _dumps({"error": {"message": message, "type": error_type, "param": None, "code": None}}))]


def final_json(gen: Generation) -> bytes:
    """The non-streaming answer (``stream`` false, or retrieving a response)."""
    if gen.dialect == ANTHROPIC:
        value: dict[str, Any] = _message(gen, final=True)
    elif gen.dialect == RESPONSES:
        value = _response(gen, "incomplete" if gen.finish == "length" else "completed")
    else:
        message: dict[str, Any] = {"role": "assistant", "content": gen.text}
        if gen.tool_calls:
            message["tool_calls"] = [{"id": c.call_id, "type": "function",
                                      "function": {"name": c.name, "arguments": c.arguments}}
                                     for c in gen.tool_calls]
        value = {"id": f"chatcmpl-{gen.gen_id}", "object": "chat.completion", "created": gen.created,
                 "model": gen.model, "choices": [{"index": 0, "message": message, "finish_reason": gen.finish}],
                 "usage": _chat_usage(gen)}
    return _dumps(value).encode("utf-8")


def models_json(names: tuple[str, ...]) -> bytes:
    """The body of ``GET /v1/models``."""
    return _dumps({"object": "list", "data": [{"id": name, "object": "model", "created": 1700000000,
                                               "owned_by": "holysse"} for name in names]}).encode("utf-8")
