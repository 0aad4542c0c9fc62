"""SSE decoding cost: holysse's ``SSEDecoder`` vs sseclient-py alone, same bytes.

Prints microseconds per event (best of ``--repeat``) for holysse.wire.SSEDecoder
(WHATWG-exact framing + sseclient-py field parsing) and for sseclient-py on its
own (``SSEClient(iter(chunks)).events()``), with the ratio, for:

- OpenAI chat-completion chunks (``data: {json ~200 bytes}``), fed 64 KiB at a
  time (a fast proxy coalescing events) and one event per feed (what LLM
  servers send);
- Anthropic-style named events (``event:`` + ``data:``), 64 KiB feeds;

then the time to decode one 4 MB event fed in 1 KiB chunks, shaped as 1 KiB
data lines, 100-byte data lines, and one giant line (sseclient-py alone is
quadratic there: it concatenates ``bytes`` per line and ``str`` per data line).

Run: ``python benchmarks/wire.py [--events N] [--repeat R]`` (about 10 s).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Callable

import sseclient

from holysse.wire import SSEDecoder

OPENAI_CHUNK = {
    "id": "chatcmpl-bench",
    "object": "chat.completion.chunk",
    "created": 1700000000,
    "model": "gpt-4.1",
    "choices": [{"index": 0, "delta": {"content": "tok "}, "finish_reason": None}],
}


def openai_events(n: int) -> list[bytes]:
    events = []
    for i in range(n):
        choice = {"index": 0, "delta": {"content": f"t{i % 97} "}, "finish_reason": None}
        chunk = dict(OPENAI_CHUNK, choices=[choice])
        events.append(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    return events


def anthropic_events(n: int) -> list[bytes]:
    events = []
    for i in range(n):
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f"t{i % 97} "}}
        events.append(b"event: content_block_delta\ndata: " + json.dumps(delta).encode() + b"\n\n")
    return events


def cut(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def run_holysse(chunks: list[bytes]) -> list[str]:
    decoder = SSEDecoder()
    data = [event.data for chunk in chunks for event in decoder.feed(chunk)]
    decoder.close()
    return data


def run_sseclient(chunks: list[bytes]) -> list[str]:
    return [event.data for event in sseclient.SSEClient(iter(chunks)).events()]


def best_of(repeat: int, func: Callable[[list[bytes]], list[str]], chunks: list[bytes]) -> tuple[float, list[str]]:
    best, result = float("inf"), []
    for _ in range(repeat):
        start = time.perf_counter()
        result = func(chunks)
        best = min(best, time.perf_counter() - start)
    return best, result


def compare(label: str, chunks: list[bytes], n: int, repeat: int) -> None:
    ours, ours_data = best_of(repeat, run_holysse, chunks)
    theirs, their_data = best_of(repeat, run_sseclient, chunks)
    if len(ours_data) != n or ours_data != their_data:
        raise SystemExit(f"{label}: decoders disagree ({len(ours_data)} vs {len(their_data)} events)")
    us, us_alone = ours / n * 1e6, theirs / n * 1e6
    print(
        f"  {label:<34} holysse {us:5.2f} µs/event   sseclient-py alone {us_alone:5.2f}"
        f"   ratio {us / us_alone:4.2f}x"
    )


def big_event(shape: str, size: int) -> bytes:
    if shape == "1 KiB data lines":
        return (b"data: " + b"x" * 1017 + b"\n") * (size // 1024) + b"\n"
    if shape == "100-byte data lines":
        return (b"data: " + b"x" * 93 + b"\n") * (size // 100) + b"\n"
    return b"data: " + b"y" * size + b"\n\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n, repeat = args.events, args.repeat

    openai = openai_events(n)
    anthropic = anthropic_events(n)
    print(f"{n} events, best of {repeat}")
    print(f"OpenAI chunks of {len(openai[0])} bytes, Anthropic deltas of {len(anthropic[0])} bytes:")
    compare("OpenAI chunks, 64 KiB feeds", cut(b"".join(openai), 65536), n, repeat)
    compare("OpenAI chunks, one event per feed", openai, n, repeat)
    compare("Anthropic deltas, 64 KiB feeds", cut(b"".join(anthropic), 65536), n, repeat)

    print("One 4 MB event fed in 1 KiB chunks:")
    for shape in ("1 KiB data lines", "100-byte data lines", "one giant line"):
        chunks = cut(big_event(shape, 4 << 20), 1024)
        ours, ours_data = best_of(3, run_holysse, chunks)
        theirs, their_data = best_of(1, run_sseclient, chunks)
        if ours_data != their_data:
            raise SystemExit(f"{shape}: decoders disagree")
        print(f"  {shape:<34} holysse {ours * 1e3:6.1f} ms   sseclient-py alone {theirs * 1e3:7.1f} ms")


if __name__ == "__main__":
    main()
