"""A scripted HTTP server on 127.0.0.1 for hostile-server tests.

Each request is answered by a function of the test's own, which writes raw
bytes to the socket (:class:`holysse.testing.connection.Connection` parses the
request). One request per connection; every wait is bounded and ends when the
server closes; ``close()`` shuts every socket and joins every thread.
"""

from __future__ import annotations

import json
import socket
import threading
from typing import Any, Callable

from holysse.testing import Reply
from holysse.testing.connection import Connection, HTTPRequest
from holysse.transport import HTTPRequest as OutgoingRequest

from .listener import LoopbackListener

__all__ = ["ScriptedServer", "ReplyServer", "Respond", "sse_head", "chat_events", "ANSWER", "PIECES"]

#: The answer scripted chat servers stream, and its pieces (one per event).
ANSWER = "Nothing lost, nothing repeated: the text you receive is the answer, whatever the network does. " * 2
PIECES = [ANSWER[i : i + 7] for i in range(0, len(ANSWER), 7)]

Respond = Callable[[Connection, HTTPRequest, int], None]


class ScriptedServer(LoopbackListener):
    """Answers request number ``i`` (from 0) with ``respond(conn, request, i)``.

    :param respond: writes the whole response; the connection is closed (FIN)
        when it returns.
    :param host: the address to listen on.
    """

    def __init__(self, respond: Respond, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self._respond = respond
        self._requests_lock = threading.Lock()
        #: Every request received, in arrival order.
        self.requests: list[HTTPRequest] = []

    def handle(self, sock: socket.socket) -> None:
        conn = Connection(sock, self.closing)
        try:
            request = conn.read_request()
            if request is None:
                return
            with self._requests_lock:
                index = len(self.requests)
                self.requests.append(request)
            self._respond(conn, request, index)
        except OSError:
            pass  # the client went away: what hostile tests provoke
        finally:
            conn.close_fin()

    def write_forever(self, conn: Connection, piece: bytes, every: float, limit: float = 30.0) -> None:
        """Write ``piece`` every ``every`` seconds until the client goes away,
        the server closes, or ``limit`` seconds pass."""
        for _ in range(int(limit / every)):
            conn.write(piece)
            if self.closing.wait(every):
                return


def sse_head(content_type: str = "text/event-stream", extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    """A 200 response head for a close-delimited body."""
    return Connection.head(200, [("Content-Type", content_type), ("Connection", "close"), *extra])


def _chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return json.dumps({"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "choices": [choice]})


def chat_events(ids: str | None = "s", *, role: bool = True) -> list[bytes]:
    """The chat-completions events of :data:`ANSWER`: a role delta (unless
    ``role`` is false), one event per piece, the finish, ``[DONE]``. Event
    ``n`` carries ``id: <ids>-<n>`` when ``ids`` is given."""
    datas = [_chunk({"role": "assistant", "content": ""})] if role else []
    datas += [_chunk({"content": piece}) for piece in PIECES]
    datas.append(_chunk({}, "stop"))
    events = []
    for number, data in enumerate(datas):
        head = f"id: {ids}-{number}\n" if ids else ""
        events.append(f"{head}data: {data}\n\n".encode())
    return events + [b"data: [DONE]\n\n"]


class ReplyServer(ScriptedServer):
    """Plays the scripts of :class:`holysse.testing.MemoryTransport` over
    real sockets, so one script runs both ways: ``script(request, number)``
    returns the :class:`~holysse.testing.Reply` for connection ``number``
    (``request``: what arrived, as a :class:`holysse.transport.HTTPRequest`).

    A cut by ``"stall"`` (and :meth:`Reply.stall_before_head`) holds the
    connection silent until the client goes away or the server closes;
    :meth:`Reply.fails` resets the connection before any byte.
    """

    def __init__(self, script: Callable[[OutgoingRequest, int], Reply]) -> None:
        super().__init__(self._play)
        self._script = script

    def _play(self, conn: Connection, request: HTTPRequest, number: int) -> None:
        reply = self._script(self.outgoing(request), number)
        if reply.head_stall:
            conn.hold(30)
            return
        if reply.error is not None:
            conn.close_rst()
            return
        head = [*reply.response_headers().items(), ("Connection", "close")]
        conn.write(Connection.head(reply.status, head))
        body = reply.body
        left = reply.after
        for piece in (body,) if isinstance(body, (bytes, str)) else body:
            chunk = piece.encode("utf-8") if isinstance(piece, str) else piece
            if left is not None:
                chunk, left = chunk[:left], left - min(left, len(chunk))
            conn.write(chunk)
            if left == 0:
                break
        if reply.end == "rst":
            conn.close_rst()
        elif reply.end == "stall":
            conn.hold(30)

    def outgoing(self, request: HTTPRequest) -> OutgoingRequest:
        """``request`` as the client built it."""
        return OutgoingRequest(request.method, f"http://{self.host}:{self.port}{request.target}",
                               dict(request.headers), json.loads(request.body) if request.body else None)
