"""The browser relay under load: 200 concurrent SSE readers, one relay process.

Three processes on 127.0.0.1:

- an upstream: a minimal OpenAI-compatible chat server streaming ``--tokens``
  tokens per answer, one every ``--interval`` seconds, each token the
  ``time.monotonic_ns()`` at which it was sent (CLOCK_MONOTONIC is shared by
  the processes of one machine);
- the relay: ``holysse.relay.RelayApp`` with a ``MemoryStore`` on a threaded
  WSGI server (stdlib ``wsgiref``), one pump per stream reading the upstream
  with ``holysse.Client`` (driven by the reader's connection thread once it
  follows the stream, see ``holysse/relay/pump.py``);
- this process: ``--streams`` readers (threads, ``http.client``), each parsing
  its event stream and noting, per token, receive time minus send time.

Phase 1 (direct) reads the upstream directly; phase 2 reads it through the
relay, one upstream stream per reader. Printed: per-event latency p50/p99/max
in both phases and the difference (the latency the relay adds). The upstream
holds every stream's tokens until all readers have their event stream open
(the main process releases them through the upstream's stdin), so every
event is measured live, with all streams running at once. Also: the relay
process's RSS growth per stream (measured while every stream is running), and
its CPU time per relayed event (its holysse client reading the upstream, the
store, the WSGI serving), next to a baseline measured in the same run: a
process reading the same number of upstream streams with holysse, not
relaying them. Targets at the defaults (200 streams, 4,000 events/s): p99
added latency < 10 ms, relay CPU per event <= 1.5x the baseline. The machine
must have a core free for the relay: compare runs by the ratios within one
run.

Run: ``python benchmarks/relay.py [--streams 200] [--tokens 100] [--interval 0.05]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import socketserver
import subprocess
import sys
import threading
import time
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

MESSAGES = {"messages": [{"role": "user", "content": "bench"}]}


# -- the upstream (its own process) --------------------------------------------------


class Gate:
    """Holds every new upstream stream after its response headers until the
    main process says ``go N`` (on stdin) and N streams are held: then all
    start together, each readers' connection already open."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._held = 0
        self._generation = 0

    def hold(self) -> None:
        with self._changed:
            generation = self._generation
            self._held += 1
            self._changed.notify_all()
            self._changed.wait_for(lambda: self._generation > generation)

    def control(self) -> None:
        for line in sys.stdin:
            wanted = int(line.split()[1])
            with self._changed:
                self._changed.wait_for(lambda wanted=wanted: self._held >= wanted)
                self._held = 0
                self._generation += 1
                self._changed.notify_all()
            print("went", flush=True)


def serve_upstream(tokens: int, interval: float) -> None:
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    gate = Gate()
    threading.Thread(target=gate.control, daemon=True).start()
    print(listener.getsockname()[1], flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_answer, args=(conn, gate, tokens, interval), daemon=True).start()


def _answer(sock: socket.socket, gate: Gate, tokens: int, interval: float) -> None:
    from holysse.testing.connection import Connection

    conn = Connection(sock, threading.Event())
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if conn.read_request() is None:
            return
        conn.write(Connection.head(200, [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")]))
        gate.hold()
        pause = threading.Event()
        pause.wait(random.uniform(0, interval))  # spread the streams over the interval
        start = time.monotonic()
        for i in range(tokens):
            chunk = {"choices": [{"index": 0, "delta": {"content": f"{time.monotonic_ns()};"}, "finish_reason": None}]}
            _send_chunk(conn, b"data: " + json.dumps(chunk).encode() + b"\n\n")
            pause.wait(max(0.0, start + (i + 1) * interval - time.monotonic()))
        final = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        _send_chunk(conn, b"data: " + json.dumps(final).encode() + b"\n\ndata: [DONE]\n\n")
        conn.write(b"0\r\n\r\n")
    finally:
        conn.close_fin()


def _send_chunk(conn: Any, payload: bytes) -> None:
    conn.write(b"%x\r\n" % len(payload) + payload + b"\r\n")


# -- the relay (its own process) ---------------------------------------------------------


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 1024


class _QuietHandler(WSGIRequestHandler):
    def setup(self) -> None:
        super().setup()
        if os.environ.get("HOLYSSE_BENCH_NODELAY", "1") == "1":  # small events go out at once (no Nagle wait)
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_relay(upstream_url: str) -> None:
    import requests

    import holysse
    from holysse.relay import MemoryStore, Relay, RelayApp

    session = requests.Session()  # one pooled connection per concurrent upstream stream
    session.mount("http://", requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=512, max_retries=0))
    client = holysse.Client(api_key="bench", base_url=upstream_url, session=session, timeout=(5, 30))
    relay = Relay(client, MemoryStore())
    server = make_server("127.0.0.1", 0, RelayApp(relay, model="bench"), server_class=_ThreadingWSGIServer,
                         handler_class=_QuietHandler)
    print(server.server_port, flush=True)
    server.serve_forever()


# -- the baseline: the same upstream streams read by holysse, not relayed (its own process) --------------


def run_clients(upstream_url: str, streams: int) -> None:
    """Read ``streams`` upstream answers at once with holysse, as the relay's
    pumps do; print the process CPU seconds and the events read."""
    import requests

    import holysse

    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=512, max_retries=0))
    client = holysse.Client(api_key="bench", base_url=upstream_url, session=session, timeout=(5, 30))
    counts: list[int] = []
    go = threading.Event()

    def read() -> None:
        go.wait()
        counts.append(sum(1 for event in client.stream(model="bench", **MESSAGES) if event.text))

    threads = [threading.Thread(target=read) for _ in range(streams)]
    for thread in threads:
        thread.start()
    print("started", flush=True)
    began = time.process_time()
    go.set()
    for thread in threads:
        thread.join()
    print(json.dumps({"cpu": time.process_time() - began, "events": sum(counts)}), flush=True)


# -- the readers (this process) ----------------------------------------------------------------


class Reader(threading.Thread):
    """One browser-side reader; ``latencies`` in ns, one per token."""

    def __init__(self, port: int, relayed: bool, go: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.relayed, self.go = port, relayed, go
        self.latencies: list[int] = []
        self.replayed = 0  # tokens sent before this reader's stream opened (0: the upstream waits for it)
        self.opened = 0
        self.open = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.go.wait()
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            if self.relayed:
                conn.request("POST", "/streams", json.dumps(MESSAGES), {"Content-Type": "application/json"})
                reply = conn.getresponse()
                stream_id = json.loads(reply.read())["id"]
                cookie = (reply.getheader("Set-Cookie") or "").split(";")[0]  # the stream is bound to it
                conn.request("GET", f"/streams/{stream_id}", headers={"Cookie": cookie})
            else:
                conn.request("POST", "/v1/chat/completions", json.dumps(dict(MESSAGES, stream=True)),
                             {"Content-Type": "application/json"})
            response = conn.getresponse()
            self.opened = time.monotonic_ns()
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {response.read()[:200]!r}")
            self.open.set()
            self._read(response)
            conn.close()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc
            self.open.set()

    def _read(self, response: http.client.HTTPResponse) -> None:
        buffer = b""
        note, opened = self.latencies.append, self.opened
        while True:
            chunk = response.read1(65536)
            if not chunk:
                return
            now = time.monotonic_ns()
            buffer += chunk
            *blocks, buffer = buffer.split(b"\n\n")
            for block in blocks:
                for stamp in _stamps(block, self.relayed):
                    if stamp >= opened:
                        note(now - stamp)
                    else:
                        self.replayed += 1
                if block.startswith((b"event: finish", b"event: failed", b"data: [DONE]")):
                    return


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


# -- measuring ------------------------------------------------------------------------------------------


def cpu_seconds(pid: int, part: slice = slice(11, 13)) -> float:
    """User + system CPU seconds of ``pid`` (``part=slice(12, 13)``: system only)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return sum(int(ticks) for ticks in fields[part]) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Window:
    """The relay process's CPU time and RSS, and the events received, over
    the middle of a phase (every stream set up and running)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.rss_before = rss_bytes(pid)
        self.rss = self.cpu = 0.0
        self.events = 0

    def measure(self, readers: list[Reader], duration: float) -> None:
        pause = threading.Event()
        pause.wait(duration * 0.3)
        cpu, count = cpu_seconds(self.pid), _received(readers)
        self.rss = rss_bytes(self.pid)
        pause.wait(duration * 0.4)
        self.cpu = cpu_seconds(self.pid) - cpu
        self.events = _received(readers) - count


def _received(readers: list[Reader]) -> int:
    return sum(len(r.latencies) + r.replayed for r in readers)


class Upstream:
    """The upstream process and its gate."""

    def __init__(self, tokens: int, interval: float) -> None:
        self.process, port = spawn("upstream", "--tokens", str(tokens), "--interval", str(interval), stdin=True)
        self.url = f"http://127.0.0.1:{int(port)}/v1"
        self.port = int(port)

    def release(self, streams: int) -> None:
        """Start the tokens of ``streams`` held streams (waits until they are held)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"go {streams}\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "went"


def run_phase(port: int, relayed: bool, streams: int, upstream: Upstream, window: Window | None = None,
              duration: float = 0.0) -> tuple[list[int], int, float]:
    go = threading.Event()
    readers = [Reader(port, relayed, go) for _ in range(streams)]
    for reader in readers:
        reader.start()
    go.set()
    for reader in readers:
        reader.open.wait(120)
    began = time.monotonic()
    upstream.release(streams)
    if window is not None:
        window.measure(readers, duration)
    for reader in readers:
        reader.join(300)
    errors = [r.error for r in readers if r.error is not None]
    if errors:
        raise RuntimeError(f"{len(errors)} readers failed, first: {errors[0]!r}")
    latencies = [lat for r in readers for lat in r.latencies]
    return latencies, sum(r.replayed for r in readers), time.monotonic() - began


def quantile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


def spawn(role: str, *args: str, stdin: bool = False) -> tuple[subprocess.Popen[str], str]:
    """Start this script in another role; returns it and its first line of output."""
    process = subprocess.Popen([sys.executable, __file__, "--role", role, *args], stdout=subprocess.PIPE, text=True,
                               stdin=subprocess.PIPE if stdin else None)
    assert process.stdout is not None
    return process, process.stdout.readline()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between an upstream's tokens")
    parser.add_argument("--role", choices=("main", "upstream", "relay", "clients"), default="main",
                        help=argparse.SUPPRESS)
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "upstream":
        return serve_upstream(args.tokens, args.interval)
    if args.role == "relay":
        return serve_relay(args.upstream)
    if args.role == "clients":
        return run_clients(args.upstream, args.streams)

    upstream = Upstream(args.tokens, args.interval)
    relay, port_line = spawn("relay", "--upstream", upstream.url)
    relay_port = int(port_line)
    try:
        clients, _ = spawn("clients", "--upstream", upstream.url, "--streams", str(args.streams))
        upstream.release(args.streams)
        assert clients.stdout is not None
        baseline = json.loads(clients.stdout.readline())
        clients.wait(60)
        run_phase(relay_port, True, 4, upstream)  # warm up the relay (imports, pools)
        direct, _, _ = run_phase(upstream.port, False, args.streams, upstream)
        window = Window(relay.pid)
        cpu_before, system_before = cpu_seconds(relay.pid), cpu_seconds(relay.pid, slice(12, 13))
        relayed, replayed, wall = run_phase(relay_port, True, args.streams, upstream, window,
                                            args.tokens * args.interval)
        cpu = cpu_seconds(relay.pid) - cpu_before
        system = cpu_seconds(relay.pid, slice(12, 13)) - system_before
    finally:
        for process in (relay, upstream.process):
            process.terminate()
            process.wait(10)
    expected = args.streams * args.tokens
    print(f"{args.streams} streams x {args.tokens} tokens, one every {args.interval * 1000:.0f} ms "
          f"({args.streams / args.interval:.0f} events/s); memory store; wsgiref threaded server")
    print(f"events received: direct {len(direct)}/{expected}, relayed {len(relayed)}/{expected} in {wall:.1f}s"
          + (f" (+{replayed} sent before their reader connected, not counted)" if replayed else ""))
    print(f"{'latency per event (ms)':<26}{'p50':>8}{'p99':>8}{'max':>8}")
    for name, values in (("direct upstream", direct), ("through the relay", relayed)):
        print(f"{name:<26}{quantile(values, .5):8.2f}{quantile(values, .99):8.2f}{max(values) / 1e6:8.2f}")
    added_p50 = quantile(relayed, .5) - quantile(direct, .5)
    added_p99 = quantile(relayed, .99) - quantile(direct, .99)
    print(f"{'added by the relay':<26}{added_p50:8.2f}{added_p99:8.2f}"
          f"   (target p99 < 10 ms: {'met' if added_p99 < 10 else 'NOT met'})")
    client_us = baseline["cpu"] / max(1, baseline["events"]) * 1e6
    print(f"baseline: {args.streams} holysse client streams reading the same upstream in one process, "
          f"not relayed: {client_us:.0f} µs CPU per event, stream setup included")
    print(f"relay memory per stream: {(window.rss - window.rss_before) / args.streams / 1024:.0f} KiB "
          f"(RSS {window.rss_before / 2**20:.0f} -> {window.rss / 2**20:.0f} MiB with {args.streams} streams running)")
    events = len(relayed) + replayed
    relay_us = window.cpu / max(1, window.events) * 1e6
    print(f"relay CPU per event / baseline: {relay_us / max(client_us, 1e-9):.2f}x (target <= 1.5x: "
          f"{'met' if relay_us <= 1.5 * client_us else 'NOT met'})")
    print(f"relay CPU per relayed event: {relay_us:.0f} µs while streaming "
          f"({window.events} events mid-run); {cpu / max(1, events) * 1e6:.0f} µs with stream setup "
          f"({cpu:.2f} s CPU, {system / max(cpu, 1e-9) * 100:.0f}% in the kernel, for {events} events, "
          f"{cpu / wall * 100:.0f}% of a core)")


if __name__ == "__main__":
    main()
