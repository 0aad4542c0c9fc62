"""``holysse demo``: an answer from an embedded fake server that cuts the
connection in several ways, and the proof that the text received is the
answer (a summary on stderr compares it with the server's whole answer).
No key, no network.
"""

from __future__ import annotations

import argparse
from typing import Any

from .. import __version__
from ..client import Client
from ..exceptions import HolySSEError
from ..retry import RetryPolicy
from ..transport import Timeout
from .common import ms, parse_duration, positive
from .console import Console, cli_words, show_event
from .registry import register

__all__ = ["demo", "demo_body"]


def _add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--resume", default="auto", choices=("auto", "cursor", "prefill", "replay", "none"),
        help="how the cut stream continues (default: auto)",
    )
    parser.add_argument("--dialect", default="openai-chat", choices=tuple(_DEMO_MODELS),
                        help="the API shape the fake server speaks (default: openai-chat)")
    parser.add_argument("--chars", type=positive, default=1800, metavar="N", help="length of the answer in characters")
    parser.add_argument("--token-delay", type=parse_duration, default=0.003, metavar="DURATION",
                        help="delay between tokens, such as 5ms (default: 3ms)")
    parser.add_argument("--quiet", action="store_true", help="do not print the answer, only the summary")


@register("demo", "stream from an embedded fake server through cuts (no key, no network)", _add_demo_arguments)
def demo(args: argparse.Namespace, console: Console | None = None) -> int:
    """Stream from an embedded :class:`FakeServer` through scripted faults."""
    from ..testing import FakeServer
    from ..testing.scenarios import demo_faults

    console = console or Console()
    # Anthropic's API sends no SSE ids, so its demo resumes by prefill unless a cursor is asked for.
    ids = args.resume == "cursor" or (args.resume != "prefill" and args.dialect != "anthropic")
    with FakeServer(answer_chars=args.chars, token_delay=args.token_delay, ids=ids, prefill=True) as server:
        body = demo_body(args.dialect)
        faults = demo_faults(server, body, dialect=args.dialect)
        server.set_faults([fault for _, fault in faults])
        console.status(f"holysse {__version__} demo: {server.url}, resume={args.resume}, faults: "
                       + ", ".join(name for name, _ in faults))
        provider = "vllm" if args.dialect == "openai-chat" else None
        client = Client(
            api_key="demo-key", base_url=server.url, dialect=args.dialect, resume=args.resume,
            timeout=Timeout(connect=2, read=0.75), retry=RetryPolicy(backoff_initial=0.1, backoff_max=1.0),
            provider=provider,
        )
        with client:
            return _run_demo(client, server, body, args, console)


#: The model each demo dialect names (priced in :mod:`holysse.pricing`).
_DEMO_MODELS = {"openai-chat": "gpt-4.1", "anthropic": "claude-sonnet-4-5", "openai-responses": "gpt-4.1"}


def demo_body(dialect: str) -> dict[str, Any]:
    prompt = "Explain, in a few paragraphs, why streams get cut and how a client should resume them."
    key = "input" if dialect == "openai-responses" else "messages"
    value: Any = prompt if key == "input" else [{"role": "user", "content": prompt}]
    body: dict[str, Any] = {"model": _DEMO_MODELS[dialect], key: value, "seed": 7, "temperature": 0.7}
    if dialect == "openai-responses":
        body["background"] = True
    if dialect == "anthropic":
        body["max_tokens"] = 4096
    return body


def _run_demo(client: Client, server: Any, body: dict[str, Any], args: argparse.Namespace, console: Console) -> int:
    stream = client.stream(**body)
    failure: HolySSEError | None = None
    try:
        for event in stream:
            if not show_event(console, event) and not args.quiet:
                console.text(event.text)
    except HolySSEError as exc:
        failure = exc
    expected = server.expected_text(body, dialect=args.dialect)
    _summary(console, stream, expected, failure)
    if failure is not None:
        return 0 if args.resume == "none" else 1
    return 0 if stream.text == expected else 1


def _summary(console: Console, stream: Any, expected: str, failure: HolySSEError | None) -> None:
    m = stream.metrics
    console.status("")
    console.status("── summary " + "─" * 40)
    if failure is not None:
        console.status(f"stream failed: {type(failure).__name__}: {cli_words(str(failure))}")
        console.status(f"partial answer kept: {len(failure.partial)} characters")
    per_strategy = ", ".join(f"{k}: {v}" for k, v in m.reconnects.items()) or "none"
    console.status(f"reconnects      {m.total_reconnects} ({per_strategy})")
    console.status(f"wasted tokens   {m.wasted_output_tokens} re-sent and dropped ({m.resent_chars} characters)")
    console.status(f"TTFT            {ms(m.ttft)}")
    tps = m.tokens_per_second
    console.status(f"tokens/s        {'-' if tps is None else f'{tps:.0f}'}")
    if m.cost is not None:
        console.status(f"cost            {m.cost}")
        if hasattr(m.cost, "breakdown"):
            console.status(f"                {m.cost.breakdown()}")
    same = stream.text == expected
    console.status(f"received text   {len(stream.text)} characters; identical to the server's full answer "
                   f"({len(expected)} characters): {'yes' if same else 'NO'}")
