"""One HTTP/1.1 server connection on a raw socket: read requests, write
responses, and end the connection the way a fault says (FIN, RST, stall).

No ``makefile``: the socket is read through a small buffer, so closing it
really closes the file descriptor (needed for a reliable RST).
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time

try:
    import fcntl
    import termios

    _OUTQ: int | None = termios.TIOCOUTQ
except (ImportError, AttributeError):  # not Linux/Unix
    _OUTQ = None
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qsl, urlsplit

__all__ = ["BadRequest", "HTTPRequest", "Connection"]

logger = logging.getLogger(__name__)

_MAX_HEAD = 64 * 1024
_MAX_BODY = 64 * 1024 * 1024


class BadRequest(Exception):
    """The peer sent something that is not an HTTP/1.x request."""


@dataclass(frozen=True)
class HTTPRequest:
    """A parsed request."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def path(self) -> str:
        """The target without its query string."""
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        """The query string as a dict (last value wins)."""
        return dict(parse_qsl(urlsplit(self.target).query, keep_blank_values=True))

    def header(self, name: str) -> str | None:
        """A header value, case-insensitively (the last one when repeated)."""
        lowered = name.lower()
        found = None
        for key, value in self.headers:
            if key.lower() == lowered:
                found = value
        return found

    @property
    def keep_alive(self) -> bool:
        """Whether the client allows reusing the connection after this request."""
        tokens = {t.strip().lower() for t in (self.header("Connection") or "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


class Connection:
    """The server side of one TCP connection.

    :param sock: the accepted socket (owned from now on).
    :param closing: set when the server shuts down; waits end early.
    """

    def __init__(self, sock: socket.socket, closing: threading.Event) -> None:
        self.sock = sock
        self._closing = closing
        self._buffer = bytearray()
        self.closed = False

    # -- reading ------------------------------------------------------------

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self._buffer += data
        return True

    def _read_line(self, limit: int) -> bytes | None:
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                return line
            if len(self._buffer) > limit:
                raise BadRequest("request head too large")
            if not self._fill():
                return None

    def _read_exact(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not self._fill():
                raise BadRequest("connection closed inside the request body")
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def read_request(self) -> HTTPRequest | None:
        """The next request, or ``None`` when the peer closed the connection
        between requests.

        :raises BadRequest: malformed request.
        :raises OSError: socket error.
        """
        line = self._read_line(_MAX_HEAD)
        while line in (b"\r\n", b"\n"):  # tolerate stray blank lines between requests
            line = self._read_line(_MAX_HEAD)
        if line is None:
            return None
        try:
            method, target, version = line.decode("latin-1").split()
        except ValueError:
            raise BadRequest(f"bad request line {line[:80]!r}") from None
        if not version.startswith("HTTP/1."):
            raise BadRequest(f"unsupported version {version!r}")
        headers = self._read_headers()
        request = HTTPRequest(method, target, version, headers, b"")
        if (request.header("Expect") or "").lower() == "100-continue":
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return HTTPRequest(method, target, version, headers, self._read_body(request))

    def _read_headers(self) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = []
        size = 0
        while True:
            line = self._read_line(_MAX_HEAD)
            if line is None:
                raise BadRequest("connection closed inside the request head")
            size += len(line)
            if size > _MAX_HEAD:
                raise BadRequest("request head too large")
            if line in (b"\r\n", b"\n"):
                return headers
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep or not name.strip():
                raise BadRequest(f"bad header line {line[:80]!r}")
            headers.append((name.strip(), value.strip()))

    def _read_body(self, request: HTTPRequest) -> bytes:
        if "chunked" in (request.header("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = request.header("Content-Length")
        if not length:
            return b""
        if not length.isdigit() or int(length) > _MAX_BODY:
            raise BadRequest(f"bad Content-Length {length!r}")
        return self._read_exact(int(length))

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            line = self._read_line(1024)
            if line is None:
                raise BadRequest("connection closed inside a chunked body")
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise BadRequest(f"bad chunk size {line[:40]!r}") from None
            if size == 0:
                while self._read_line(_MAX_HEAD) not in (b"\r\n", b"\n", None):
                    pass  # trailers are ignored
                return bytes(body)
            body += self._read_exact(size)
            self._read_exact(2)
            if len(body) > _MAX_BODY:
                raise BadRequest("request body too large")

    # -- writing ------------------------------------------------------------

    @staticmethod
    def head(status: int, headers: list[tuple[str, str]]) -> bytes:
        """A response head (status line, headers, blank line)."""
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [f"HTTP/1.1 {status} {reason}"] + [f"{name}: {value}" for name, value in headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def write(self, data: bytes) -> None:
        """Send all of ``data``.

        :raises OSError: the peer went away.
        """
        if data:
            self.sock.sendall(data)

    # -- ending -------------------------------------------------------------

    def hold(self, seconds: float | None) -> None:
        """Stay silent until the peer closes, the server shuts down, or
        ``seconds`` pass. Data the peer sends meanwhile is discarded."""
        self.sock.settimeout(seconds)
        try:
            while not self._closing.is_set():
                if not self.sock.recv(65536):
                    return
        except (socket.timeout, OSError):
            return

    def close_fin(self) -> None:
        """Close cleanly: FIN now, then release the socket."""
        if self.closed:
            return
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.sock.close()

    def drain(self, limit: float = 2.0) -> None:
        """Wait (bounded, interruptible by the server's shutdown) until the peer
        acknowledged everything written, so that an RST that follows does not
        discard data still queued here. Linux only; elsewhere returns at once."""
        if _OUTQ is None:
            return
        deadline = time.monotonic() + limit
        try:
            while fcntl.ioctl(self.sock.fileno(), _OUTQ, b"\0\0\0\0") != b"\0\0\0\0":
                if time.monotonic() > deadline or self._closing.wait(0.0005):
                    return
        except OSError:
            return

    def close_rst(self) -> None:
        """Close with ``SO_LINGER (1, 0)``: the peer gets an RST. Data the
        peer has not acknowledged yet is waited for first (see :meth:`drain`)."""
        if self.closed:
            return
        self.drain()
        self.closed = True
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.sock.close()
