"""Memory a stream retains per delivered event.

Streams an answer of N one-character chat-completion events (default
1,000,000) through :class:`holysse.testing.MemoryTransport` (no sockets: the
figure is holysse's own) and prints, once the stream ended with the
``Stream`` still alive, the bytes it retains (``tracemalloc``) next to the
answer's text size. The goal: at most 2x the text.

Run: ``python benchmarks/memory.py [--events N]``.
"""

from __future__ import annotations

import argparse
import json
import tracemalloc
from typing import Iterator

import holysse
from holysse.testing import MemoryTransport, Reply


def body(events: int, per_read: int = 100) -> Iterator[bytes]:
    role = {"id": "chatcmpl-m", "choices": [{"index": 0, "delta": {"role": "assistant"}}]}
    yield b"data: " + json.dumps(role).encode() + b"\n\n"
    one = b"data: " + json.dumps({"id": "chatcmpl-m", "choices": [{"index": 0, "delta": {"content": "x"}}]}).encode()
    block = (one + b"\n\n") * per_read
    for _ in range(events // per_read):
        yield block
    end = {"id": "chatcmpl-m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    yield b"data: " + json.dumps(end).encode() + b"\n\ndata: [DONE]\n\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    transport = MemoryTransport([Reply(body(args.events))])
    client = holysse.Client(api_key="hs_" + "b" * 32, base_url="https://bench.invalid/v1", transport=transport)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    stream = client.stream(model="m", messages=[{"role": "user", "content": "hi"}])
    count = 0
    for event in stream:
        count += len(event.text)
    retained = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    text = len(stream.text.encode())
    print(f"{args.events:,} one-character events: text {text:,} bytes, retained {retained:,} bytes "
          f"({retained / text:.2f}x the text, {retained / args.events:.2f} bytes per event)")
    assert count == len(stream.text) == args.events
    client.close()


if __name__ == "__main__":
    main()
