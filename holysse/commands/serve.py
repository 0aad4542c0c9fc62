"""``holysse serve``: the fake LLM server in the foreground, for people
testing their own apps against cuts, stalls and error statuses.

It prints the base URL on stdout (one line, so scripts can read it), logs
each streaming request and its fault on stderr, and stops cleanly on Ctrl-C
or SIGTERM: connections closed, threads joined, port released, exit 0.
"""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType
from typing import Any

from .console import Console
from .registry import register
from ..testing import Fault, RecordedRequest
from .common import port
from .fake import add_fake_arguments, start_fake

__all__ = ["serve"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("-p", "--port", type=port, default=8000, help="port (default: 8000; 0: any free port)")
    parser.add_argument("--api-key", default=None,
                        help="require this key (Authorization: Bearer ... or x-api-key), else answer 401")
    parser.add_argument("--no-ids", action="store_true", help="send no SSE id: fields (no cursor resume)")
    parser.add_argument("-q", "--quiet", action="store_true", help="do not log requests")
    add_fake_arguments(parser)


@register("serve", "run the fault-injecting fake LLM server in the foreground", add_arguments)
def serve(args: argparse.Namespace) -> int:
    """Run ``holysse serve`` until Ctrl-C or SIGTERM; returns the exit status."""
    console = Console()
    lock = threading.Lock()

    def log(request: RecordedRequest, fault: Fault | None) -> None:
        if args.quiet:
            return
        model = request.body.get("model") if isinstance(request.body, dict) else None
        line = f"{request.method} {request.path}" + (f" model={model}" if model else "")
        if request.header("Last-Event-ID"):
            line += f" Last-Event-ID={request.header('Last-Event-ID')}"
        with lock:
            console.status(f"{line} → {fault.describe() if fault else 'no fault'}")

    try:
        server = start_fake(args, port=args.port, host=args.host, api_key=args.api_key, ids=not args.no_ids,
                            on_request=log)
    except OSError as exc:
        console.status(f"holysse serve: cannot listen on {args.host}:{args.port} ({exc.strerror or exc}); "
                       "pick another --port or --host, or stop what uses it.")
        return 1
    stop = threading.Event()
    previous = {sig: signal.signal(sig, _setter(stop)) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        console.text(server.url + "\n")
        faults = ", ".join(args.faults) or "none"
        console.status(f"holysse fake server on {server.url} · answers of {args.chars} characters · "
                       f"faults: {faults} · Ctrl-C stops it")
        stop.wait()
    finally:
        server.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    console.status("stopped; port released.")
    return 0


def _setter(stop: threading.Event) -> Any:
    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    return handle
