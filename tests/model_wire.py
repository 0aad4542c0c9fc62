"""Wire bytes for the server model (:mod:`tests.model_server`): one generation
of an answer rendered in one of the three dialects, with the start event, the
completion/message/response id and the SSE id scheme the hostile server picks,
plus the non-progress events and in-stream errors it may add.

Events are rendered whole (start event included) and numbered; a connection
sends a slice of them, so an honest cursor resume is "the events after the
one that carried that id".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["CHAT", "ANTHROPIC", "RESPONSES", "DIALECTS", "ID_SCHEMES", "Flags", "Rendered", "render",
           "nonprogress_event", "error_event"]

CHAT, ANTHROPIC, RESPONSES = "openai-chat", "anthropic", "openai-responses"
DIALECTS = (CHAT, ANTHROPIC, RESPONSES)
#: How SSE ids look (chat and Anthropic; the Responses cursor is the sequence number).
ID_SCHEMES = ("plain", "none", "repeat", "backwards", "non-ascii", "huge")
_HUGE = "h" * 2000

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(frozen=True)
class Flags:
    """How one connection renders a generation.

    :param role: send the start event (chat role delta, Anthropic
        ``message_start``, Responses ``response.created``).
    :param cid: the completion / message / response id in the JSON.
    :param ids: the SSE id scheme (:data:`ID_SCHEMES`).
    :param prefix: the SSE id prefix.
    :param background: (Responses) the response is resumable by ``GET``.
    """

    role: bool = True
    cid: str = "g0"
    ids: str = "plain"
    prefix: str = "a"
    background: bool = True


@dataclass(frozen=True)
class Rendered:
    """A generation's events: ``events[i]`` is the bytes, ``ids[i]`` its SSE
    id (or ``None``); events before ``first`` are the start events (sent only
    with ``Flags.role``); the last event is the terminal marker."""

    events: tuple[bytes, ...]
    ids: tuple[str | None, ...]
    first: int


def _sse_id(scheme: str, prefix: str, number: int) -> str | None:
    if scheme == "none":
        return None
    if scheme == "repeat":
        return f"{prefix}-{number // 2}"
    if scheme == "backwards":
        return f"{prefix}-{9999 - number}"
    if scheme == "non-ascii":
        return f"日本{prefix}-{number}"
    if scheme == "huge":
        return f"{_HUGE}{prefix}-{number}"
    return f"{prefix}-{number}"


def _frame(data: str, event: str | None, ident: str | None) -> bytes:
    head = f"id: {ident}\n" if ident is not None else ""
    if event is not None:
        head += f"event: {event}\n"
    return f"{head}data: {data}\n\n".encode()


def render(dialect: str, tokens: list[str], flags: Flags) -> Rendered:
    """All the events of one generation whose answer is ``"".join(tokens)``."""
    items, first = _ITEMS[dialect](tokens, flags)
    events, ids = [], []
    for number, (event, data) in enumerate(items):
        last = number == len(items) - 1
        ident = None if dialect == RESPONSES or (dialect == CHAT and last) else _sse_id(flags.ids, flags.prefix, number)
        events.append(_frame(data, event, ident))
        ids.append(ident)
    return Rendered(tuple(events), tuple(ids), first)


def _chat_items(tokens: list[str], flags: Flags) -> tuple[list[tuple[str | None, str]], int]:
    base = f'{{"id":{_dumps(flags.cid)},"object":"chat.completion.chunk","choices":[{{"index":0,"delta":'
    items: list[tuple[str | None, str]] = [(None, base + '{"role":"assistant","content":""},"finish_reason":null}]}')]
    items += [(None, base + f'{{"content":{_dumps(t)}}},"finish_reason":null}}]}}') for t in tokens]
    items.append((None, base + '{},"finish_reason":"stop"}]}'))
    items.append((None, "[DONE]"))
    return items, 1


def _anthropic_items(tokens: list[str], flags: Flags) -> tuple[list[tuple[str | None, str]], int]:
    message = {"id": flags.cid, "type": "message", "role": "assistant", "content": [], "stop_reason": None,
               "usage": {"input_tokens": 3, "output_tokens": 1}}
    items: list[tuple[str | None, str]] = [
        ("message_start", _dumps({"type": "message_start", "message": message})),
        ("content_block_start", '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}'),
    ]
    items += [("content_block_delta", '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":'
               + _dumps(t) + "}}") for t in tokens]
    items.append(("content_block_stop", '{"type":"content_block_stop","index":0}'))
    items.append(("message_delta", '{"type":"message_delta","delta":{"stop_reason":"end_turn"},'
                                   '"usage":{"output_tokens":5}}'))
    items.append(("message_stop", '{"type":"message_stop"}'))
    return items, 2


def _responses_items(tokens: list[str], flags: Flags) -> tuple[list[tuple[str | None, str]], int]:
    response: dict[str, Any] = {"id": flags.cid, "object": "response", "status": "in_progress",
                                "background": flags.background, "output": []}
    items: list[tuple[str | None, str]] = [
        ("response.created", _dumps({"type": "response.created", "sequence_number": 0, "response": response})),
        ("response.in_progress", _dumps({"type": "response.in_progress", "sequence_number": 1,
                                         "response": response})),
    ]
    items += [("response.output_text.delta", f'{{"type":"response.output_text.delta","sequence_number":{2 + i},'
               f'"item_id":"msg_{flags.cid}","output_index":0,"content_index":0,"delta":{_dumps(t)}}}')
              for i, t in enumerate(tokens)]
    done = {**response, "status": "completed"}
    items.append(("response.completed", _dumps({"type": "response.completed", "sequence_number": 2 + len(tokens),
                                                "response": done})))
    return items, 1


_ITEMS = {CHAT: _chat_items, ANTHROPIC: _anthropic_items, RESPONSES: _responses_items}


def nonprogress_event(dialect: str, cid: str, number: int) -> bytes:
    """An event that carries no answer: a comment, an empty chat chunk, an
    Anthropic ping."""
    if number % 2 == 0 or dialect == RESPONSES:
        return b": keep-alive\n\n"
    if dialect == CHAT:
        return _frame(f'{{"id":{_dumps(cid)},"object":"chat.completion.chunk","choices":[]}}', None, None)
    return _frame('{"type":"ping"}', "ping", None)


def error_event(dialect: str, retryable: bool, sequence: int) -> bytes:
    """The dialect's in-stream error (an overload, or a refusal when not ``retryable``)."""
    if dialect == ANTHROPIC:
        kind = "overloaded_error" if retryable else "invalid_request_error"
        return _frame(_dumps({"type": "error", "error": {"type": kind, "message": "model says no"}}), "error", None)
    if dialect == RESPONSES:
        code = "server_error" if retryable else "invalid_prompt"
        return _frame(_dumps({"type": "error", "code": code, "message": "model says no",
                              "sequence_number": sequence}), "error", None)
    kind = "server_error" if retryable else "invalid_request_error"
    return _frame(_dumps({"error": {"message": "model says no", "type": kind}}), None, None)
