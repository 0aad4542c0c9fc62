"""The embedded fake server of ``holysse serve`` and ``holysse bench --fake``:
its options (latency, answer length, faults) and a random fault plan."""

from __future__ import annotations

import argparse
import random
import threading
from typing import Any, Callable, Sequence

from ..testing import FakeServer, Fault, RecordedRequest
from .common import count, parse_duration

__all__ = ["FAULT_KINDS", "add_fake_arguments", "parse_faults", "RandomFaults", "start_fake"]

#: Fault names accepted by ``--faults`` (plus any HTTP status from 400 to 599).
FAULT_KINDS = ("fin", "rst", "stall", "headers-stall", "html", "malformed", "error")
_CUTS = {"fin": Fault.fin, "rst": Fault.rst, "stall": Fault.stall}


def parse_faults(text: str) -> tuple[str, ...]:
    """``"fin,rst,429"`` -> ``("fin", "rst", "429")`` (an argparse type).

    :raises argparse.ArgumentTypeError: for an unknown fault.
    """
    kinds = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    for kind in kinds:
        if kind not in FAULT_KINDS and not (kind.isdigit() and 400 <= int(kind) <= 599):
            raise argparse.ArgumentTypeError(
                f"unknown fault {kind!r}; use {', '.join(FAULT_KINDS)} or an HTTP status such as 429 or 503")
    return kinds


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a probability between 0 and 1")
    return value


def add_fake_arguments(parser: argparse.ArgumentParser | Any, *, chars: int = 1200) -> None:
    """Answer length, latency and fault options."""
    parser.add_argument("--chars", type=count, default=chars, metavar="N",
                        help=f"answer length in characters (default: {chars})")
    parser.add_argument("--ttfb", type=parse_duration, default=0.0, metavar="DURATION",
                        help="delay before the response headers (default: 0)")
    parser.add_argument("--token-delay", type=parse_duration, default=0.0, metavar="DURATION",
                        help="delay between events (default: 0)")
    parser.add_argument("--faults", type=parse_faults, default=(), metavar="LIST",
                        help=f"faults to inject, comma-separated: {', '.join(FAULT_KINDS)}, or a status (429, 503)")
    parser.add_argument("--fault-rate", type=_rate, default=None, metavar="P",
                        help="share of streaming requests that get a fault (default: 0.2 with --faults)")
    parser.add_argument("--fault-seed", type=int, default=None, metavar="N",
                        help="seed of the fault choices, for repeatable runs")


class RandomFaults:
    """A fault plan: each streaming request gets, with probability ``rate``,
    one of ``kinds`` at a random place of its answer. Thread-safe.

    :param server: the server whose answers the cut offsets are aimed at.
    :param on_request: called with each streaming request and its fault.
    """

    def __init__(self, server: FakeServer, kinds: Sequence[str], rate: float, seed: int | None = None,
                 on_request: Callable[[RecordedRequest, Fault | None], None] | None = None) -> None:
        self._server = server
        self._kinds = tuple(kinds)
        self._rate = rate if kinds else 0.0
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._on_request = on_request

    def __call__(self, request: RecordedRequest) -> Fault | None:
        with self._lock:
            hit = self._random.random() < self._rate
            kind = self._random.choice(self._kinds) if hit else None
            place = self._random.random()
        fault = None if kind is None else self._fault(kind, place, request)
        if self._on_request is not None:
            self._on_request(request, fault)
        return fault

    def _fault(self, kind: str, place: float, request: RecordedRequest) -> Fault | None:
        if kind.isdigit():
            return Fault.status(int(kind), retry_after=1 if kind == "429" else None)
        if kind == "headers-stall":
            return Fault.headers_stall()
        if kind == "html":
            return Fault.content_type("text/html; charset=utf-8")
        ends = self._event_ends(request)
        if not ends:
            return None
        if kind in _CUTS:
            return _CUTS[kind](ends[0] + int(place * (ends[-1] - ends[0])))
        at_event = int(place * (len(ends) - 1))
        return Fault.malformed_json(at_event) if kind == "malformed" else Fault.error_event(at_event)

    def _event_ends(self, request: RecordedRequest) -> list[int]:
        if not isinstance(request.body, dict):
            return []  # a Responses retrieval (GET): nothing to aim at
        dialect = "anthropic" if request.path.endswith("/messages") else (
            "openai-responses" if request.path.endswith("/responses") else "openai-chat")
        try:
            return self._server.event_offsets(request.body, dialect)
        except Exception:  # noqa: BLE001 - the server answers an invalid body with its own error
            return []


def start_fake(args: argparse.Namespace, *, port: int = 0, host: str = "127.0.0.1", api_key: str | None = None,
               ids: bool = True, on_request: Callable[[RecordedRequest, Fault | None], None] | None = None,
               ) -> FakeServer:
    """A started :class:`FakeServer` with the options of :func:`add_fake_arguments`.

    :raises OSError: the address cannot be bound.
    """
    server = FakeServer(answer_chars=args.chars, ttfb=args.ttfb, token_delay=args.token_delay, host=host,
                        port=port, api_key=api_key, ids=ids)
    rate = args.fault_rate if args.fault_rate is not None else 0.2
    server.set_faults(RandomFaults(server, args.faults, rate, args.fault_seed, on_request))
    return server.start()
