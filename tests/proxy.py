"""A TCP proxy on 127.0.0.1 that cuts responses: for tests against servers
that cannot inject faults themselves (a real third-party server).

Connection ``n`` follows ``plan[n]``: ``None`` relays everything, ``("fin",
k)`` or ``("rst", k)`` relays the response head and ``k`` bytes of the body
as they arrive (chunk framing included), then closes towards the client
with a FIN or an RST, and closes the upstream connection too.
"""

from __future__ import annotations

import socket
import struct
import threading
from typing import Sequence

from .listener import LoopbackListener

__all__ = ["CuttingProxy", "Cut"]

Cut = tuple[str, int]


class CuttingProxy(LoopbackListener):
    """Relays ``127.0.0.1:port`` to ``upstream``, cutting as ``plan`` says.

    :param upstream: ``(host, port)`` of the real server.
    :param plan: one entry per accepted connection, in order; connections
        past its end are relayed whole.
    """

    def __init__(self, upstream: tuple[str, int], plan: Sequence[Cut | None] = ()) -> None:
        super().__init__()
        self._upstream = upstream
        self._plan = list(plan)
        self._plan_lock = threading.Lock()
        #: What happened to each connection: ``"whole"`` or ``"fin@k"`` / ``"rst@k"``.
        self.outcomes: list[str] = []

    def handle(self, client: socket.socket) -> None:
        with self._plan_lock:
            number = len(self.outcomes)
            cut = self._plan[number] if number < len(self._plan) else None
            self.outcomes.append("open")
        try:
            upstream = self.track(socket.create_connection(self._upstream, timeout=10))
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        self.spawn(self._pump_requests, client, upstream)
        outcome = self._pump_response(upstream, client, cut)
        with self._plan_lock:
            self.outcomes[number] = outcome

    @staticmethod
    def _pump_requests(client: socket.socket, upstream: socket.socket) -> None:
        try:
            while data := client.recv(65536):
                upstream.sendall(data)
        except OSError:
            pass

    def _pump_response(self, upstream: socket.socket, client: socket.socket, cut: Cut | None) -> str:
        head = b""
        body_seen = -1  # -1 while the head is incomplete
        try:
            while data := upstream.recv(65536):
                if body_seen < 0:
                    head += data
                    end = head.find(b"\r\n\r\n")
                    if end < 0:
                        client.sendall(data)
                        continue
                    body_seen = 0
                    client.sendall(data[: len(data) - (len(head) - end - 4)])
                    data = head[end + 4 :]
                if cut is not None and body_seen + len(data) >= cut[1]:
                    client.sendall(data[: cut[1] - body_seen])
                    return self._cut(client, upstream, cut)
                body_seen += len(data)
                client.sendall(data)
        except OSError:
            pass
        _close(client, upstream)
        return "whole"

    @staticmethod
    def _cut(client: socket.socket, upstream: socket.socket, cut: Cut) -> str:
        kind, at = cut
        if kind == "rst":
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            client.shutdown(socket.SHUT_WR)
        _close(client, upstream)
        return f"{kind}@{at}"


def _close(*sockets: socket.socket) -> None:
    """Close, after waking a thread blocked reading the socket (``SHUT_RD``
    sends nothing, so an RST set up by ``SO_LINGER`` stays an RST)."""
    for sock in sockets:
        try:
            sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass
        sock.close()
