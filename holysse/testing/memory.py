"""A :class:`~holysse.transport.Transport` that plays scripted connections
from memory: no sockets, no threads, no sleeping.

Each connection the client opens gets the next :class:`Reply` of the script
(or the reply a function of yours returns for that request)::

    from holysse.testing import MemoryTransport, Reply

    events = [b'data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}\\n\\n',
              b'data: {"choices":[{"index":0,"delta":{"content":"lo"}}]}\\n\\n',
              b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\\n\\n',
              b"data: [DONE]\\n\\n"]
    transport = MemoryTransport([
        Reply.with_status(429, headers={"Retry-After": "2"}),   # connection 1: rate limited
        Reply(events, end="rst", after=70),                 # connection 2: reset after 70 bytes
        Reply(events),                                      # connection 3: the whole answer
    ])
    client = holysse.Client(api_key="k", base_url="https://llm.test/v1", transport=transport,
                            sleep=lambda seconds: None)
    assert client.stream(model="m", messages=[...]).final().text == "Hello"
    transport.requests   # what was sent: method, url, headers, json

A reply's body is a sequence of chunks, handed to the client one per read,
as a socket would (a body may be an endless iterator: it is read lazily).
It ends as :attr:`Reply.end` says, after :attr:`Reply.after` bytes (the
whole body when ``None``):

- ``"fin"``: the body ends (a clean close; without the dialect's terminal
  marker the client treats it as a cut);
- ``"rst"``: the connection is reset (:class:`~holysse.StreamInterrupted`,
  as :class:`~holysse.transport.RequestsTransport` raises it);
- ``"stall"``: no more bytes: the read timeout fires at once
  (:class:`~holysse.ReadTimeout`, the error a real stall gives, without the wait).

Before the body: :meth:`Reply.with_status` answers an error status with headers
and a body (``429`` with ``Retry-After``, ``503``, ``401``, ...),
:meth:`Reply.stall_before_head` is a server that accepts the request and
never sends its headers, and :meth:`Reply.fails` raises any exception from
``open`` (a :class:`~holysse.ConnectError`, say).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence, Union

from ..exceptions import ConnectError, ReadTimeout, StreamInterrupted

if TYPE_CHECKING:
    from .._types import HTTPRequest, Timeout

__all__ = ["MemoryTransport", "Reply", "Script"]

_ENDS = ("fin", "rst", "stall")
_SSE_HEADERS: Mapping[str, str] = {"Content-Type": "text/event-stream"}
_JSON_HEADERS: Mapping[str, str] = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Reply:
    """What the server does with one connection.

    :param body: the body, as the chunks the client reads one at a time
        (``str`` chunks are encoded as UTF-8; a single ``bytes`` is one chunk).
        May be a lazy iterator, such as an endless generator; then the reply
        can be played once only.
    :param end: how the body ends: ``"fin"``, ``"rst"`` or ``"stall"``.
    :param after: body bytes delivered before ``end`` (a chunk is split
        there); ``None``: the whole body.
    :param status: the response status.
    :param headers: the response headers (case-insensitive for the client);
        by default ``Content-Type: text/event-stream`` for a 2xx and
        ``application/json`` otherwise.
    :param error: an exception ``open`` raises instead of answering.
    """

    body: bytes | str | Iterable[bytes | str] = ()
    end: str = "fin"
    after: int | None = None
    status: int = 200
    headers: Mapping[str, str] | None = None
    error: BaseException | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.end not in _ENDS:
            raise ValueError(f"Reply(end={self.end!r}): use one of {', '.join(_ENDS)}")
        if self.after is not None and self.after < 0:
            raise ValueError(f"Reply(after={self.after!r}) must be a number of bytes >= 0")

    @classmethod
    def with_status(cls, code: int, body: bytes | str = b"", *, headers: Mapping[str, str] | None = None) -> Reply:
        """An error status (or any status) with ``headers`` and a whole ``body``."""
        return cls(body=body, status=code, headers=headers)

    @classmethod
    def fails(cls, error: BaseException) -> Reply:
        """``open`` raises ``error`` (the connection never opens)."""
        return cls(error=error)

    @classmethod
    def stall_before_head(cls) -> Reply:
        """The server accepts the request and sends no response headers: the
        read timeout fires while opening (:class:`~holysse.ReadTimeout`)."""
        return cls(end="stall", error=_HEAD_STALL)

    @property
    def head_stall(self) -> bool:
        """Whether this is :meth:`stall_before_head`."""
        return self.error is _HEAD_STALL

    def response_headers(self) -> Mapping[str, str]:
        """The headers the client sees."""
        if self.headers is not None:
            return self.headers
        return _SSE_HEADERS if 200 <= self.status < 300 else _JSON_HEADERS


#: The marker of :meth:`Reply.stall_before_head` (replaced by a fresh
#: ReadTimeout naming the URL when played).
_HEAD_STALL = ReadTimeout("stall before the response head")

#: A whole script: the replies in order, or a function of the request and its
#: number (from 0) that returns the reply.
Script = Union[Sequence[Reply], Callable[["HTTPRequest", int], Reply]]


class MemoryTransport:
    """Plays a scripted :class:`Reply` for each connection the client opens.

    :param script: the replies, one per connection in order, or a function
        ``(request, number) -> Reply`` (``number`` counts connections from 0)
        for a server that looks at what it is sent (``Last-Event-ID``, a
        prefill, ...).
    :param then: the reply for every connection past the end of a sequence
        script; by default such a connection fails with a
        :class:`~holysse.ConnectError` that is not retried, naming the count.

    Safe to share between threads. Nothing blocks: a stall is reported as
    the timeout it would end in, at once.
    """

    def __init__(self, script: Script, *, then: Reply | None = None) -> None:
        self._script = script
        self._then = then
        self._lock = threading.Lock()
        #: Every request opened, in order (method, url, headers, json).
        self.requests: list[HTTPRequest] = []
        #: The timeout each request was opened with.
        self.timeouts: list[Timeout] = []
        self._open = 0
        self.closed = False

    def __repr__(self) -> str:
        return f"<MemoryTransport requests={len(self.requests)} open={self._open}>"

    @property
    def open_responses(self) -> int:
        """Responses opened and not closed yet (0 once a stream released its connections)."""
        with self._lock:
            return self._open

    def header(self, number: int, name: str) -> str | None:
        """Header ``name`` (any case) of request ``number``, or ``None``."""
        return _lookup(self.requests[number].headers, name)

    def open(self, request: HTTPRequest, timeout: Timeout) -> MemoryResponse:
        with self._lock:
            number = len(self.requests)
            self.requests.append(request)
            self.timeouts.append(timeout)
        reply = self._reply(request, number)
        if reply.head_stall:
            raise ReadTimeout(f"{request.url} accepted the request but sent no response headers in time "
                              "(MemoryTransport: a stall before the head).")
        if reply.error is not None:
            raise reply.error
        with self._lock:
            self._open += 1
        return MemoryResponse(reply, request.url, self._released)

    def _reply(self, request: HTTPRequest, number: int) -> Reply:
        script = self._script
        if callable(script):
            return script(request, number)
        if number < len(script):
            return script[number]
        if self._then is not None:
            return self._then
        raise ConnectError(f"MemoryTransport has no reply for connection {number + 1} "
                           f"(the script has {len(script)}); add replies or pass then=.", retryable=False)

    def _released(self) -> None:
        with self._lock:
            self._open -= 1

    def close(self) -> None:
        self.closed = True


class MemoryResponse:
    """One open connection of a :class:`MemoryTransport`."""

    def __init__(self, reply: Reply, url: str, released: Callable[[], None]) -> None:
        self._reply = reply
        self._url = url
        self._released = released
        self.status_code = reply.status
        self.headers: Mapping[str, str] = _Headers(reply.response_headers())
        body = reply.body
        self._chunks: Iterator[bytes | str] = iter((body,) if isinstance(body, (bytes, str)) else body)
        self._left = reply.after  # bytes still to hand out before the end; None: no limit
        self._ended = False
        self._closed = False
        self._aborted = False
        #: Whether :meth:`close` was called with ``complete=True``.
        self.complete = False

    def iter_bytes(self) -> Iterator[bytes]:
        while not (self._aborted or self._closed):
            chunk = self._next()
            if chunk is None:
                return
            yield chunk

    def _next(self) -> bytes | None:
        """The next chunk, ``None`` at a clean end; raises at a cut."""
        if not self._ended:
            for piece in self._chunks:
                chunk = piece.encode("utf-8") if isinstance(piece, str) else piece
                if not chunk:
                    continue
                if self._left is not None:
                    if self._left <= 0:
                        break
                    chunk = chunk[: self._left]
                    self._left -= len(chunk)
                return chunk
            self._ended = True
        end = self._reply.end
        if end == "rst":
            raise StreamInterrupted(
                f"The connection to {self._url} broke: connection reset by the peer (ConnectionResetError)"
            ) from ConnectionResetError(104, "Connection reset by peer (MemoryTransport)")
        if end == "stall":
            raise ReadTimeout(f"{self._url} stalled: no byte within the read timeout (MemoryTransport).")
        return None

    def read_text(self, limit: int = 65536) -> str:
        parts: list[bytes] = []
        size = 0
        try:
            while size < limit and (chunk := self._next()) is not None:
                parts.append(chunk[: limit - size])
                size += len(parts[-1])
        except (StreamInterrupted, ReadTimeout):
            pass  # an error body cut short: what arrived is enough
        return b"".join(parts).decode("utf-8", errors="replace")

    def close(self, *, complete: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        self.complete = complete
        self._released()

    def abort(self) -> None:
        self._aborted = True
        self.close()


class _Headers(Mapping[str, str]):
    """Response headers with case-insensitive lookup (as requests gives them)."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._items = dict(headers)
        self._lower = {name.lower(): value for name, value in headers.items()}

    def __getitem__(self, name: str) -> str:
        return self._lower[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: Any) -> bool:
        return isinstance(name, str) and name.lower() in self._lower

    def __repr__(self) -> str:
        return repr(self._items)


def _lookup(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)
