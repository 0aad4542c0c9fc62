"""What a wire dialect provides: the seam between SSE events and typed events.

A dialect builds the HTTP request for a call, parses one connection's
:class:`~holysse.wire.ServerSentEvent`\\ s into typed events (it knows the
terminal marker and the in-stream error shape), and builds the request that
resumes a cut stream with a given strategy.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Protocol
from urllib.parse import urlencode

from ..events import Event
from ..exceptions import HTTPStatusError, ProtocolError, UsageError
from .._types import HTTPRequest, utf8_header
from ..wire import ServerSentEvent
from .profiles import ProviderProfile

__all__ = [
    "Endpoint", "ResumeState", "Parser", "Dialect", "join_url", "with_query", "streaming_post", "with_last_event_id", "event_json",
    "content_text",
]


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to connect. ``repr`` never shows the key."""

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ResumeState:
    """What the client knows when it resumes a cut stream.

    :param text: the answer text delivered so far.
    :param cursor: the parser's cursor after the last event fully processed
        (an SSE id, or a dialect-specific position), ``None`` when there is none.
    :param output_events: content events delivered so far (about one token each).
    :param tool_calls_open: tool-call arguments have been delivered.
    :param thinking: reasoning text delivered so far.
    """

    text: str
    cursor: Any = None
    output_events: int = 0
    tool_calls_open: bool = False
    thinking: str = ""


class Parser(Protocol):
    """Parses one connection. ``done`` turns true at the terminal marker;
    ``cursor`` is where a cursor resume would continue from (``None``: no
    cursor was given); ``started`` turns true when this connection sent the
    start of an answer (a server that ignored the cursor and started over);
    ``response_id`` and ``model`` are the answer's id (completion, message or
    response id) and the model that wrote it, as the server sent them."""

    done: bool
    cursor: Any
    started: bool
    response_id: str | None
    model: str | None

    def resumed(self) -> Parser:
        """The parser for a connection that continues this one from its
        cursor: it keeps what later events refer to (open content blocks,
        tool-call numbering, the last sequence number)."""

    def feed(self, sse: ServerSentEvent) -> list[Event]:
        """Turn one SSE event into typed events.

        :raises ProtocolError: malformed data (``retryable``: the connection
            is treated as cut before this event).
        :raises ProviderError: an error sent inside the stream.
        """


class Dialect(ABC):
    """One API shape (OpenAI chat, Anthropic Messages, OpenAI Responses)."""

    #: The name used in ``Client(dialect=...)``.
    name: ClassVar[str]
    #: What ends a complete stream, for error messages.
    terminal: ClassVar[str]
    #: A cursor resume is possible (and better than a new request) before
    #: any answer content arrived: the cursor names a stored generation that
    #: keeps running (a Responses background response).
    resumes_before_content: ClassVar[bool] = False

    @abstractmethod
    def build_request(self, endpoint: Endpoint, body: dict[str, Any]) -> HTTPRequest:
        """The streaming request for ``body`` (the user's keyword arguments)."""

    @abstractmethod
    def parser(self) -> Parser:
        """A fresh parser for one connection."""

    @abstractmethod
    def supports(self, strategy: str, state: ResumeState, profile: ProviderProfile) -> bool:
        """Whether ``strategy`` can resume from ``state`` with this provider."""

    def resume_request(
        self, original: HTTPRequest, strategy: str, state: ResumeState, profile: ProviderProfile
    ) -> tuple[HTTPRequest, str]:
        """The request that resumes with ``strategy``, and the text the server
        will send again before anything new (for ``prefill``: what was held
        back from the prefilled message; ``""`` otherwise). A replay sends
        ``original`` again."""
        if strategy == "cursor":
            return self.cursor_request(original, state), ""
        if strategy == "prefill":
            return self.prefill_request(original, state, profile)
        return original, ""

    def cursor_request(self, original: HTTPRequest, state: ResumeState) -> HTTPRequest:
        """The cursor resume: by default ``original`` again with ``Last-Event-ID``."""
        return with_last_event_id(original, state)

    def prefill_request(
        self, original: HTTPRequest, state: ResumeState, profile: ProviderProfile
    ) -> tuple[HTTPRequest, str]:
        """The prefill resume and the text held back from it (dialects that
        support prefill override this; :meth:`supports` says when).

        :raises UsageError: this dialect has no prefill.
        """
        raise UsageError(f"The {self.name} dialect cannot resume by prefill.")

    def whole_answer(self, obj: dict[str, Any]) -> list[Event] | None:
        """The events of a complete, non-streamed answer in this dialect's
        JSON shape (what a server that ignores ``stream: true`` sends), or
        ``None`` when ``obj`` is not one."""
        return None

    def without_refused_field(self, request: HTTPRequest, error: HTTPStatusError) -> HTTPRequest | None:
        """``request`` without a field this dialect added on its own (the user
        did not ask for it) when ``error`` says the server refuses that field;
        ``None`` otherwise. Servers that validate strictly answer 400 or 422
        to fields they do not know."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def join_url(base_url: str, path: str) -> str:
    """``base_url`` + ``path`` with exactly one slash between them; a query
    in ``base_url`` (Azure's ``?api-version=...``) stays at the end."""
    base, mark, query = base_url.partition("?")
    return base.rstrip("/") + "/" + path.lstrip("/") + mark + query


def with_query(url: str, **params: str | int | float) -> str:
    """``url`` with ``params`` added to its query."""
    return url + ("&" if "?" in url else "?") + urlencode(params)


def streaming_post(
    endpoint: Endpoint,
    path: str,
    payload: dict[str, Any],
    *,
    key_header: str = "Authorization",
    key_prefix: str = "Bearer ",
    headers: Mapping[str, str] | None = None,
) -> HTTPRequest:
    """``POST {base_url}/{path}`` of ``payload`` with ``"stream": true``.

    :param key_header: the header carrying the key (``key_prefix`` + key),
        sent only when there is a key.
    :param headers: the dialect's own headers; the endpoint's (the
        caller's) headers override them.
    """
    sent = {"Accept": "text/event-stream", **(headers or {})}
    if endpoint.api_key:
        sent[key_header] = key_prefix + endpoint.api_key
    sent.update(endpoint.headers)
    return HTTPRequest("POST", join_url(endpoint.base_url, path), sent, {**payload, "stream": True})


def with_last_event_id(original: HTTPRequest, state: ResumeState) -> HTTPRequest:
    """``original`` sent again with ``Last-Event-ID``: the SSE cursor resume.
    An id beyond ASCII is sent as its UTF-8 bytes, as browsers do."""
    return original.replace(headers={"Last-Event-ID": utf8_header(str(state.cursor))})


def event_json(data: str) -> dict[str, Any]:
    """The JSON object in an event's data.

    :raises ProtocolError: (retryable) the data is not a JSON object; the
        connection is treated as cut before this event.
    """
    try:
        obj, end = _raw_decode(data)  # the usual case: exactly one JSON value
    except ValueError:
        end = -1
    if end != len(data):
        try:
            obj = _decode(data)  # whitespace around it, or an error worth its message
        except ValueError:
            raise ProtocolError(
                f"Malformed JSON in a stream event ({len(data)} characters, starts {data[:60]!r}).",
                retryable=True,
            ) from None
    if type(obj) is not dict:
        raise ProtocolError(f"Expected a JSON object in a stream event, got {type(obj).__name__}.", retryable=True)
    return obj


_decoder = json.JSONDecoder()
_decode, _raw_decode = _decoder.decode, _decoder.raw_decode  # json.loads without its per-call checks


def content_text(content: Any) -> str:
    """The text of a message ``content``: a string, or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"] for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""
