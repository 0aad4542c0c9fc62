"""``holysse bench``: N streams at concurrency C against one or more models.

Per model it reports TTFB, time to first token, inter-token gap and total
time (min / p50 / p90 / p99 / max / stdev), tokens per second, reconnects,
errors and cost, as computed by :class:`holysse.monitor.LatencyMonitor` fed
through ``Client(on_metrics=...)``. Progress goes to stderr, the table to
stdout (``--json`` for machines), ``--html FILE`` writes a self-contained
report with inline SVG charts. ``--fake`` runs against an embedded
:class:`~holysse.testing.FakeServer` (latency and fault options), offline.

Exit status: 0, or 1 when a stream failed or the TTFB p90 missed
``--target-ttfb``.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack
from typing import Any, Callable

from .. import __version__
from .console import Console, plural
from .registry import register
from ..client import Client
from ..stream import Stream
from ..exceptions import HolySSEError
from ..monitor import LatencyMonitor, Stats
from .common import DEFAULT_MODEL, add_client_arguments, make_client, money, ms, parse_duration, positive, request_body
from .fake import add_fake_arguments, start_fake
from .report import ModelRun, render_html

__all__ = ["bench", "ModelRun"]

FAKE_MODEL = "fake-1"
_PROMPT = "Explain, in a few paragraphs, how a streaming client should survive a dropped connection."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model", action="append", dest="models", metavar="MODEL",
                        help=f"model to bench; repeat for several (default: {FAKE_MODEL} with --fake, "
                             f"else $HOLYSSE_MODEL or {DEFAULT_MODEL})")
    parser.add_argument("-n", "--streams", type=positive, default=20, metavar="N", help="streams per model (default: 20)")
    parser.add_argument("-c", "--concurrency", type=positive, default=4, metavar="C",
                        help="streams at the same time (default: 4)")
    parser.add_argument("--prompt", default=_PROMPT, help="the question every stream asks")
    parser.add_argument("--max-tokens", type=positive, metavar="N", help="limit each answer to N tokens")
    parser.add_argument("--temperature", type=float, help="sampling temperature")
    parser.add_argument("--target-ttfb", type=parse_duration, metavar="DURATION",
                        help="a TTFB target such as 50ms: what misses it is marked")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--html", metavar="FILE", help="write a self-contained HTML report with SVG charts")
    add_client_arguments(parser, model=False)
    fake = parser.add_argument_group("fake server (--fake)")
    fake.add_argument("--fake", action="store_true", help="bench an embedded fake server: offline, no key")
    add_fake_arguments(fake)


@register("bench", "measure TTFB, TTFT, token gaps and throughput over many streams", add_arguments)
def bench(args: argparse.Namespace) -> int:
    """Run ``holysse bench``; returns the exit status."""
    console = Console()
    models = args.models or [FAKE_MODEL if args.fake else os.environ.get("HOLYSSE_MODEL", DEFAULT_MODEL)]
    runs: list[ModelRun] = []
    with ExitStack() as stack:
        base_url, api_key = args.base_url, None
        if args.fake:
            server = stack.enter_context(start_fake(args))
            base_url, api_key = server.url, "hs_fake"
            if args.read_timeout is None and ("stall" in args.faults or "headers-stall" in args.faults):
                args.read_timeout = 1.0  # a stall then costs a second, not a minute
        for model in models:
            monitor = LatencyMonitor(window=None)
            client = stack.enter_context(make_client(args, api_key=api_key, base_url=base_url,
                                                     on_metrics=monitor.record))
            body = request_body(args.dialect, model, [{"role": "user", "content": args.prompt}],
                                temperature=args.temperature, max_tokens=args.max_tokens)
            base_url = client.base_url
            run = ModelRun(model, monitor, time.monotonic())
            _Progress(console, model, args.streams).run(client, body, args.concurrency)
            run.wall = time.monotonic() - run.started
            runs.append(run)
        target = args.target_ttfb
        results = [{"model": run.model, "wall_seconds": run.wall, **run.monitor.report(target_ttfb=target)}
                   for run in runs]
        config = {"holysse": __version__, "base_url": base_url, "fake": args.fake, "dialect": args.dialect,
                  "streams": args.streams, "concurrency": args.concurrency, "resume": args.resume,
                  "target_ttfb": target, "faults": list(args.faults) if args.fake else []}
        if args.html:
            with open(args.html, "w", encoding="utf-8") as file:
                file.write(render_html(config, runs, results))
            console.status(f"report written to {args.html}")
    if args.json:
        console.text(json.dumps({"config": config, "models": results}, indent=2) + "\n")
    else:
        for result in results:
            console.text(table(result, args.concurrency, target) + "\n")
    return 0 if all(_passed(result) for result in results) else 1


def _passed(result: dict[str, Any]) -> bool:
    target = result.get("target_ttfb")
    return not result["errors"] and not (target is not None and "p90" in target["over"])


class _Progress:
    """Runs the streams of one model and shows progress on stderr."""

    def __init__(self, console: Console, model: str, total: int) -> None:
        self.console = console
        self.model = model
        self.total = total
        self.done = 0
        self.failed = 0
        self.reconnects = 0
        self._shown = -1
        self._live = console.err.isatty()

    def run(self, client: Client, body: dict[str, Any], concurrency: int) -> None:
        active: set[Stream] = set()
        lock = threading.Lock()
        executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="holysse-bench")
        futures = [executor.submit(_one_stream, client, body, active, lock) for _ in range(self.total)]
        try:
            pending: set[Future[Stream]] = set(futures)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    self._count(future.result())
                self._show()
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            with lock:
                for stream in list(active):
                    stream.close()
            raise
        finally:
            executor.shutdown(wait=True)
        if self._live:
            self.console.err.write("\n")

    def _count(self, stream: Stream) -> None:
        self.done += 1
        self.failed += stream.metrics.error is not None
        self.reconnects += stream.metrics.total_reconnects

    def _show(self) -> None:
        line = (f"{self.model}: {self.done}/{self.total} streams, {self.failed} failed, "
                f"{plural(self.reconnects, 'reconnect')}")
        if self._live:
            self.console.err.write("\r\x1b[2K" + line)
            self.console.err.flush()
            return
        quarter = self.done * 4 // self.total
        if quarter != self._shown:
            self._shown = quarter
            self.console.status(line)


def _one_stream(client: Client, body: dict[str, Any], active: set[Stream], lock: threading.Lock) -> Stream:
    """Read one answer to the end; its metrics reach the monitor through
    ``on_metrics``, errors included."""
    stream = client.stream(**body)
    with lock:
        active.add(stream)
    try:
        for _ in stream:
            pass
    except HolySSEError:
        pass  # counted by the monitor (metrics.error)
    finally:
        with lock:
            active.discard(stream)
    return stream


# -- the table ------------------------------------------------------------------


def table(result: dict[str, Any], concurrency: int, target: float | None) -> str:
    """The text table of one model's results; cells over the TTFB target end in ``*``."""
    over = set(result["target_ttfb"]["over"]) if target is not None else set()
    lines = [f"{result['model']} · {result['streams']} streams · concurrency {concurrency} · "
             f"{result['wall_seconds']:.2f} s wall · {result['completed']} ok, "
             f"{result['streams'] - result['completed']} failed"]
    lines.append(f"{'':<12}" + "".join(f"{name:>11}" for name in Stats.COLUMNS))
    for figure, label in (("ttfb", "TTFB"), ("ttft", "TTFT"), ("gap", "token gap"), ("total", "total")):
        marks = over if figure == "ttfb" else set()
        lines.append(f"{label:<12}" + "".join(f"{_cell(result[figure], n, ms, n in marks):>11}" for n in Stats.COLUMNS))
    lines.append(f"{'tokens/s':<12}" + "".join(f"{_cell(result['tokens_per_second'], n, _rate):>11}"
                                               for n in Stats.COLUMNS))
    lines.extend(_footer(result, target))
    return "\n".join(lines) + "\n"


def _cell(stats: dict[str, Any], name: str, fmt: Callable[[float | None], str], marked: bool = False) -> str:
    return fmt(stats[name]) + ("*" if marked else "")


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _footer(result: dict[str, Any], target: float | None) -> list[str]:
    rec = result["reconnects"]
    by = ", ".join(f"{k} {v}" for k, v in sorted(rec["by_strategy"].items()))
    lines = [f"reconnects  {rec['total']}" + (f" ({by}) in {plural(rec['streams'], 'stream')}" if rec["total"] else "")
             + f" · wasted tokens {rec['wasted_output_tokens']}"]
    if result["errors"]:
        lines.append("errors      " + ", ".join(f"{k} {v}" for k, v in sorted(result["errors"].items())))
    cost = result["cost"]
    lines.append(f"cost        {money(cost['total'])}" + (f" ({cost['unknown']} streams unpriced)"
                                                          if cost["total"] is not None and cost["unknown"] else ""))
    if target is not None:
        info = result["target_ttfb"]
        verdict = f"missed at {', '.join(info['over'])} (marked *)" if info["over"] else "met"
        lines.append(f"target TTFB {ms(target)}: {verdict}; {info['streams_missed']} of {result['streams']} "
                     "streams over")
    return lines
