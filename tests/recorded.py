"""A tiny HTTP server that replays recorded responses over real sockets.

Each request gets the next recorded response (status, content type, body),
sent with ``Connection: close`` and ended by a FIN; requests are recorded
with their JSON bodies. Standard library only; every wait is bounded and
``close()`` joins every thread.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Reply:
    """One recorded response."""

    body: bytes
    status: int = 200
    content_type: str = "text/event-stream"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Seen:
    """One request as it arrived."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


class RecordedServer:
    """Serves ``replies`` in order, one per request, on ``127.0.0.1``."""

    def __init__(self, replies: list[Reply | str]) -> None:
        self._replies = [r if isinstance(r, Reply) else Reply(r.encode("utf-8")) for r in replies]
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/v1"

    def __enter__(self) -> RecordedServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._accepting.join(2)
        self._listener.close()
        for thread in self._threads:
            thread.join(2)
        assert not any(t.is_alive() for t in [self._accepting, *self._threads])

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        with sock:
            sock.settimeout(2)
            seen = self._read(sock)
            with self._lock:
                index = len(self.requests)
                self.requests.append(seen)
            reply = self._replies[index] if index < len(self._replies) else Reply(b"no more replies", 500, "text/plain")
            extra = "".join(f"{name}: {value}\r\n" for name, value in reply.headers)
            head = (f"HTTP/1.1 {reply.status} X\r\nContent-Type: {reply.content_type}\r\n{extra}"
                    "Connection: close\r\n\r\n").encode("latin-1")
            sock.sendall(head + reply.body)
            sock.shutdown(socket.SHUT_WR)

    @staticmethod
    def _read(sock: socket.socket) -> Seen:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
        while len(body) < int(headers.get("content-length", 0)):
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        parts = urlsplit(target)
        return Seen(method, parts.path, dict(parse_qsl(parts.query)), headers, json.loads(body) if body else None)
