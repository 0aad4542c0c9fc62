"""The relay's events: holysse's typed events <-> the SSE events browsers get.

:func:`to_wire` gives the event name and one-line JSON data the relay stores
and sends for a :class:`holysse.Event`; :func:`from_wire` turns a stored
entry back into the same typed event, for Python readers
(:meth:`Relay.follow <holysse.relay.core.Relay.follow>`).
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring as _json_string  # the C escaper relay_json uses
from typing import Any

from .. import Event, Finished, Reconnecting, Reset, Resumed, TextDelta, ThinkingDelta, ToolCallDelta, Usage

__all__ = ["to_wire", "from_wire", "relay_json", "usage_dict", "RESET_REASON"]

relay_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

#: The reason sent with a ``reset`` event.
RESET_REASON = "the model's answer changed; showing it from the start"


def usage_dict(usage: Usage | None) -> dict[str, Any] | None:
    """The JSON form of a :class:`~holysse.Usage` sent to browsers."""
    if usage is None:
        return None
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens}


def to_wire(event: Event) -> tuple[str, str] | None:
    """The SSE event name and JSON data for ``event``, or ``None`` for events
    not relayed (:class:`~holysse.Finished`: its reason travels in the final
    ``finish`` event)."""
    kind = type(event)
    if kind is TextDelta:  # nearly every relayed event: its JSON built directly, as relay_json writes it
        return "text", '{"text":' + _json_string(event.text) + "}"
    if kind is ThinkingDelta:
        return "thinking", '{"text":' + _json_string(event.thinking) + "}"  # type: ignore[union-attr]
    if kind is ToolCallDelta:
        return "tool", relay_json({"index": event.index, "id": event.id, "name": event.name,  # type: ignore[union-attr]
                                   "arguments": event.arguments})  # type: ignore[union-attr]
    if kind is Usage:
        return "usage", relay_json(usage_dict(event))  # type: ignore[arg-type]
    if kind is Reset:
        return "reset", relay_json({"reason": RESET_REASON})
    if kind is Reconnecting:
        return "upstream", relay_json({"state": "reconnecting", "attempt": event.attempt,  # type: ignore[union-attr]
                                       "delay": event.delay})  # type: ignore[union-attr]
    if kind is Resumed:
        return "upstream", relay_json({"state": "resumed", "strategy": event.strategy,  # type: ignore[union-attr]
                                       "attempt": event.attempt})  # type: ignore[union-attr]
    return None


def from_wire(event: str, data: str, text_so_far: str = "") -> Event | None:
    """The typed event for a stored entry (``finish`` gives
    :class:`~holysse.Finished`; ``failed`` and unknown names ``None``).

    :param text_so_far: the text delivered before, carried by a ``reset``.
    """
    fields = json.loads(data)
    if event == "text":
        return TextDelta(fields["text"])
    if event == "thinking":
        return ThinkingDelta(fields["text"])
    if event == "tool":
        return ToolCallDelta(fields["index"], fields.get("id"), fields.get("name"), fields.get("arguments") or "")
    if event == "usage":
        return _usage(fields)
    if event == "reset":
        return Reset(text_so_far, fields.get("reason", RESET_REASON))
    if event == "upstream":
        if fields.get("state") == "resumed":
            return Resumed(str(fields.get("strategy", "")), int(fields.get("attempt", 0)))
        return Reconnecting(int(fields.get("attempt", 0)), float(fields.get("delay", 0.0)), "upstream")
    if event == "finish":
        return Finished(fields.get("reason"))
    return None


def _usage(fields: dict[str, Any]) -> Usage:
    return Usage(fields.get("input_tokens"), fields.get("output_tokens"), fields.get("total_tokens"))
