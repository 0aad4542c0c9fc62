"""What a process needs to continue a stream another one was pumping.

On a store shared between processes, a pump stores two things beside the
events: the upstream request (once, when the stream starts) and, with each
event, the continuation state after it: the stream's
:class:`holysse.Checkpoint` (:meth:`holysse.Stream.checkpoint`), minus the
answer text, which the stored events already hold (so the state stays
small: the cursor, the strategy's facts, not the answer again). A process
that takes the lease over rebuilds the checkpoint from the state and the
stored events and reopens the upstream with
``client.stream(**request, resume_from=checkpoint)``: holysse's own resume
engine continues the answer by cursor, prefill or replay, as the client
does after a cut, and yields only what comes after the last stored event.

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

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def supported() -> bool:
    """Whether this holysse can resume a stream from a checkpoint."""
    import holysse

    return hasattr(holysse, "Checkpoint") and hasattr(Stream, "checkpoint")


def request_json(request: Mapping[str, Any]) -> str | None:
    """The request as stored for a takeover, or ``None`` when it cannot be
    stored (a value that is not JSON: then the stream cannot be taken over)."""
    try:
        return _encode(dict(request))
    except (TypeError, ValueError):
        logger.info("The request of a relayed stream is not JSON; it cannot be taken over by another process")
        return None


def checkpoint_state(stream: Stream) -> str | None:
    """The continuation state of ``stream`` after the event it just
    yielded, with the answer text left out; ``None`` if this holysse has no
    checkpoints."""
    checkpoint = getattr(stream, "checkpoint", None)
    if checkpoint is None:
        return None
    state: dict[str, Any] = dict(checkpoint().to_dict())
    text, thinking = stream.text, stream.thinking
    for key, value in state.items():
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
    import holysse

    if state is None:
        if entries:
            raise UsageError("the stream has events but no continuation state")
        fresh: Stream = client.stream(**json.loads(request))
        return fresh
    checkpoint_type = getattr(holysse, "Checkpoint", None)
    if checkpoint_type is None or not supported():
        raise UsageError("This holysse cannot resume a stream from a checkpoint.")
    text, thinking = text_of_entries(entries)
    fields = {key: text if value == _TEXT else thinking if value == _THINKING else value
              for key, value in json.loads(state).items()}
    try:
        checkpoint = checkpoint_type.from_dict(fields)
    except (TypeError, ValueError, KeyError) as exc:
        raise UsageError(f"The stored continuation state is not a checkpoint: {exc}") from exc
    stream: Stream = client.stream(**json.loads(request), resume_from=checkpoint)
    return stream
