"""The accumulator: fed events and threads, never sockets."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from holysse import (
    Accumulator,
    Finished,
    Reconnecting,
    Reset,
    Snapshot,
    TextDelta,
    ThinkingDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from holysse.exceptions import StreamInterrupted

JOIN = 10.0  # seconds: every join and wait is bounded


def run_threads(targets: list[Any]) -> None:
    threads = [threading.Thread(target=t) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN)
    assert not any(t.is_alive() for t in threads)


def test_collects_every_kind_of_event() -> None:
    acc = Accumulator()
    for event in [
        TextDelta("Hel"), ThinkingDelta("hmm"), TextDelta("lo"), Reconnecting(1, 0.5, "cut"),
        ToolCallDelta(0, "call_1", "lookup", '{"q": '), ToolCallDelta(1, "call_2", "other", "{}"),
        ToolCallDelta(0, None, None, '"x"}'), Usage(input_tokens=5, output_tokens=7), Finished("tool_calls"),
    ]:
        acc.add(event)
    assert acc.text == "Hello" and len(acc) == 5 and acc.thinking == "hmm"
    assert acc.tool_calls == [ToolCall(0, "call_1", "lookup", '{"q": "x"}'), ToolCall(1, "call_2", "other", "{}")]
    assert acc.tool_calls[0].parsed_arguments() == {"q": "x"}
    assert acc.usage == Usage(input_tokens=5, output_tokens=7) and acc.finish_reason == "tool_calls"
    assert not acc.done
    acc.finish()
    snap = acc.snapshot()
    assert snap == Snapshot("Hello", "hmm", tuple(acc.tool_calls), acc.usage, "tool_calls", True, None, 0)
    assert snap.complete


def test_reset_takes_everything_back() -> None:
    acc = Accumulator()
    for event in (TextDelta("old"), ThinkingDelta("t"), ToolCallDelta(0, "a", "f", "{"), Finished("stop")):
        acc.add(event)
    acc.add(Reset("old", "replay diverged"))
    assert (acc.text, acc.thinking, acc.tool_calls, acc.finish_reason, acc.resets) == ("", "", [], None, 1)
    acc.add(TextDelta("new"))
    assert acc.text == "new" and len(acc) == 3


def test_snapshots_never_change() -> None:
    acc = Accumulator()
    acc.add(TextDelta("a"))
    snap = acc.snapshot()
    acc.add(TextDelta("b"))
    acc.add(ToolCallDelta(0, "id", "f", "{}"))
    assert snap.text == "a" and snap.tool_calls == () and acc.text == "ab"
    with pytest.raises(AttributeError):
        snap.text = "x"  # type: ignore[misc]


def test_finish_only_counts_once_and_keeps_the_error() -> None:
    acc = Accumulator()
    error = StreamInterrupted("cut", partial="")
    acc.finish(error)
    acc.finish(None)
    assert acc.done and acc.error is error and not acc.snapshot().complete


def test_wait_is_bounded_and_wakes_on_finish() -> None:
    acc = Accumulator()
    assert acc.wait(0.01) is False
    woke = threading.Event()

    def waiter() -> None:
        if acc.wait(JOIN):
            woke.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    acc.add(TextDelta("x"))
    assert not woke.wait(0.05)  # text alone does not end the wait
    acc.finish()
    thread.join(JOIN)
    assert woke.is_set()


def test_eight_writer_threads_lose_nothing() -> None:
    acc = Accumulator()
    pieces = {t: [f"<{t}:{i}>" for i in range(2000)] for t in range(8)}

    def writer(t: int) -> Any:
        return lambda: [acc.add(TextDelta(p)) for p in pieces[t]]

    run_threads([writer(t) for t in range(8)])
    text = acc.text
    assert len(acc) == len(text) == sum(len(p) for ps in pieces.values() for p in ps)
    for t, ps in pieces.items():  # each thread's pieces all present, in its own order
        positions = [text.index(p) for p in ps]
        assert positions == sorted(positions)


def test_eight_reader_threads_only_ever_see_prefixes() -> None:
    acc = Accumulator()
    final = "".join(f"{i:05d}|" for i in range(3000))
    seen: dict[int, list[str]] = {i: [] for i in range(7)}
    started = threading.Barrier(8, timeout=JOIN)

    def writer() -> None:
        started.wait()
        for i in range(0, len(final), 6):
            acc.add(TextDelta(final[i : i + 6]))
        acc.finish()

    def reader(r: int) -> Any:
        def read() -> None:
            started.wait()
            while True:
                snap = acc.snapshot() if r % 2 else None
                text = snap.text if snap else acc.text
                seen[r].append(text)
                if (snap and snap.done) or (not snap and acc.done and acc.text == text):
                    return

        return read

    run_threads([writer] + [reader(r) for r in range(7)])
    for texts in seen.values():
        assert texts[-1] == final
        assert all(final.startswith(t) for t in texts)
        assert all(len(a) <= len(b) for a, b in zip(texts, texts[1:]))  # never goes back


def test_follow_from_other_threads_yields_the_whole_text_in_order() -> None:
    acc = Accumulator()
    followed: dict[int, str] = {}
    ready = threading.Barrier(5, timeout=JOIN)

    def follower(n: int) -> Any:
        def run() -> None:
            ready.wait()
            followed[n] = "".join(str(piece) for piece in acc.follow(timeout=JOIN))

        return run

    def writer() -> None:
        ready.wait()
        for i in range(5000):
            acc.add(TextDelta(f"{i},"))
        acc.finish()

    run_threads([writer] + [follower(n) for n in range(4)])
    assert set(followed.values()) == {acc.text} and acc.text.endswith("4999,")


def test_follow_reports_a_reset_then_the_new_text() -> None:
    acc = Accumulator()
    acc.add(TextDelta("first"))
    follow = acc.follow(timeout=JOIN)
    assert next(follow) == "first"
    acc.add(Reset("first", "diverged"))
    acc.add(TextDelta("second"))
    acc.finish()
    rest = list(follow)
    assert isinstance(rest[0], Reset) and rest[1:] == ["second"]


def test_follow_raises_the_stream_error_after_the_text() -> None:
    acc = Accumulator()
    acc.add(TextDelta("partial"))
    acc.finish(StreamInterrupted("cut", partial="partial"))
    follow = acc.follow()
    assert next(follow) == "partial"
    with pytest.raises(StreamInterrupted):
        next(follow)


def test_follow_times_out_when_nothing_comes() -> None:
    with pytest.raises(TimeoutError):
        next(Accumulator().follow(timeout=0.01))


def test_callbacks_run_outside_the_lock() -> None:
    """A callback may read the accumulator (no deadlock), and a callback that
    blocks does not block readers in other threads."""
    in_callback = threading.Event()
    release = threading.Event()
    texts: list[str] = []
    events: list[Any] = []

    def on_text(piece: str) -> None:
        texts.append(acc.text)  # re-entrant read
        if piece == "block":
            in_callback.set()
            release.wait(JOIN)

    acc = Accumulator(on_text=on_text, on_event=events.append)
    acc.add(TextDelta("a"))
    acc.add(Usage(output_tokens=1))
    writer = threading.Thread(target=acc.add, args=(TextDelta("block"),))
    writer.start()
    assert in_callback.wait(JOIN)
    assert acc.snapshot().text == "ablock"  # the lock is free while the callback blocks
    release.set()
    writer.join(JOIN)
    assert texts == ["a", "ablock"] and [type(e) for e in events] == [TextDelta, Usage, TextDelta]


def test_text_is_joined_lazily_and_cached() -> None:
    acc = Accumulator()
    for i in range(100):
        acc.add(TextDelta(str(i % 10)))
    first = acc.text
    assert acc.text is first  # no new join without new text
    acc.add(TextDelta("!"))
    assert acc.text == first + "!"
