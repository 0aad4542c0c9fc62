"""The lifecycle shared by the test's own socket servers: listen on
127.0.0.1, one thread per connection, and a ``close()`` that shuts every
socket and joins every thread (bounded)."""

from __future__ import annotations

import socket
import threading
from typing import Any, Callable

__all__ = ["LoopbackListener"]

_JOIN = 5.0


class LoopbackListener:
    """Accepts connections and hands each to :meth:`handle` in its own thread.

    :param host: the address to listen on.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        #: Set when the server closes: handlers waiting on it stop.
        self.closing = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server((host, 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept_loop, name="test-accept", daemon=True)

    @property
    def url(self) -> str:
        """The base URL (``http://host:port/v1``)."""
        return f"http://{self.host}:{self.port}/v1"

    def handle(self, sock: socket.socket) -> None:
        """Serve one accepted connection (runs in its own thread)."""
        raise NotImplementedError

    def __enter__(self) -> Any:
        self._accept_thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self.closing.is_set():
            try:
                sock, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            sock.settimeout(None)
            self.spawn(self.handle, self.track(sock))

    def spawn(self, target: Callable[..., None], *args: Any) -> None:
        """Run ``target(*args)`` in a thread that :meth:`close` joins."""
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def track(self, sock: socket.socket) -> socket.socket:
        """Have :meth:`close` shut ``sock`` down; returns it."""
        with self._lock:
            self._sockets.append(sock)
        return sock

    def close(self) -> None:
        """Stop accepting, shut every socket, join every thread."""
        self.closing.set()
        if self._accept_thread.is_alive():
            self._accept_thread.join(_JOIN)
        self._listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join(_JOIN)
        for sock in sockets:
            sock.close()
        assert not any(t.is_alive() for t in threads), "a test server thread did not end"
