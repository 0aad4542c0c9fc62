"""64 threads share one Client, each streaming its own answer through random
faults (FIN, RST, stall, 429, 500 at random offsets, resumed by cursor,
prefill or replay): every stream gets exactly its own answer, nothing hangs
(every join is bounded), and readers on other threads only ever see
prefixes of the final text."""

from __future__ import annotations

import threading
from typing import Any

import holysse
from holysse.testing import FakeServer, RandomFaults

from .conftest import Sleeps

THREADS = 64
READERS = 16
JOIN = 60.0


def body_for(i: int) -> dict[str, Any]:
    question = f"Question {i}: tell me about thread {i}."
    return {"model": "fake-1", "messages": [{"role": "user", "content": question}], "seed": i, "user": f"u{i}"}


def test_64_threads_share_one_client_through_random_faults() -> None:
    with FakeServer(answer_chars=600) as server:
        faults = RandomFaults(7, rate=0.75)
        server.set_faults(faults)
        client = holysse.Client(
            api_key="hs_" + "c" * 32, base_url=server.url, provider="vllm",
            timeout=holysse.Timeout(connect=10, read=2),  # a stall costs 2 s; load must not
            retry=holysse.RetryPolicy(max_attempts=8, backoff_initial=0.01), sleep=Sleeps(),
        )
        streams = [client.stream(resume=("auto", "prefill", "replay")[i % 3], **body_for(i)) for i in range(THREADS)]
        received: dict[int, str] = {}
        errors: list[BaseException] = []
        seen: dict[int, list[str]] = {i: [] for i in range(READERS)}
        followed: dict[int, str] = {}

        def consume(i: int) -> None:
            try:
                received[i] = "".join(event.text for event in streams[i])
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

        def poll(i: int) -> None:
            accumulator = streams[i].accumulator
            while not accumulator.wait(0.01):
                seen[i].append(accumulator.snapshot().text)
            seen[i].append(accumulator.snapshot().text)

        def follow(i: int) -> None:
            followed[i] = "".join(piece for piece in streams[i].accumulator.follow(timeout=JOIN)
                                  if isinstance(piece, str))

        threads = [threading.Thread(target=consume, args=(i,)) for i in range(THREADS)]
        threads += [threading.Thread(target=poll, args=(i,)) for i in range(READERS)]
        threads += [threading.Thread(target=follow, args=(i,)) for i in range(READERS, 2 * READERS)]
        for thread in threads[THREADS:]:
            thread.start()
        for thread in threads[:THREADS]:
            thread.start()
        for thread in threads:
            thread.join(JOIN)
        hung = [t.name for t in threads if t.is_alive()]
        client.close()
        expected = {i: server.expected_text(body_for(i)) for i in range(THREADS)}

    assert hung == [] and errors == []
    assert received == expected  # each its own answer: no gap, no duplicate, no cross-talk
    assert len(set(expected.values())) == THREADS
    assert all(streams[i].text == expected[i] and streams[i].accumulator.resets == 0 for i in range(THREADS))
    for i, texts in seen.items():
        assert texts[-1] == expected[i] and all(expected[i].startswith(text) for text in texts)
        assert all(len(a) <= len(b) for a, b in zip(texts, texts[1:]))  # never taken back
    assert all(followed[i] == expected[i] for i in range(READERS, 2 * READERS))
    assert faults.total >= THREADS and len(faults.injected) == 5  # the faults really happened, of every kind
    assert sum(s.metrics.total_reconnects for s in streams) >= faults.total  # each fault cost a reconnect


def test_close_from_the_first_reader_while_another_thread_reads_does_not_raise() -> None:
    """A stream handed over to another thread (the relay's pump does that),
    closed from the thread that started reading it: the read in the other
    thread ends with StreamClosed, and close() itself raises nothing."""
    with FakeServer(answer_chars=20_000, token_delay=0.005) as server:
        client = holysse.Client(api_key="hs_" + "h" * 32, base_url=server.url)
        stream = client.stream(**body_for(1))
        events = iter(stream)
        assert next(events) is not None  # this thread is the stream's reader
        reading = threading.Event()
        raised: list[BaseException] = []

        def go_on() -> None:
            try:
                for event in events:
                    if event.text:
                        reading.set()
            except BaseException as exc:  # noqa: BLE001 - checked below
                raised.append(exc)

        thread = threading.Thread(target=go_on)
        thread.start()
        assert reading.wait(5)
        stream.close()  # from the first reader, while the generator runs in the other thread
        thread.join(5)
        client.close()
    assert not thread.is_alive() and len(raised) == 1 and isinstance(raised[0], holysse.StreamClosed)
