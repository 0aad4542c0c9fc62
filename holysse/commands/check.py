"""``holysse check``: can a stream work from here?

It checks, in order, and stops at what makes streaming impossible: the key
(set? for the HolySheep gateway, shaped ``hs_`` + 32 or more letters or
digits? shown masked only), DNS, TCP connect, proxy tunnel, TLS and first
byte (timed with the standard library, without the key), ``GET /models``
and a short test stream (through :class:`holysse.Client`). Each failure is
one line: what happened, then what to do. Exit status 0 only when the test
stream worked.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from urllib.parse import urlsplit

from .console import Console, cli_words, plural
from .registry import register
from ..client import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, Client
from ..exceptions import (
    AuthenticationError,
    HolySSEError,
    HTTPStatusError,
    ProtocolError,
    ReadTimeout,
    RetriesExhausted,
    UsageError,
)
from ..transport import Timeout
from .common import DIALECT_NAMES, mask_key, ms, request_body, timeout_duration
from .netprobe import Step, probe, proxy_for

__all__ = ["check", "key_step", "HOLYSHEEP_KEY"]

#: What a HolySheep key looks like.
HOLYSHEEP_KEY = re.compile(r"hs_[A-Za-z0-9]{32,}")
_MARK = {True: "✓", False: "✗", None: "-"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-url", default=None,
                        help="API base URL (default: $HOLYSHEEP_BASE_URL or https://api.holysheep.ai/v1)")
    parser.add_argument("--dialect", default="openai-chat", choices=DIALECT_NAMES, help="wire dialect")
    parser.add_argument("-m", "--model", default=None,
                        help="model for the test stream (default: the first one GET /models lists)")
    parser.add_argument("--timeout", type=timeout_duration, default=10.0, metavar="DURATION",
                        help="time allowed for each step (default: 10s)")


@register("check", "check the key, the network path, GET /models and a test stream", add_arguments)
def check(args: argparse.Namespace) -> int:
    """Run ``holysse check``; returns the exit status."""
    report = _Report(Console())
    base_url = (args.base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
    report.console.text(f"holysse check · {base_url}\n")
    report.add(key_step(base_url, os.environ.get(API_KEY_ENV)))
    try:
        # What the library does by default (resume="auto", the default retries): a server that
        # merely drops connections works, and the reconnects it needed are reported.
        client = Client(base_url=base_url, dialect=args.dialect, timeout=Timeout(args.timeout, args.timeout))
    except UsageError as exc:
        report.add(Step("config", False, cli_words(str(exc))))
        return report.verdict(False, "the configuration is refused")
    with client:
        steps = probe(base_url, args.timeout, proxy_for(base_url))
        for step in steps:
            report.add(step)
        if steps[-1].ok is False:
            return report.verdict(False, f"{steps[-1].name} failed")
        models_step, models, refused = _models(client, args.timeout)
        report.add(models_step)
        if refused:
            return report.verdict(False, "the key was refused" if client.api_key_source else "no key")
        model = args.model or (models[0] if models else None)
        if model is None:
            report.add(Step("stream", False, "no model to try", advice="pass --model NAME"))
            return report.verdict(False, "no test stream")
        stream_step = _stream(client, args.dialect, model)
        report.add(stream_step)
        return report.verdict(bool(stream_step.ok), "the test stream failed")


def key_step(base_url: str, key: str | None) -> Step:
    """Is a key set, and (for the HolySheep gateway) does it look like one?"""
    host = (urlsplit(base_url).hostname or "").lower()
    holysheep = host == "holysheep.ai" or host.endswith(".holysheep.ai")
    if not key:
        if holysheep:
            return Step("key", False, f"{API_KEY_ENV} is not set",
                        advice=f"export {API_KEY_ENV}=hs_... (the key from your HolySheep dashboard)")
        return Step("key", None, f"{API_KEY_ENV} is not set (fine if this server needs no key)")
    shown = f"{mask_key(key)} (from {API_KEY_ENV})"
    if holysheep and not HOLYSHEEP_KEY.fullmatch(key):
        return Step("key", False, f"{shown} does not look like a HolySheep key (hs_ + 32 or more letters or digits)",
                    advice="check that it was copied whole, without quotes or spaces")
    return Step("key", True, shown)


def _models(client: Client, timeout: float) -> tuple[Step, list[str], bool]:
    """The models step, the models listed, and whether the key was refused."""
    started = time.perf_counter()
    try:
        models = client.models(timeout=Timeout(timeout, timeout))
    except HolySSEError as exc:
        took = time.perf_counter() - started
        detail, advice = diagnose(exc, key_set=client.api_key_source is not None)
        status = getattr(exc, "status_code", None)
        if isinstance(exc, HTTPStatusError) and status == 404:
            return Step("models", None, f"GET /models: {detail}", took, "fine if --model names a model"), [], False
        refused = isinstance(exc, AuthenticationError) and status == 401
        return Step("models", False, f"GET /models: {detail}", took, advice), [], refused
    shown = ", ".join(models[:5]) + (", …" if len(models) > 5 else "")
    detail = f"{len(models)} listed: {shown}" if models else "none listed"
    return Step("models", True, detail, time.perf_counter() - started), models, False


def _stream(client: Client, dialect: str, model: str) -> Step:
    body = request_body(dialect, model, [{"role": "user", "content": "Reply with OK."}], max_tokens=16)
    stream = client.stream(**body)
    try:
        with stream:
            for _ in stream:
                pass
    except HolySSEError as exc:
        detail, advice = diagnose(exc, key_set=client.api_key_source is not None)
        return Step("stream", False, f"{model}: {detail}", stream.metrics.duration, advice)
    m = stream.metrics
    preview = stream.text[:40] + ("…" if len(stream.text) > 40 else "")
    detail = (f"{model}: TTFB {ms(m.ttfb)}, TTFT {ms(m.ttft)}, {m.text_events} tokens"
              f", finish {stream.finish_reason or '-'}, {_reconnects(m.reconnects)}: {preview!r}")
    return Step("stream", True, detail, m.duration)


def _reconnects(by_strategy: dict[str, int]) -> str:
    """``no reconnect``, ``1 reconnect (cursor)``, ``3 reconnects (retry 1, replay 2)``."""
    total = sum(by_strategy.values())
    if not total:
        return "no reconnect"
    detail = ", ".join(f"{name} {count}" if total > 1 else name for name, count in by_strategy.items())
    return f"{plural(total, 'reconnect')} ({detail})"


def diagnose(exc: HolySSEError, *, key_set: bool = True) -> tuple[str, str]:
    """A short description of ``exc`` and what to do about it."""
    if isinstance(exc, RetriesExhausted) and isinstance(exc.__cause__, HolySSEError):
        return diagnose(exc.__cause__, key_set=key_set)
    status = getattr(exc, "status_code", None)
    if isinstance(exc, AuthenticationError) and status == 401 and not key_set:
        return "401: this server wants a key", f"export {API_KEY_ENV}=... (your key for this server)"
    if isinstance(exc, AuthenticationError) and status == 401:
        return "401: the key was refused", f"check {API_KEY_ENV}: it must be a valid key for this server"
    if isinstance(exc, AuthenticationError):
        return f"{status}: the key may not do this", "check the key's permissions and the model name"
    if isinstance(exc, HTTPStatusError) and status == 404:
        return "404 Not Found", "the base URL usually ends in /v1; check it and the model name"
    if isinstance(exc, HTTPStatusError) and status == 429:
        return "429: rate limited", "wait a little and try again, or raise the key's rate limit"
    if isinstance(exc, ProtocolError) and getattr(exc, "body_excerpt", "").lstrip()[:1] == "<":
        return (f"{status} with an HTML page, not the API",
                "the base URL points at a website, a login portal or a captive proxy; an API base URL usually ends in /v1")
    if isinstance(exc, ReadTimeout):
        return "no answer within the timeout", "the server is slow or stuck: try later, or raise --timeout"
    return f"{type(exc).__name__}: {cli_words(str(exc))}", ""


class _Report:
    """The lines of a check on stdout: mark, step, time, detail, advice."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def add(self, step: Step) -> None:
        took = f"{ms(step.seconds):>9}  " if step.seconds is not None else " " * 11
        advice = f" → {step.advice}" if step.advice and step.ok is not True else ""
        self.console.text(f"{_MARK[step.ok]} {step.name:<11}{took}{step.detail}{advice}\n")

    def verdict(self, ok: bool, reason: str) -> int:
        if ok:
            self.console.text("ok: streaming works from here.\n")
            return 0
        self.console.text(f"not ready: {reason}.\n")
        return 1
