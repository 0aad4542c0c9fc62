"""What a process needs to continue a stream another one was pumping.

On a store shared between processes, a pump stores two things beside the
events: the upstream request (once, when the stream starts) and, with each
event, the continuation state after it: the stream's
:class:`holysse.Checkpoint` (:meth:`holysse.Stream.checkpoint`), minus the
request body (stored once) and the answer text and reasoning, which the
stored events already hold. So the state stays small: the cursor, the
positions, the strategy's facts (and tool calls), not the answer again. A
process that takes the lease over rebuilds the checkpoint from the state,
the request and the stored events and reopens the upstream with
``client.stream(resume_from=checkpoint)``: holysse's own resume engine
continues the answer by cursor, prefill or replay, as the client does after
a cut, and yields only what comes after the last stored event.

This module is the only one that knows the checkpoint's shape.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Iterable, Mapping

from .. import Client, Stream
from ..exceptions import UsageError
from .store import Entry

__all__ = ["checkpoint_state", "request_json", "resume", "text_of_entries", "supported"]

logger = logging.getLogger(__name__)

#: Stands for a state value that equals the answer text (rebuilt from the stored events).
_TEXT = {"$relay": "text"}
_THINKING = {"$relay": "thinking"}
_BODY = {"$relay": "body"}

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def supported() -> bool:
    """Whether this holysse can resume a stream from a checkpoint."""
    import holysse

    return hasattr(holysse, "Checkpoint") and hasattr(Stream, "checkpoint")


def _checkpoint(stream: Stream) -> dict[str, Any]:
    """``stream.checkpoint().to_dict()`` (looked up: older holysse has none)."""
    take = getattr(stream, "checkpoint")  # noqa: B009
    state: dict[str, Any] = dict(take().to_dict())
    return state


def request_json(request: Mapping[str, Any], stream: Stream) -> str | None:
    """The request as stored for a takeover: the body the stream's
    checkpoints carry, or the arguments of ``client.stream()`` when this
    holysse has no checkpoints; ``None`` when it is not JSON (then the
    stream cannot be taken over)."""
    body: Any = request
    if supported():
        body = _checkpoint(stream).get("body", request)
    try:
        return _encode(dict(body))
    except (TypeError, ValueError):
        logger.info("The request of a relayed stream is not JSON; it cannot be taken over by another process")
        return None


def checkpoint_state(stream: Stream) -> str | None:
    """The continuation state of ``stream`` after the event it just
    yielded, without the request body and the answer text; ``None`` if
    this holysse has no checkpoints."""
    if not supported():
        return None
    state = _checkpoint(stream)
    if "body" in state:
        state["body"] = _BODY
    text, thinking = stream.text, stream.thinking
    for key in ("text", "thinking"):
        value = state.get(key)
        if isinstance(value, str) and value:
            if value == text:
                state[key] = _TEXT
            elif value == thinking:
                state[key] = _THINKING
    return _encode(state)


def text_of_entries(entries: Iterable[Entry]) -> tuple[str, str]:
    """The answer text and reasoning the stored entries carry (a ``reset``
    starts them again, as it does in the page)."""
    text: list[str] = []
    thinking: list[str] = []
    for entry in entries:
        if entry.event == "text":
            text.append(json.loads(entry.data)["text"])
        elif entry.event == "thinking":
            thinking.append(json.loads(entry.data)["text"])
        elif entry.event == "reset":
            text.clear()
            thinking.clear()
    return "".join(text), "".join(thinking)


def resume(client: Client, request: str, state: str | None, entries: list[Entry]) -> Stream:
    """Reopen the upstream answer after the last of ``entries`` (from the
    start when no event was stored yet: ``state`` is ``None``).

    :raises UsageError: this holysse cannot resume from a checkpoint, or the
        stored state is not one.
    """
    body = json.loads(request)
    if state is None:
        if entries:
            raise UsageError("the stream has events but no continuation state")
        fresh: Stream = client.stream(**body)
        return fresh
    if not supported():
        raise UsageError("This holysse cannot resume a stream from a checkpoint.")
    import holysse

    text, thinking = text_of_entries(entries)
    markers = {"text": (_TEXT, text), "thinking": (_THINKING, thinking), "body": (_BODY, body)}
    fields = {key: markers[key][1] if key in markers and value == markers[key][0] else value
              for key, value in json.loads(state).items()}
    checkpoint = getattr(holysse, "Checkpoint").from_dict(fields)  # noqa: B009
    stream: Stream = client.stream(resume_from=checkpoint)
    return stream
