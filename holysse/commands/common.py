"""What several commands share: client options, request bodies, durations,
key masking and number formatting."""

from __future__ import annotations

import argparse
import os
import re
from typing import Any

from ..client import Client
from ..retry import RetryPolicy
from ..transport import Timeout

__all__ = [
    "DIALECT_NAMES", "STRATEGIES", "DEFAULT_MODEL", "add_client_arguments", "make_client", "request_body",
    "parse_duration", "timeout_duration", "count", "positive", "port", "mask_key", "ms", "money",
]

DIALECT_NAMES = ("openai-chat", "anthropic", "openai-responses")
STRATEGIES = ("auto", "cursor", "prefill", "replay", "none")
#: The model used when ``--model`` is not given (``$HOLYSSE_MODEL`` overrides it).
DEFAULT_MODEL = "gpt-4.1"

#: The library's defaults, which the options' defaults follow.
_DEFAULT_POLICY = RetryPolicy()
_DEFAULT_TIMEOUT = Timeout()

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m)?\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Seconds from ``"50ms"``, ``"1.5s"``, ``"2m"`` or a bare number of seconds.

    :raises argparse.ArgumentTypeError: for anything else (argparse shows it).
    """
    match = _DURATION.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration; write it like 50ms, 1.5s or 2m")
    value = float(match.group(1))
    unit = (match.group(2) or "s").lower()
    return value / 1000 if unit == "ms" else value * 60 if unit == "m" else value


def timeout_duration(text: str) -> float:
    """A duration above zero, for a timeout (an argparse type).

    :raises argparse.ArgumentTypeError: for anything else.
    """
    value = parse_duration(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is no time at all; a timeout must be above zero, such as 30s")
    return value


def port(text: str) -> int:
    """A TCP port, 0 to 65535 (an argparse type; 0: any free port).

    :raises argparse.ArgumentTypeError: for anything else.
    """
    value = count(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port; use 1 to 65535, or 0 for any free port")
    return value


def count(text: str) -> int:
    """An int >= 0 (an argparse type).

    :raises argparse.ArgumentTypeError: for anything else.
    """
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return value


def positive(text: str) -> int:
    """An int >= 1 (an argparse type).

    :raises argparse.ArgumentTypeError: for anything else.
    """
    value = count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def mask_key(key: str | None) -> str:
    """A key shown safely: ``hs_abcd…wxyz`` (prefix, four characters, the
    last four); short keys show only their length."""
    if not key:
        return "(none)"
    prefix = "hs_" if key.startswith("hs_") else ""
    body = key[len(prefix):]
    if len(body) < 12:
        return f"{prefix}… ({len(key)} characters)"
    return f"{prefix}{body[:4]}…{body[-4:]}"


def ms(seconds: float | None, digits: int = 1) -> str:
    """``12.3 ms``, or ``-`` for a missing value."""
    return "-" if seconds is None else f"{seconds * 1000:.{digits}f} ms"


def money(amount: float | None) -> str:
    """``$0.0123``, or ``unknown``."""
    return "unknown" if amount is None else f"${amount:.4f}"


def add_client_arguments(parser: argparse.ArgumentParser, *, model: bool = True) -> None:
    """``--base-url``, ``--dialect``, ``--resume``, ``--retries``, timeouts (and ``--model``)."""
    if model:
        parser.add_argument("-m", "--model", default=os.environ.get("HOLYSSE_MODEL", DEFAULT_MODEL),
                            help=f"model name (default: $HOLYSSE_MODEL or {DEFAULT_MODEL})")
    parser.add_argument("--base-url", default=None,
                        help="API base URL (default: $HOLYSHEEP_BASE_URL or https://api.holysheep.ai/v1)")
    parser.add_argument("--dialect", default="openai-chat", choices=DIALECT_NAMES, help="wire dialect")
    parser.add_argument("--resume", default="auto", choices=STRATEGIES, help="how a cut stream continues")
    parser.add_argument("--retries", type=count, default=_DEFAULT_POLICY.max_attempts, metavar="N",
                        help="reconnect attempts in a row without progress "
                             f"(default: {_DEFAULT_POLICY.max_attempts}; 0: never)")
    parser.add_argument("--connect-timeout", type=timeout_duration, default=_DEFAULT_TIMEOUT.connect,
                        metavar="DURATION", help=f"longest wait for a connection (default: {_DEFAULT_TIMEOUT.connect:g}s)")
    parser.add_argument("--read-timeout", type=timeout_duration, default=None, metavar="DURATION",
                        help=f"longest silence before a stream counts as stalled (default: {_DEFAULT_TIMEOUT.read:g}s)")


def make_client(args: argparse.Namespace, *, api_key: str | None = None, base_url: str | None = None,
                **kwargs: Any) -> Client:
    """A :class:`Client` from the options of :func:`add_client_arguments`.
    The key comes from ``$HOLYSHEEP_API_KEY`` unless ``api_key`` is given
    (keys never come from the command line, where ``ps`` and shell history
    would keep them)."""
    read = args.read_timeout if args.read_timeout is not None else _DEFAULT_TIMEOUT.read
    return Client(
        api_key=api_key,
        base_url=base_url or args.base_url,
        dialect=args.dialect,
        resume=args.resume,
        retry=_DEFAULT_POLICY.with_attempts(args.retries),
        timeout=Timeout(connect=args.connect_timeout, read=read),
        **kwargs,
    )


def request_body(dialect: str, model: str, messages: list[dict[str, str]], *, system: str | None = None,
                 temperature: float | None = None, max_tokens: int | None = None) -> dict[str, Any]:
    """The body of a chat request in ``dialect``'s shape: messages (with the
    system prompt where that API wants it), temperature and token limit."""
    body: dict[str, Any] = {"model": model}
    if dialect == "anthropic":
        body["messages"] = list(messages)
        body["max_tokens"] = max_tokens or 4096  # required by the Messages API
        if system:
            body["system"] = system
    elif dialect == "openai-responses":
        body["input"] = list(messages)
        if system:
            body["instructions"] = system
        if max_tokens:
            body["max_output_tokens"] = max_tokens
    else:
        body["messages"] = ([{"role": "system", "content": system}] if system else []) + list(messages)
        if max_tokens:
            body["max_tokens"] = max_tokens
    if temperature is not None:
        body["temperature"] = temperature
    return body
