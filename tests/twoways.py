"""Running one server script two ways: through ``MemoryTransport`` and through
real sockets (:class:`~tests.scripted.ReplyServer`), and the contract every
outcome must meet (DESIGN.md §1).

Also small builders of chat-completions and Responses events with the ids,
roles and completion ids a hostile server chooses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import holysse
from holysse import Reset, TextDelta
from holysse.testing import MemoryTransport, Reply
from holysse.transport import HTTPRequest

from .conftest import Sleeps
from .scripted import ReplyServer

__all__ = ["VIAS", "Run", "run", "assert_contract", "chat", "done", "last_event_id", "reset_aware", "tokens_of"]

#: The two ways a script is played.
VIAS = ("memory", "socket")

Script = Callable[[HTTPRequest, int], Reply]


@dataclass
class Run:
    """What one stream gave its consumer."""

    received: str
    events: list[holysse.Event]
    stream: holysse.Stream
    error: holysse.HolySSEError | None
    requests: list[HTTPRequest]
    sleeps: Sleeps

    @property
    def resets(self) -> int:
        return sum(isinstance(e, Reset) for e in self.events)


def reset_aware(events: Iterable[holysse.Event]) -> str:
    """The text a consumer shows: text events appended, a Reset starts over."""
    parts: list[str] = []
    for event in events:
        if type(event) is TextDelta:
            parts.append(event.text)
        elif isinstance(event, Reset):
            parts = []
    return "".join(parts)


def run(script: Script, via: str, *, body: dict[str, Any] | None = None, keep_events: bool = True,
        **kwargs: Any) -> Run:
    """Stream one answer from ``script`` played ``via`` memory or sockets.
    HolySSE errors are caught into :attr:`Run.error`; anything else propagates.
    ``keep_events=False``: the consumer keeps only the text it shows (for
    memory measurements: a list of events is the consumer's memory, not
    holysse's); :attr:`Run.events` is then empty."""
    kwargs.setdefault("retry", holysse.RetryPolicy(max_attempts=6, backoff_initial=0.001))
    kwargs.setdefault("timeout", holysse.Timeout(connect=5, read=2))
    kwargs.setdefault("api_key", "hs_" + "t" * 20)
    body = body or {"model": "m", "messages": [{"role": "user", "content": "hi"}], "seed": 1}
    sleeps = Sleeps()
    if via == "memory":
        transport = MemoryTransport(script)
        client = holysse.Client(base_url="https://llm.test/v1", transport=transport, sleep=sleeps, **kwargs)
        result = _consume(client, body, sleeps, keep_events)
        result.requests = transport.requests
        assert transport.open_responses == 0
        return result
    with ReplyServer(script) as server:
        client = holysse.Client(base_url=server.url, sleep=sleeps, **kwargs)
        result = _consume(client, body, sleeps, keep_events)
        result.requests = [server.outgoing(request) for request in server.requests]
    return result


def _consume(client: holysse.Client, body: dict[str, Any], sleeps: Sleeps, keep_events: bool = True) -> Run:
    stream = client.stream(**body)
    events: list[holysse.Event] = []
    shown = ""
    error = None
    try:
        for event in stream:
            if keep_events:
                events.append(event)
            elif isinstance(event, Reset):
                shown = ""
            elif type(event) is TextDelta:
                shown += event.text
    except holysse.HolySSEError as exc:
        error = exc
    finally:
        client.close()
    return Run(reset_aware(events) if keep_events else shown, events, stream, error, [], sleeps)


def assert_contract(result: Run, answer: str, *, finished: Iterable[str] = ()) -> None:
    """The consumer's text is ``stream.text``; and it is ``answer``, or after a
    Reset one of ``finished`` (answers of generations that completed), or the
    stream failed with a HolySSE error carrying what was delivered."""
    assert result.received == result.stream.text, "the consumer's text differs from stream.text"
    if result.error is not None:
        assert result.error.partial == result.stream.text, "exc.partial is not what was delivered"
        return
    if result.resets:
        assert result.stream.text in {answer, *finished}, f"after a Reset: {result.stream.text!r}"
    else:
        assert result.stream.text == answer, f"without a Reset: {result.stream.text!r}"


# -- chat-completions events ------------------------------------------------------------


def chat(content: str | None = None, *, ident: str | None = None, role: bool = False, finish: str | None = None,
         cid: str = "chatcmpl-1", usage: bool = False, tool: tuple[int, str] | None = None) -> bytes:
    """One chat-completions event (``ident``: its SSE id; ``cid``: the completion id)."""
    obj: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk"}
    if usage:
        obj["choices"] = []
        obj["usage"] = {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    else:
        delta: dict[str, Any] = {}
        if role:
            delta = {"role": "assistant", "content": ""}
        if content is not None:
            delta["content"] = content
        if tool is not None:
            index, name = tool
            delta["tool_calls"] = [{"index": index, "id": f"call_{index}", "type": "function",
                                    "function": {"name": name, "arguments": ""}}]
        obj["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
    head = f"id: {ident}\n" if ident is not None else ""
    return f"{head}data: {json.dumps(obj, ensure_ascii=False)}\n\n".encode()


def tokens_of(text: str, size: int = 7) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


def done(prefix: str | None = None, *, cid: str = "chatcmpl-1", number: int = 0) -> list[bytes]:
    """The finish event and ``[DONE]``."""
    ident = None if prefix is None else f"{prefix}-{number}"
    return [chat(finish="stop", ident=ident, cid=cid), b"data: [DONE]\n\n"]


def last_event_id(request: HTTPRequest) -> str | None:
    return next((v for k, v in request.headers.items() if k.lower() == "last-event-id"), None)
