"""Where an answer stands, as a value: :class:`Checkpoint`.

A checkpoint is what another process needs to continue an answer that a
worker started (a relay taking over after its worker died): the request
body, the dialect and provider, what was delivered (text, reasoning, tool
calls), the cursor with the delivered position it belongs to, and the
resume state. It is frozen, small (no event history) and JSON-serialisable
(:meth:`Checkpoint.to_dict`, :meth:`Checkpoint.from_dict`). It never holds
the API key or the request headers.

``stream.checkpoint()`` takes one; ``client.stream(resume_from=checkpoint)``
continues the answer from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from ._delivered import Position
from .dialects.openai_responses import ResponseCursor
from .dialects.profiles import ProviderProfile
from .events import ToolCall
from .exceptions import UsageError

if TYPE_CHECKING:
    from ._resume_core import ResumeCore

__all__ = ["Checkpoint"]

_VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    """An answer in progress, to be continued elsewhere
    (``client.stream(resume_from=checkpoint)``).

    :param body: the request body as passed to ``stream()`` (no key, no headers).
    :param dialect: the dialect's name.
    :param provider: the provider profile (name, strategies, prefill flavour).
    :param text: the answer text delivered.
    :param thinking: the reasoning delivered.
    :param tool_calls: the tool calls delivered (possibly incomplete).
    :param cursor: where a cursor resume continues from: an SSE id, a
        ``{"response_id", "sequence_number"}`` dict (Responses), or ``None``.
    :param position: the delivered lengths the cursor belongs to
        (``{"text": n, "thinking": n, "tools": {"0": n}}``).
    :param content_events: content events delivered (about one token each).
    :param refused: strategies the server refused for this answer.
    :param finish_reason: set when the answer had finished.
    :param parser: the dialect parser's state a cursor resume needs
        (tool-call numbering, the last sequence number).
    :param version: the format version.

    .. versionadded:: 0.2
    """

    body: Mapping[str, Any]
    dialect: str
    provider: Mapping[str, Any]
    text: str = ""
    thinking: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    cursor: str | Mapping[str, Any] | None = None
    position: Mapping[str, Any] = field(default_factory=dict)
    content_events: int = 0
    refused: tuple[str, ...] = ()
    finish_reason: str | None = None
    parser: Mapping[str, Any] = field(default_factory=dict)
    version: int = _VERSION

    def __repr__(self) -> str:
        return (
            f"<holysse.Checkpoint {self.dialect} chars={len(self.text)} thinking={len(self.thinking)} "
            f"tool_calls={len(self.tool_calls)} cursor={'yes' if self.cursor is not None else 'no'}>"
        )

    # -- serialisation ------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (``json.dumps`` takes it as it is)."""
        return {
            "version": self.version,
            "dialect": self.dialect,
            "provider": dict(self.provider),
            "body": dict(self.body),
            "text": self.text,
            "thinking": self.thinking,
            "tool_calls": [
                {"index": c.index, "id": c.id, "name": c.name, "arguments": c.arguments} for c in self.tool_calls
            ],
            "cursor": dict(self.cursor) if isinstance(self.cursor, Mapping) else self.cursor,
            "position": {
                "text": int(self.position.get("text", 0)),
                "thinking": int(self.position.get("thinking", 0)),
                "tools": {str(k): int(v) for k, v in dict(self.position.get("tools") or {}).items()},
            },
            "content_events": self.content_events,
            "refused": list(self.refused),
            "finish_reason": self.finish_reason,
            "parser": dict(self.parser),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Checkpoint:
        """The checkpoint :meth:`to_dict` gave.

        :raises UsageError: ``data`` is not one (or of an unknown version).
        """
        try:
            if data.get("version") != _VERSION:
                raise ValueError(f"version {data.get('version')!r}, this holysse reads version {_VERSION}")
            calls = tuple(
                ToolCall(int(c["index"]), c.get("id"), c.get("name"), str(c.get("arguments") or ""))
                for c in data.get("tool_calls") or ()
            )
            cursor = data.get("cursor")
            if cursor is not None and not isinstance(cursor, (str, Mapping)):
                raise ValueError("cursor must be a string, an object or null")
            provider = dict(data["provider"])
            ProviderProfile(str(provider["name"]), tuple(provider["strategies"]), provider.get("prefill_flavour"))
            body = data["body"]
            if not isinstance(body, Mapping) or not isinstance(data["dialect"], str):
                raise ValueError("body must be an object and dialect a string")
            return cls(
                body=dict(body),
                dialect=data["dialect"],
                provider=provider,
                text=str(data.get("text") or ""),
                thinking=str(data.get("thinking") or ""),
                tool_calls=calls,
                cursor=cursor,
                position=dict(data.get("position") or {}),
                content_events=int(data.get("content_events") or 0),
                refused=tuple(str(s) for s in data.get("refused") or ()),
                finish_reason=data.get("finish_reason"),
                parser=dict(data.get("parser") or {}),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UsageError(
                f"Not a holysse checkpoint ({type(exc).__name__}: {exc}); pass what Checkpoint.to_dict() returned."
            ) from None

    # -- with the resume core --------------------------------------------------------

    def profile(self) -> ProviderProfile:
        """The provider profile it was taken with."""
        p = self.provider
        return ProviderProfile(str(p["name"]), tuple(p["strategies"]), p.get("prefill_flavour"))

    @classmethod
    def capture(cls, core: ResumeCore, body: Mapping[str, Any]) -> Checkpoint:
        """The checkpoint of ``core`` now (safe from any thread)."""
        delivered = core.delivered
        with delivered.lock:
            cursor, position = delivered.cursor, delivered.position
            snap = core.acc.snapshot()
            content_events = delivered.content_events
            refused = tuple(sorted(core.refused))
            parser_state = getattr(core.parser, "checkpoint_state", None)
            state: dict[str, Any] = parser_state() if parser_state is not None else {}
        provider = core.provider
        if isinstance(cursor, ResponseCursor):
            shown: str | dict[str, Any] | None = {
                "response_id": cursor.response_id, "sequence_number": cursor.sequence_number,
            }
        else:
            shown = None if cursor is None else str(cursor)
        return cls(
            body=dict(body),
            dialect=core.dialect.name,
            provider={"name": provider.name, "strategies": list(provider.strategies),
                      "prefill_flavour": provider.prefill_flavour},
            text=snap.text,
            thinking=snap.thinking,
            tool_calls=snap.tool_calls,
            cursor=shown,
            position={"text": position.text, "thinking": position.thinking,
                      "tools": {str(k): v for k, v in position.tools.items()}},
            content_events=content_events,
            refused=refused,
            finish_reason=snap.finish_reason,
            parser=state,
        )

    def restore_into(self, core: ResumeCore) -> None:
        """Make a fresh ``core`` continue from here: what was delivered is
        in its accumulator (no callback runs for it), and its first
        connection resumes by the best strategy allowed."""
        core.acc.restore(self.text, self.thinking, self.tool_calls, self.finish_reason)
        delivered = core.delivered
        delivered.content_events = max(self.content_events, 1 if self.text or self.thinking or self.tool_calls else 0)
        delivered.thinking_len = len(self.thinking)
        delivered.tool_lens = {c.index: len(c.arguments) for c in self.tool_calls}
        delivered.tool_names = {c.index: c.name for c in self.tool_calls}
        delivered.finished = core.finished_before = self.finish_reason is not None
        delivered.budget.spend(len(self.text) + len(self.thinking) + sum(len(c.arguments) for c in self.tool_calls))
        cursor: Any = self.cursor
        if isinstance(cursor, Mapping):
            cursor = ResponseCursor(str(cursor["response_id"]), int(cursor["sequence_number"]))
        pos = self.position
        position = Position(
            int(pos.get("text", 0)), int(pos.get("thinking", 0)),
            {int(k): int(v) for k, v in dict(pos.get("tools") or {}).items()},
        )
        delivered.move_cursor(cursor, position)
        core.refused.update(self.refused)
        parser = core.dialect.parser()
        restore = getattr(parser, "restore_state", None)
        if restore is not None and self.parser:
            restore(dict(self.parser))
        parser.cursor = cursor
        core.parser = parser
        if self.content_events or self.text or cursor is not None:
            core.start_strategy(core.choose_strategy())
