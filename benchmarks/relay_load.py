"""The load of ``benchmarks/relay.py``: the upstream it relays and the
readers (browsers) that measure it.

Both stand in for other machines (the model provider, the users), so they
are built to take as little CPU, and add as little jitter, as they can: the
upstream sends every stream's tokens from ONE thread (a schedule of due
times), and the readers read every event stream from ONE selector thread.
Threads are used only to set the streams up. A thread per stream on each
side (400 more threads, on the core next to the relay's) made the
measurement itself the noisiest part of a run: a stall of the upstream or of
the readers shows up in both phases, and the difference of two noisy
percentiles is no measure of the relay.

Each token is the ``time.monotonic_ns()`` at which the upstream sent it
(CLOCK_MONOTONIC is shared by the processes of one machine); a reader notes,
per token, the time it received it minus that.
"""

from __future__ import annotations

import heapq
import http.client
import json
import os
import random
import selectors
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from holysse.testing.connection import Connection

MESSAGES = {"messages": [{"role": "user", "content": "bench"}]}


# -- the upstream (its own process) --------------------------------------------------


class Sender:
    """Sends the tokens of every started stream from one thread.

    A new stream is held after its response head until the main process
    says ``go N`` (on stdin) and N streams are held: then all start together,
    each spread at random over the first interval, each reader's connection
    already open.
    """

    def __init__(self, tokens: int, interval: float) -> None:
        self.tokens, self.interval = tokens, interval
        self._changed = threading.Condition()
        self._held: list[Connection] = []
        self._due: list[tuple[float, int, int, Connection]] = []  # (when, tie-break, token index, stream)
        self._count = 0

    def hold(self, conn: Connection) -> None:
        with self._changed:
            self._held.append(conn)
            self._changed.notify_all()

    def control(self) -> None:
        for line in sys.stdin:
            wanted = int(line.split()[1])
            with self._changed:
                self._changed.wait_for(lambda wanted=wanted: len(self._held) >= wanted)  # type: ignore[misc]
                now = time.monotonic()
                for conn in self._held:
                    self._count += 1
                    heapq.heappush(self._due, (now + random.uniform(0, self.interval), self._count, 0, conn))
                self._held.clear()
                self._changed.notify_all()
            print("went", flush=True)

    def run(self) -> None:
        while True:
            with self._changed:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._changed.wait(self._due[0][0] - time.monotonic() if self._due else None)
                when, tie, index, conn = heapq.heappop(self._due)
            try:
                if index < self.tokens:
                    chunk = {"choices": [{"index": 0, "delta": {"content": f"{time.monotonic_ns()};"},
                                          "finish_reason": None}]}
                    _send_chunk(conn, b"data: " + json.dumps(chunk).encode() + b"\n\n")
                    with self._changed:
                        heapq.heappush(self._due, (when + self.interval, tie, index + 1, conn))
                else:
                    final = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                    _send_chunk(conn, b"data: " + json.dumps(final).encode() + b"\n\ndata: [DONE]\n\n")
                    conn.write(b"0\r\n\r\n")
                    conn.close_fin()
            except OSError:  # the reader went away: drop the stream
                conn.close_fin()


def _send_chunk(conn: Connection, payload: bytes) -> None:
    conn.write(b"%x\r\n" % len(payload) + payload + b"\r\n")


def serve_upstream(tokens: int, interval: float) -> None:
    """A minimal OpenAI-compatible chat server, one answer per connection."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    sender = Sender(tokens, interval)
    threading.Thread(target=sender.control, daemon=True).start()
    threading.Thread(target=sender.run, daemon=True).start()
    print(listener.getsockname()[1], flush=True)
    while True:
        sock, _ = listener.accept()
        threading.Thread(target=_start, args=(sock, sender), daemon=True).start()


def _start(sock: socket.socket, sender: Sender) -> None:
    conn = Connection(sock, threading.Event())
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if conn.read_request() is None:
            conn.close_fin()
            return
        conn.write(Connection.head(200, [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")]))
    except OSError:
        conn.close_fin()
        return
    sender.hold(conn)


# -- the readers (the measuring process) ---------------------------------------------------------


class Reader:
    """One browser-side reader; ``latencies`` in ns, one per token."""

    def __init__(self, port: int, relayed: bool) -> None:
        self.port, self.relayed = port, relayed
        self.latencies: list[int] = []
        self.replayed = 0  # tokens sent before this reader's stream opened (0: the upstream waits for it)
        self.opened = 0
        self.error: BaseException | None = None
        self.done = False
        self.sock: socket.socket | None = None
        self._chunked = False
        self._raw = b""  # chunked body bytes not decoded yet
        self._left = 0  # bytes left in the current chunk
        self._text = b""  # event-stream bytes not split into events yet

    def open(self) -> None:
        """Start the stream (a relayed one is first created with ``POST /streams``) and read the response head."""
        try:
            if self.relayed:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                conn.request("POST", "/streams", json.dumps(MESSAGES), {"Content-Type": "application/json"})
                reply = conn.getresponse()
                body = reply.read()
                conn.close()
                if reply.status != 201:
                    raise RuntimeError(f"POST /streams: HTTP {reply.status}: {body[:300]!r}")
                cookie = (reply.getheader("Set-Cookie") or "").split(";")[0]  # the stream is bound to it
                request = (f"GET /streams/{json.loads(body)['id']} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           f"Cookie: {cookie}\r\n\r\n").encode()
            else:
                payload = json.dumps(dict(MESSAGES, stream=True)).encode()
                request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                           b"\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload)
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
            self.sock.sendall(request)
            head = b""
            while b"\r\n\r\n" not in head:
                data = self.sock.recv(65536)
                if not data:
                    raise RuntimeError(f"the connection closed before a response head: {head[:300]!r}")
                head += data
            self.opened = time.monotonic_ns()
            head, rest = head.split(b"\r\n\r\n", 1)
            status = head.split(b"\r\n", 1)[0]
            if b" 200 " not in status + b" ":
                raise RuntimeError(f"GET: {status.decode('latin-1')}: {rest[:300]!r}")
            self._chunked = b"transfer-encoding: chunked" in head.lower()
            self.sock.setblocking(False)
            self.feed(rest, self.opened)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc
            self.close()

    def feed(self, data: bytes, now: int) -> None:
        """Body bytes received at ``now``: note the latency of each token completed."""
        if self._chunked:
            data = self._dechunk(data)
        self._text += data
        *blocks, self._text = self._text.split(b"\n\n")
        for block in blocks:
            for stamp in _stamps(block, self.relayed):
                if stamp >= self.opened:
                    self.latencies.append(now - stamp)
                else:
                    self.replayed += 1
            if block.startswith((b"event: finish", b"event: failed", b"data: [DONE]")):
                self.done = True
                return

    def _dechunk(self, data: bytes) -> bytes:
        self._raw += data
        out = []
        while self._raw:
            if self._left == 0:
                end = self._raw.find(b"\r\n")
                if end < 0:
                    break
                line, self._raw = self._raw[:end], self._raw[end + 2:]
                if not line:  # the CRLF after a chunk
                    continue
                self._left = int(line.split(b";")[0], 16)
                if self._left == 0:
                    break
            piece = self._raw[:self._left]
            out.append(piece)
            self._left -= len(piece)
            self._raw = self._raw[len(piece):]
        return b"".join(out)

    def close(self) -> None:
        self.done = True
        if self.sock is not None:
            self.sock.close()


def _stamps(block: bytes, relayed: bool) -> list[int]:
    data = block[block.find(b"data: ") + 6:]
    if relayed:
        if not block.startswith(b"event: text"):
            return []
        text = json.loads(data)["text"]
    else:
        if data.startswith(b"[DONE]"):
            return []
        text = json.loads(data)["choices"][0]["delta"].get("content") or ""
    return [int(piece) for piece in text.split(";") if piece]


def open_readers(port: int, relayed: bool, streams: int) -> list[Reader]:
    """``streams`` readers with their streams open (or their error)."""
    readers = [Reader(port, relayed) for _ in range(streams)]
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(Reader.open, readers))
    return readers


def read_all(readers: list[Reader], timeout: float, *, sleep: bool = False) -> None:
    """Read every reader's event stream to its end, from this one thread.

    It polls without sleeping (``sleep=False``): the browsers it stands for
    run on other machines, so a send of the relay must not pay for waking a
    process of the relay's machine, as it would (about 20 µs an event on a
    VM) if this thread slept in the kernel between events. That costs a core
    of the load's side, not the relay's; at the lowest priority, so that the
    upstream sharing that core sends on time.
    """
    wait = 1.0 if sleep else 0.0
    if not sleep and hasattr(os, "setpriority"):  # polling takes only what the upstream leaves of its core
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)  # this thread only (Linux)
    with selectors.DefaultSelector() as selector:
        for reader in readers:
            if not reader.done and reader.sock is not None:
                selector.register(reader.sock, selectors.EVENT_READ, reader)
        deadline = time.monotonic() + timeout
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(wait):
                reader = key.data
                try:
                    data = reader.sock.recv(65536)
                except OSError as exc:
                    reader.error = exc
                    data = b""
                if data:
                    reader.feed(data, time.monotonic_ns())
                elif reader.error is None:
                    reader.error = RuntimeError("the stream ended without its terminal event")
                if reader.done or not data:
                    selector.unregister(key.fileobj)
                    reader.close()
        for key in list(selector.get_map().values()):
            key.data.error = key.data.error or TimeoutError(f"not finished within {timeout:.0f} s")
            selector.unregister(key.fileobj)
            key.data.close()
