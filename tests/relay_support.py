"""Helpers for the relay tests: real servers on 127.0.0.1, a proxy that cuts
connections, a scripted upstream, redis-server and SSE reading. Everything
started here is stopped by its owner (context managers), processes by PID."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from holysse.testing.connection import Connection
from holysse.wire import ServerSentEvent, SSEDecoder

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TERMINAL = ("finish", "failed")


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` on an Event (bounded); fail with ``what`` on timeout."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        pause.wait(0.02)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def established(port: int) -> int:
    """Client-side ESTABLISHED TCP connections to 127.0.0.1:``port`` (Linux /proc)."""
    table = Path("/proc/net/tcp")
    if not table.exists():
        pytest.skip("needs /proc/net/tcp to see the upstream socket")
    count = 0
    for line in table.read_text().splitlines()[1:]:
        fields = line.split()
        remote, state = fields[2], fields[3]
        if state == "01" and int(remote.split(":")[1], 16) == port:
            count += 1
    return count


# -- in-process WSGI server -------------------------------------------------------


@contextlib.contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """Serve ``app`` with werkzeug's threaded server; yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# -- reading an event stream --------------------------------------------------------


def read_events(response: requests.Response, *, stop_after: int | None = None) -> list[ServerSentEvent]:
    """Decode a streaming response until a terminal event (or ``stop_after``
    events, or EOF); closes the response."""
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    try:
        while True:
            chunk = response.raw.read1(65536)
            if not chunk:
                return events
            for event in decoder.feed(chunk):
                events.append(event)
                if event.event in TERMINAL or (stop_after is not None and len(events) >= stop_after):
                    return events
    finally:
        response.close()


def text_of(events: list[ServerSentEvent]) -> str:
    """The answer text carried by ``text`` events."""
    return "".join(json.loads(e.data)["text"] for e in events if e.event == "text")


# -- a proxy whose connections the test can cut -----------------------------------------


class CutProxy:
    """Forwards 127.0.0.1 TCP connections to ``target_port``; :meth:`cut`
    closes every connection open through it (both sides), like a network
    failure between the browser and the server."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()
        self._accepting = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> CutProxy:
        self._accepting.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self.cut()
        for thread in [self._accepting, *self._threads]:
            thread.join(5)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._pairs.append((client, upstream))
                for source, sink in ((client, upstream), (upstream, client)):
                    thread = threading.Thread(target=self._copy, args=(source, sink), daemon=True)
                    self._threads.append(thread)
                    thread.start()

    @staticmethod
    def _copy(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def cut(self) -> int:
        """Close every open connection; returns how many were cut."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        return len(pairs)


# -- an upstream that says exactly what the test wants ------------------------------------


class ScriptedUpstream:
    """An OpenAI-compatible chat server streaming the given text deltas
    (JSON-encoded, as a real server would), then ``[DONE]``."""

    def __init__(self, deltas: list[str]) -> None:
        self.deltas = deltas
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/v1"
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> ScriptedUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(5)

    def _serve(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            conn = Connection(sock, threading.Event())
            if conn.read_request() is not None:
                conn.write(Connection.head(200, [("Content-Type", "text/event-stream"), ("Connection", "close")])
                           + self._body())
            conn.close_fin()

    def _body(self) -> bytes:
        chunks = [{"choices": [{"index": 0, "delta": {"content": d}, "finish_reason": None}]} for d in self.deltas]
        chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


# -- processes ------------------------------------------------------------------------------


class Process:
    """A child process stopped by PID (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.log = open(os.devnull, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(args, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.log.close()


def wait_port(port: int, timeout: float, process: Process) -> None:
    def accepting() -> bool:
        if process.popen.poll() is not None:
            raise AssertionError(f"{process.popen.args[0]} exited with {process.popen.returncode}")
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_until(accepting, timeout, f"port {port}")


@contextlib.contextmanager
def redis_server(*extra: str, config: str | None = None) -> Iterator[str]:
    """A throwaway redis-server on a free port (no persistence), with
    ``extra`` arguments (``--tls-port``, ``--unixsocket``, ``--sentinel``...)
    and a ``config`` file; yields its URL."""
    binary = shutil.which("redis-server")
    assert binary is not None
    port = free_port()
    process = Process([binary, *([config] if config else []), "--port", str(port), "--bind", "127.0.0.1",
                       "--save", "", "--appendonly", "no", *extra])
    try:
        wait_port(port, 10, process)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.stop()


def python() -> str:
    return sys.executable


def text_of_entries(entries: list[Any]) -> str:
    """The answer text carried by stored ``text`` entries."""
    return "".join(json.loads(e.data)["text"] for e in entries if e.event == "text")


# -- the example under gunicorn, Chromium, stores ------------------------------------------


def gunicorn_example(upstream: str, redis_url: str, **env: str) -> tuple[Process, str]:
    """The Flask example (tests/relay_gunicorn_app.py) under gunicorn, 2
    gthread workers, relaying ``upstream`` through ``redis_url``; ``env``:
    more HOLYSSE_* settings. Returns the process (stop it) and its base URL."""
    port = free_port()
    environ = {**os.environ, "HOLYSSE_UPSTREAM_URL": upstream, "HOLYSSE_REDIS_URL": redis_url, "HOLYSSE_POLL": "0.1",
               "HOLYSSE_SECRET_KEY": "test-secret-shared-by-workers", **env}
    environ.pop("HOLYSHEEP_API_KEY", None)
    process = Process(
        [sys.executable, "-m", "gunicorn", "--workers", "2", "--worker-class", "gthread", "--threads", "8",
         "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "2", "--pythonpath", str(ROOT),
         "tests.relay_gunicorn_app:create()"],
        env=environ, cwd=ROOT,
    )
    try:
        wait_port(port, 20, process)
    except BaseException:
        process.stop()
        raise
    return process, f"http://127.0.0.1:{port}"


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """The system Chromium, headless, through Playwright (skips when either is missing)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def redis_for_tests() -> Iterator[str]:
    """A redis-server for a test module (skips without the client or the server)."""
    pytest.importorskip("redis", reason="the redis client is not installed (pip install 'holysse[redis]')")
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with redis_server() as url:
        yield url


@contextlib.contextmanager
def either_store(kind: str, redis_url: Callable[[], str]) -> Iterator[Any]:
    """A fresh ``MemoryStore``, or a ``RedisStore`` with its own prefix on ``redis_url()``."""
    from holysse.relay import MemoryStore, RedisStore

    if kind == "memory":
        yield MemoryStore()
        return
    store = RedisStore(url=redis_url(), prefix=f"t{time.monotonic_ns()}", timeout=2)
    try:
        yield store
    finally:
        store.close()
