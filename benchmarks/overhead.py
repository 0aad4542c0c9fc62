"""CPU cost per event of reading an OpenAI-style stream, holysse vs baselines.

Streams 50,000 small chat-completion chunks from a loopback server and prints
the client thread's CPU microseconds per event (``time.thread_time``, so the
server thread's work is not counted) for:

- floor: requests + ``raw.read1`` + split on blank lines + ``json.loads``
- sseclient-py alone (``SSEClient(response.iter_content(...)).events()`` + ``json.loads``)
- holysse, the full path (decoder, dialect, resume bookkeeping, accumulator, events)
- holysse.openai, the drop-in (the full path plus a ``ChatCompletionChunk`` per
  event: openai's own pydantic type when openai is installed)
- the openai SDK it replaces, when installed

with ratios to the floor. Two body shapes: one HTTP chunk per event (what LLM
servers send) and 64 KiB chunks (a fast proxy coalescing events).

Run: ``python benchmarks/overhead.py [--events N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import socket
import threading
import time
from typing import Callable

import requests

import holysse

MODEL_CHUNK = {
    "id": "chatcmpl-bench",
    "object": "chat.completion.chunk",
    "created": 1700000000,
    "model": "gpt-4.1",
    "choices": [{"index": 0, "delta": {"content": "tok "}, "finish_reason": None}],
}


def build_events(n: int) -> list[bytes]:
    events = []
    for i in range(n):
        chunk = dict(MODEL_CHUNK)
        chunk["choices"] = [{"index": 0, "delta": {"content": f"t{i % 97} "}, "finish_reason": None}]
        events.append(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n")
    final = dict(MODEL_CHUNK, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}])
    events.append(b"data: " + json.dumps(final).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def chunked_body(events: list[bytes], per_event: bool) -> bytes:
    if per_event:
        pieces = events
    else:
        blob = b"".join(events)
        pieces = [blob[i:i + 65536] for i in range(0, len(blob), 65536)]
    out = bytearray()
    for piece in pieces:
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    out += b"0\r\n\r\n"
    return bytes(out)


class StaticServer:
    """Serves one prebuilt chunked SSE body to every request, on a thread."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> StaticServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.sock.close()
        self.thread.join(5)

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            got = conn.recv(65536)
            if not got:
                return
            data += got
        head, _, rest = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        while len(rest) < length:
            rest += conn.recv(65536)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n" + self.body
        )


def run_floor(url: str) -> int:
    response = requests.post(url + "/chat/completions", json={"stream": True}, stream=True)
    count = 0
    buffer = b""
    raw = response.raw
    while True:
        chunk = raw.read1(65536, decode_content=True)
        if not chunk:
            break
        buffer += chunk
        *blocks, buffer = buffer.split(b"\n\n")
        for block in blocks:
            data = block[6:]
            if data == b"[DONE]":
                continue
            json.loads(data)
            count += 1
    response.close()
    return count


def run_sseclient(url: str) -> int:
    import sseclient

    response = requests.post(url + "/chat/completions", json={"stream": True}, stream=True)
    count = 0
    for event in sseclient.SSEClient(response.iter_content(chunk_size=None)).events():
        if event.data != "[DONE]":
            json.loads(event.data)
            count += 1
    response.close()
    return count


def make_holysse(url: str) -> Callable[[str], int]:
    client = holysse.Client(api_key="bench", base_url=url)

    def run(_: str) -> int:
        count = 0
        for _event in client.stream(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}]):
            count += 1
        return count

    return run


def make_sdk(module: str, url: str) -> Callable[[str], int] | None:
    """A runner through ``module``'s ``OpenAI`` client: ``"openai"`` (the
    SDK, ``None`` when it is not installed) or ``"holysse.openai"``."""
    try:
        sdk = importlib.import_module(module)
    except ImportError:
        return None
    client = sdk.OpenAI(api_key="bench", base_url=url, max_retries=0)

    def run(_: str) -> int:
        count = 0
        stream = client.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        for _chunk in stream:
            count += 1
        return count

    return run


def measure(fn: Callable[[str], int], url: str, events: int) -> float:
    """Client-thread CPU µs per event for one run."""
    start = time.thread_time()
    count = fn(url)
    elapsed = time.thread_time() - start
    if count < events:
        raise SystemExit(f"{fn!r} saw {count} events, expected {events}")
    return elapsed / events * 1e6


def best_of(runners: list[tuple[str, Callable[[str], int]]], url: str, events: int, repeat: int) -> dict[str, float]:
    """Best-of-``repeat`` per runner, the runs interleaved so that load
    changes on a noisy machine hit every runner alike."""
    best = {name: float("inf") for name, _ in runners}
    for _ in range(repeat):
        for name, fn in runners:
            best[name] = min(best[name], measure(fn, url, events))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    events = build_events(args.events)
    print(f"{args.events} events of ~{len(events[0])} bytes; client-thread CPU µs per event (best of {args.repeat})")
    for per_event in (True, False):
        shape = "one HTTP chunk per event" if per_event else "64 KiB HTTP chunks"
        with StaticServer(chunked_body(events, per_event)) as server:
            runners: list[tuple[str, Callable[[str], int] | None]] = [
                ("floor (requests+read1+split+json)", run_floor),
                ("sseclient-py alone", run_sseclient),
                ("holysse full path", make_holysse(server.url)),
                ("holysse.openai drop-in", make_sdk("holysse.openai", server.url)),
                ("openai SDK", make_sdk("openai", server.url)),
            ]
            print(f"\n{shape}:")
            present = [(name, fn) for name, fn in runners if fn is not None]
            best = best_of(present, server.url, args.events, args.repeat)
            floor = best[present[0][0]]
            for name, fn in runners:
                if fn is None:
                    print(f"  {name:<36} not installed")
                    continue
                us = best[name]
                print(f"  {name:<36} {us:7.2f} µs/event   {us / floor:5.2f}x floor")
            if "openai SDK" in best:
                ratio = best["openai SDK"] / best["holysse.openai drop-in"]
                print(f"  the drop-in costs 1/{ratio:.1f} of the openai SDK's CPU per event")


if __name__ == "__main__":
    main()
