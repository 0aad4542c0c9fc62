"""A TCP proxy on 127.0.0.1 that cuts responses: for tests against servers
that cannot inject faults themselves (a real third-party server).

Connection ``n`` follows ``plan[n]``: ``None`` relays everything, ``("fin",
k)`` or ``("rst", k)`` relays the response head and ``k`` bytes of the body
as they arrive (chunk framing included), then closes towards the client
with a FIN or an RST, and closes the upstream connection too. With ``tls``
the proxy terminates TLS (its URL is ``https://``): a FIN is then a TCP FIN
with no TLS close_notify, as when a network cuts an HTTPS stream.
"""

from __future__ import annotations

import socket
import ssl
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

    def __init__(
        self, upstream: tuple[str, int], plan: Sequence[Cut | None] = (), *, tls: ssl.SSLContext | None = None
    ) -> None:
        super().__init__()
        self._upstream = upstream
        self._plan = list(plan)
        self._tls = tls
        self._plan_lock = threading.Lock()
        #: What happened to each connection: ``"whole"`` or ``"fin@k"`` / ``"rst@k"``.
        self.outcomes: list[str] = []
        #: TLS handshakes the client broke off (it did not trust the certificate).
        self.refused_handshakes = 0

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://{self.host}:{self.port}/v1"

    def handle(self, client: socket.socket) -> None:
        if self._tls is not None:
            try:  # the client may refuse the certificate: that connection ends here
                client = self.track(self._tls.wrap_socket(client, server_side=True))
            except (ssl.SSLError, OSError):
                client.close()
                with self._plan_lock:
                    self.refused_handshakes += 1
                return
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
        try:
            upstream.sendall(_read_request(client))
        except OSError:
            _close(client, upstream)
            return
        outcome = self._pump_response(upstream, client, cut)
        with self._plan_lock:
            self.outcomes[number] = outcome

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


def _read_request(client: socket.socket) -> bytes:
    """One whole request (head, then ``Content-Length`` bytes of body): the
    proxy forwards it, then only relays the response, so a TLS socket is
    never read and written by two threads at once."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(65536)
        if not chunk:
            raise ConnectionAbortedError("the client closed before sending a whole request")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = client.recv(65536)
        if not chunk:
            raise ConnectionAbortedError("the client closed in the middle of its request body")
        body += chunk
    return head + b"\r\n\r\n" + body


def _close(*sockets: socket.socket) -> None:
    """Close, after waking a thread blocked reading the socket (``SHUT_RD``
    sends nothing, so an RST set up by ``SO_LINGER`` stays an RST)."""
    for sock in sockets:
        try:
            sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass
        sock.close()
