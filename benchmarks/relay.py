"""The browser relay under load: 200 concurrent SSE readers, one relay process.

Three processes on 127.0.0.1:

- an upstream: a minimal OpenAI-compatible chat server streaming ``--tokens``
  tokens per answer, one every ``--interval`` seconds, each token the
  ``time.monotonic_ns()`` at which it was sent (see ``relay_load.py``);
- the relay: ``holysse.relay.RelayApp`` with a ``MemoryStore`` on a threaded
  WSGI server (stdlib ``wsgiref``, ``TCP_NODELAY`` as gunicorn sets it), one
  pump per stream reading the upstream with ``holysse.Client``, driven by the
  reader's connection thread once it follows the stream (see
  ``holysse/relay/pump.py``); its admission limits are raised to the run's
  size (one process takes every stream here);
- this process: ``--streams`` readers, each noting, per token, receive time
  minus send time.

The upstream and the readers stand in for other machines, so they are light
(one thread each sends or reads every stream, ``relay_load.py``) and are
pinned to the other cores, while the relay has one core to itself: one relay
process per core is how the README says to deploy it. The readers poll
without sleeping, so that a send of the relay does not pay for waking a
process on the relay's machine (``--sleeping-readers`` shows that cost). A relay's threads
spread over two cores pass the GIL between the cores for every event and
cost about twice as much (``--no-pin`` shows it).

Each of ``--rounds`` rounds runs three phases in turn: the baseline (a
process, on the relay's core, reading the same number of upstream streams
with holysse, not relaying them), direct (the readers read the upstream
itself) and relayed (they read it through the relay, one upstream stream per
reader). The upstream holds every stream's tokens until all its readers are
connected, so every event is measured live, with all streams running at
once. CPU per event is measured over the middle of a phase (30% to 70% of
it, every stream set up and running), the same window for the relay and
the baseline; the figures pool the rounds, so drift of the machine hits both.
Printed: per-event latency p50/p99/max direct and relayed and the difference
(what the relay adds); the relay's CPU per relayed event next to the
baseline's; its RSS growth per stream; the CPU share of every process.
Targets at the defaults (200 streams, 4,000 events/s): p99 added latency
< 10 ms, relay CPU per event <= 1.5x the baseline.

Run: ``python benchmarks/relay.py [--streams 200] [--tokens 100] [--interval 0.05] [--rounds 4] [--no-pin]
[--sleeping-readers]``.
Profiling: ``HOLYSSE_BENCH_PROBE`` (and ``HOLYSSE_BENCH_PROBE_BASELINE``) is
a shell command run during the measured window with ``{pid}`` the relay's (the
baseline's) process id, e.g. ``py-spy record -p {pid} -d 2 --gil -f raw -o relay.raw``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from relay_load import MESSAGES, Reader, open_readers, read_all, serve_upstream

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


def serve_relay(upstream_url: str, streams: int) -> None:
    import requests

    import holysse
    from holysse.relay import MemoryStore, Relay, RelayApp

    session = requests.Session()  # one pooled connection per concurrent upstream stream
    session.mount("http://", requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=512, max_retries=0))
    client = holysse.Client(api_key="bench", base_url=upstream_url, session=session, timeout=(5, 30))
    # One process relays every stream of the run: lift the per-process and per-owner admission limits
    # (holysse.relay.limits; 64 and 4 by default) to the run's size, and say so.
    relay = Relay(client, MemoryStore(), max_streams=streams + 8, max_streams_per_owner=streams + 8)
    server = make_server("127.0.0.1", 0, RelayApp(relay, model="bench"), server_class=_ThreadingWSGIServer,
                         handler_class=_QuietHandler)
    print(server.server_port, flush=True)
    print(f"relay admission limits raised for this run: max_streams={relay.limits.total}, "
          f"max_streams_per_owner={relay.limits.per_owner}", flush=True)
    server.serve_forever()


# -- the baseline: the same upstream streams read by holysse, not relayed (its own process) --------------


def run_clients(upstream_url: str, streams: int, duration: float) -> None:
    """Read ``streams`` upstream answers at once with holysse, as the relay's
    pumps do; print the process CPU seconds and the events read, over the
    whole run and over the same mid-run window as the relay's (from 30% to
    70% of ``duration`` after the first token)."""
    import requests

    import holysse

    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=512, max_retries=0))
    client = holysse.Client(api_key="bench", base_url=upstream_url, session=session, timeout=(5, 30))
    counts = [0] * streams
    go, first = threading.Event(), threading.Event()

    def read(index: int) -> None:
        go.wait()
        for event in client.stream(model="bench", **MESSAGES):
            if event.text:
                counts[index] += 1
                first.set()

    window: dict[str, float] = {}

    def measure() -> None:
        first.wait()
        pause = threading.Event()
        pause.wait(duration * 0.3)
        cpu, events = time.process_time(), sum(counts)
        pause.wait(duration * 0.4)
        window.update(cpu=time.process_time() - cpu, events=sum(counts) - events)

    threads = [threading.Thread(target=read, args=(i,)) for i in range(streams)]
    for thread in threads:
        thread.start()
    sampler = threading.Thread(target=measure)
    sampler.start()
    print("started", flush=True)
    began = time.process_time()
    go.set()
    for thread in threads:
        thread.join()
    cpu = time.process_time() - began
    sampler.join()
    print(json.dumps({"cpu": cpu, "events": sum(counts), "window": window}), flush=True)


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
    the middle of a phase (every stream set up and running); also the CPU
    share of the upstream and of this (measuring) process then, to show
    whether they, not the relay, were short of CPU."""

    def __init__(self, pid: int, others: dict[str, int]) -> None:
        self.pid = pid
        self.others = others
        self.rss_before = rss_bytes(pid)
        self.rss = self.cpu = self.seconds = 0.0
        self.events = 0
        self.shares: dict[str, float] = {}

    def measure(self, readers: list[Reader], duration: float) -> None:
        pause = threading.Event()
        pause.wait(duration * 0.3)
        cpu, count, began = cpu_seconds(self.pid), _received(readers), time.monotonic()
        others = {name: cpu_seconds(pid) for name, pid in self.others.items()}
        self.rss = rss_bytes(self.pid)
        probe = os.environ.get("HOLYSSE_BENCH_PROBE")  # e.g. "py-spy record -p {pid} -d 2 -f raw -o relay.raw"
        prober = subprocess.Popen(probe.format(pid=self.pid), shell=True) if probe else None
        pause.wait(duration * 0.4)
        if prober is not None:
            prober.wait()
        self.seconds = time.monotonic() - began
        self.cpu = cpu_seconds(self.pid) - cpu
        self.events = _received(readers) - count
        self.shares = {name: (cpu_seconds(pid) - others[name]) / self.seconds for name, pid in self.others.items()}
        self.shares["relay"] = self.cpu / self.seconds


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
              duration: float = 0.0, sleep: bool = False) -> tuple[list[int], int, float]:
    readers = open_readers(port, relayed, streams)
    _check(readers, "could not start")
    began = time.monotonic()
    upstream.release(streams)
    measuring = threading.Thread(target=window.measure, args=(readers, duration)) if window is not None else None
    if measuring is not None:
        measuring.start()
    reading = threading.Thread(target=read_all, args=(readers, duration + 120), kwargs={"sleep": sleep})
    reading.start()  # a thread of its own: it lowers its priority to poll (relay_load.read_all)
    reading.join()
    if measuring is not None:
        measuring.join()
    _check(readers, "failed")
    latencies = [lat for r in readers for lat in r.latencies]
    return latencies, sum(r.replayed for r in readers), time.monotonic() - began


def _check(readers: list[Reader], what: str) -> None:
    errors = [r.error for r in readers if r.error is not None]
    if errors:
        kinds = sorted({repr(error) for error in errors})
        raise RuntimeError(f"{len(errors)} of {len(readers)} readers {what} ({len(kinds)} distinct errors): "
                           + "; ".join(kinds[:3]))


def quantile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


def placement(no_pin: bool) -> tuple[list[str], list[str]]:
    """The ``--cpus`` arguments of the relay's (and the baseline's) process,
    and the CPUs left to the upstream and the readers: the relay gets one
    core of its own, as one worker per core is deployed (see the module docs).
    Nothing pinned with ``--no-pin`` or fewer than two usable cores."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if no_pin or len(cpus) < 2:
        return [], []
    return ["--cpus", str(cpus[0])], [str(cpu) for cpu in cpus[1:]]


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
    parser.add_argument("--rounds", type=int, default=4,
                        help="baseline, direct and relayed phases, in turn (figures pooled: the machine's own "
                             "drift hits both sides)")
    parser.add_argument("--role", choices=("main", "upstream", "relay", "clients"), default="main",
                        help=argparse.SUPPRESS)
    parser.add_argument("--sleeping-readers", action="store_true",
                        help="let the readers sleep between events: each send of the relay then also pays for "
                             "waking them, as it would not with the browsers on other machines")
    parser.add_argument("--no-pin", action="store_true",
                        help="let the relay's threads run on every core (default: the relay, and the baseline, on "
                             "one core; the upstream and the readers on the others)")
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    parser.add_argument("--cpus", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cpus:
        os.sched_setaffinity(0, {int(cpu) for cpu in args.cpus.split(",")})
    if args.role == "upstream":
        return serve_upstream(args.tokens, args.interval)
    if args.role == "relay":
        return serve_relay(args.upstream, args.streams)
    if args.role == "clients":
        return run_clients(args.upstream, args.streams, args.tokens * args.interval)

    relay_cpus, other_cpus = placement(args.no_pin)
    if other_cpus:
        os.sched_setaffinity(0, {int(cpu) for cpu in other_cpus})  # these readers, and the upstream started below
    upstream = Upstream(args.tokens, args.interval)
    relay, port_line = spawn("relay", "--upstream", upstream.url, "--streams", str(args.streams), *relay_cpus)
    assert relay.stdout is not None
    limits_line = relay.stdout.readline().strip()
    rounds: list[Round] = []
    try:
        run_phase(int(port_line), True, 4, upstream)  # warm up the relay (imports, pools)
        for _ in range(args.rounds):
            rounds.append(run_round(args, upstream, relay.pid, int(port_line), relay_cpus))
    finally:
        for process in (relay, upstream.process):
            process.terminate()
            process.wait(10)
    print(f"{args.streams} streams x {args.tokens} tokens, one every {args.interval * 1000:.0f} ms "
          f"({args.streams / args.interval:.0f} events/s); memory store; wsgiref threaded server; "
          f"{args.rounds} rounds (baseline, direct, relayed)")
    print(limits_line)
    print(f"relay and baseline pinned to CPU {relay_cpus[1]}, the upstream and the readers to CPU {','.join(other_cpus)}"
          if other_cpus else "not pinned: every process on every core (--no-pin, or fewer than 2 cores)")
    print("readers sleep between events (--sleeping-readers): the relay's sends also pay for waking them"
          if args.sleeping_readers else "readers poll without sleeping (the browsers' machines are not the relay's)")
    report(args, rounds)


class Round:
    """One baseline phase, one direct phase and one relayed phase."""

    def __init__(self, baseline: dict[str, Any], direct: list[int], relayed: list[int], replayed: int, wall: float,
                 window: Window, cpu: float, system: float) -> None:
        self.baseline, self.direct, self.relayed, self.replayed = baseline, direct, relayed, replayed
        self.wall, self.window, self.cpu, self.system = wall, window, cpu, system
        self.client_us = baseline["window"]["cpu"] / max(1, baseline["window"]["events"]) * 1e6
        self.relay_us = window.cpu / max(1, window.events) * 1e6


def run_round(args: argparse.Namespace, upstream: Upstream, relay_pid: int, relay_port: int,
              relay_cpus: list[str]) -> Round:
    clients, _ = spawn("clients", "--upstream", upstream.url, "--streams", str(args.streams),
                       "--tokens", str(args.tokens), "--interval", str(args.interval), *relay_cpus)
    upstream.release(args.streams)
    probe = os.environ.get("HOLYSSE_BENCH_PROBE_BASELINE")  # as HOLYSSE_BENCH_PROBE, for the baseline
    prober = subprocess.Popen(probe.format(pid=clients.pid), shell=True) if probe else None
    assert clients.stdout is not None
    baseline = json.loads(clients.stdout.readline())
    if prober is not None:
        prober.wait()
    clients.wait(60)
    direct, _, _ = run_phase(upstream.port, False, args.streams, upstream, sleep=args.sleeping_readers)
    window = Window(relay_pid, {"upstream": upstream.process.pid, "readers (this process)": os.getpid()})
    cpu_before, system_before = cpu_seconds(relay_pid), cpu_seconds(relay_pid, slice(12, 13))
    relayed, replayed, wall = run_phase(relay_port, True, args.streams, upstream, window, args.tokens * args.interval,
                                        args.sleeping_readers)
    return Round(baseline, direct, relayed, replayed, wall, window, cpu_seconds(relay_pid) - cpu_before,
                 cpu_seconds(relay_pid, slice(12, 13)) - system_before)


def report(args: argparse.Namespace, rounds: list[Round]) -> None:
    expected = args.streams * args.tokens
    for number, r in enumerate(rounds, 1):
        print(f"round {number}: events direct {len(r.direct)}/{expected}, relayed {len(r.relayed)}/{expected} "
              f"in {r.wall:.1f}s; p99 added {quantile(r.relayed, .99) - quantile(r.direct, .99):.2f} ms; CPU per "
              f"event {r.relay_us:.0f} µs relayed, {r.client_us:.0f} µs baseline ({r.relay_us / r.client_us:.2f}x); "
              "CPU mid-run, share of one core: " + ", ".join(f"{name} {share * 100:.0f}%"
                                                             for name, share in r.window.shares.items()))
    direct = [lat for r in rounds for lat in r.direct]
    relayed = [lat for r in rounds for lat in r.relayed]
    replayed = sum(r.replayed for r in rounds)
    print(f"all rounds{f' (+{replayed} events sent before their reader connected, not counted)' if replayed else ''}:")
    print(f"{'latency per event (ms)':<26}{'p50':>8}{'p99':>8}{'max':>8}")
    for name, values in (("direct upstream", direct), ("through the relay", relayed)):
        print(f"{name:<26}{quantile(values, .5):8.2f}{quantile(values, .99):8.2f}{max(values) / 1e6:8.2f}")
    added_p50 = quantile(relayed, .5) - quantile(direct, .5)
    added_p99 = quantile(relayed, .99) - quantile(direct, .99)
    print(f"{'added by the relay':<26}{added_p50:8.2f}{added_p99:8.2f}"
          f"   (target p99 < 10 ms: {'met' if added_p99 < 10 else 'NOT met'})")
    client_us = (sum(r.baseline["window"]["cpu"] for r in rounds)
                 / max(1, sum(r.baseline["window"]["events"] for r in rounds)) * 1e6)
    client_setup_us = sum(r.baseline["cpu"] for r in rounds) / max(1, sum(r.baseline["events"] for r in rounds)) * 1e6
    print(f"baseline: {args.streams} holysse client streams reading the same upstream in one process, not relayed: "
          f"{client_us:.0f} µs CPU per event while streaming (mid-run), {client_setup_us:.0f} µs with stream setup")
    first = rounds[0].window
    print(f"relay memory per stream: {(first.rss - first.rss_before) / args.streams / 1024:.0f} KiB "
          f"(RSS {first.rss_before / 2**20:.0f} -> {first.rss / 2**20:.0f} MiB with {args.streams} streams running)")
    relay_us = sum(r.window.cpu for r in rounds) / max(1, sum(r.window.events for r in rounds)) * 1e6
    cpu, system = sum(r.cpu for r in rounds), sum(r.system for r in rounds)
    events = len(relayed) + replayed
    relay_setup_us = cpu / max(1, events) * 1e6
    print(f"relay CPU per relayed event: {relay_us:.0f} µs while streaming (mid-run); {relay_setup_us:.0f} µs with "
          f"stream setup ({cpu:.2f} s CPU, {system / max(cpu, 1e-9) * 100:.0f}% in the kernel, for {events} events, "
          f"{cpu / sum(r.wall for r in rounds) * 100:.0f}% of a core)")
    print(f"relay CPU per event / baseline, both while streaming: {relay_us / max(client_us, 1e-9):.2f}x "
          f"(target <= 1.5x: {'met' if relay_us <= 1.5 * client_us else 'NOT met'}); with stream setup: "
          f"{relay_setup_us / max(client_setup_us, 1e-9):.2f}x")


if __name__ == "__main__":
    main()
