"""The partial answer, shared safely between threads: :class:`Accumulator`.

The stream that owns an accumulator :meth:`~Accumulator.add`\\ s every event it
yields; any thread may read it at any moment. Appends are O(1) (pieces go
into a list) and the text is joined lazily, once per read after new pieces.
Readers get immutable :class:`Snapshot`\\ s, never the live lists. User
callbacks (``on_text``, ``on_event``) run after the lock is released, so a
slow or re-entrant callback cannot block other readers.

Another thread can :meth:`~Accumulator.wait` for the end of the stream or
:meth:`~Accumulator.follow` the text as it arrives. No I/O happens here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from .events import Event, Finished, Reset, TextDelta, ThinkingDelta, ToolCall, ToolCallDelta, Usage
from .exceptions import HolySSEError, StreamClosed, WaitTimeout

__all__ = ["Accumulator", "Snapshot"]


@dataclass(frozen=True)
class Snapshot:
    """The answer at one moment; it never changes.

    :param text: the answer text.
    :param thinking: the reasoning text, kept apart from the answer.
    :param tool_calls: tool calls assembled so far, by index.
    :param usage: the last usage report, or ``None``.
    :param finish_reason: why the model stopped, once it did (a portable
        reason, :attr:`Finished.reason`).
    :param done: whether the stream ended (completely or with an error).
    :param error: the error that ended the stream, or ``None``.
    :param resets: how many times the text was taken back (:class:`Reset`).
    :param raw_finish_reason: the provider's own word for it.
    """

    text: str = ""
    thinking: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage | None = None
    finish_reason: str | None = None
    done: bool = False
    error: BaseException | None = None
    resets: int = 0
    raw_finish_reason: str | None = None

    @property
    def complete(self) -> bool:
        """The stream ended without an error."""
        return self.done and self.error is None


class _ToolCallParts:
    __slots__ = ("id", "name", "arguments")

    def __init__(self) -> None:
        self.id: str | None = None
        self.name: str | None = None
        self.arguments: list[str] = []

    def freeze(self, index: int) -> ToolCall:
        arguments = "".join(self.arguments)
        self.arguments = [arguments]
        return ToolCall(index, self.id, self.name, arguments)


class _Text:
    """An append-only text: O(1) appends; every :data:`_RUN` pieces are
    joined into one block, so memory stays close to the text's own size
    however small the pieces. Followers address it by character position."""

    __slots__ = ("blocks", "pieces", "chars", "_block_chars")

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.pieces: list[str] = []
        self.chars = 0
        self._block_chars = 0

    def append(self, piece: str) -> None:
        pieces = self.pieces
        pieces.append(piece)
        self.chars += len(piece)
        if len(pieces) >= _RUN:
            self._fold()

    def _fold(self) -> None:
        block = "".join(self.pieces)
        self.pieces = []
        blocks = self.blocks
        blocks.append(block)
        self._block_chars += len(block)
        # Merge equal-sized neighbours: O(log n) blocks, each character copied O(log n) times.
        while len(blocks) > 1 and len(blocks[-2]) <= 2 * len(blocks[-1]):
            last = blocks.pop()
            blocks[-1] += last

    def value(self) -> str:
        if self.pieces:
            self._fold()
        if len(self.blocks) > 1:
            self.blocks = ["".join(self.blocks)]
        return self.blocks[0] if self.blocks else ""

    def since(self, position: int) -> str:
        """The text from character ``position`` on."""
        if position >= self.chars:
            return ""
        tail = "".join(self.pieces)
        need = self.chars - position
        if need <= len(tail):
            return tail[len(tail) - need:]
        parts = [tail]
        have = len(tail)
        for block in reversed(self.blocks):
            parts.append(block)
            have += len(block)
            if have >= need:
                break
        text = "".join(reversed(parts))
        return text[len(text) - need:]


#: Pieces of text kept apart before they are joined into a block.
_RUN = 256


class Accumulator:
    """The thread-safe partial answer of one stream.

    :param on_text: called with each piece of answer text, after it was added.
    :param on_event: called with every event, after it was added.

    Callbacks run in the thread that reads the stream, outside the lock; an
    exception they raise ends the stream like any error of the consumer.
    """

    def __init__(
        self,
        *,
        on_text: Callable[[str], None] | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._on_text = on_text
        self._on_event = on_event
        self._text = _Text()
        self._thinking = _Text()
        self._tools: dict[int, _ToolCallParts] = {}
        self._usage: Usage | None = None
        self._finished: Finished | None = None
        self._done = False
        self._error: BaseException | None = None
        self._resets = 0
        self._waiters = 0  # threads in wait()/follow(): notify only when someone listens

    def __repr__(self) -> str:
        state = "done" if self._done else "open"
        return f"<holysse.Accumulator {state} chars={self._text.chars} resets={self._resets}>"

    def __len__(self) -> int:
        """Characters of answer text so far."""
        return self._text.chars

    # -- writing (the stream's thread) ----------------------------------------

    def add(self, event: Event) -> None:
        """Add one event the stream yields. O(1) for text."""
        kind = type(event)
        with self._lock:
            if kind is TextDelta:
                self._text.append(event.text)
            elif kind is ThinkingDelta:
                self._thinking.append(event.thinking)  # type: ignore[union-attr]
            elif kind is ToolCallDelta:
                self._add_tool_delta(event)  # type: ignore[arg-type]
            elif kind is Usage:
                self._usage = event  # type: ignore[assignment]
            elif kind is Finished:
                self._finished = event  # type: ignore[assignment]
            elif kind is Reset:
                self._reset_locked()
            if self._waiters:
                self._changed.notify_all()
        if self._on_event is not None:
            self._on_event(event)
        if self._on_text is not None and kind is TextDelta:
            self._on_text(event.text)

    def restore(self, text: str, thinking: str, tool_calls: Iterable[ToolCall], finish_reason: str | None) -> None:
        """Start from an answer already delivered elsewhere (a
        :class:`~holysse.Checkpoint`): no callback runs for it."""
        with self._lock:
            if text:
                self._text.append(text)
            if thinking:
                self._thinking.append(thinking)
            for call in tool_calls:
                self._add_tool_delta(ToolCallDelta(call.index, call.id, call.name, call.arguments))
            self._finish_reason = finish_reason

    def _add_tool_delta(self, delta: ToolCallDelta) -> None:
        parts = self._tools.get(delta.index)
        if parts is None:
            parts = self._tools[delta.index] = _ToolCallParts()
        if delta.id:
            parts.id = delta.id
        if delta.name:
            parts.name = delta.name
        if delta.arguments:
            parts.arguments.append(delta.arguments)

    def _reset_locked(self) -> None:
        self._text = _Text()
        self._thinking = _Text()
        self._tools = {}
        self._finished = None
        self._resets += 1

    def finish(self, error: BaseException | None = None) -> None:
        """Mark the stream as ended (with ``error`` if it failed) and wake
        every waiter and follower. Only the first call counts.

        An error outside the holysse tree (a Ctrl-C, a callback that raised)
        is kept as a :class:`~holysse.StreamClosed` caused by it: other
        threads (:meth:`follow`, ``stream.final()``) then never end as if the
        answer were complete, and never raise a ``KeyboardInterrupt`` of their own."""
        if error is not None and not isinstance(error, HolySSEError):
            wrapped = StreamClosed(
                f"The stream stopped after {len(self)} characters: the thread reading it raised "
                f"{type(error).__name__}" + (f" ({error})" if str(error) else "")
                + "; the answer is incomplete. The partial answer is in exc.partial.",
                partial=self.text,
            )
            wrapped.__cause__ = error
            error = wrapped
        with self._lock:
            if self._done:
                return
            self._done = True
            self._error = error
            self._changed.notify_all()  # always: finish() is rare

    # -- reading (any thread) --------------------------------------------------

    @property
    def text(self) -> str:
        """The answer text so far."""
        with self._lock:
            return self._text.value()

    @property
    def thinking(self) -> str:
        """The reasoning text so far."""
        with self._lock:
            return self._thinking.value()

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The tool calls assembled so far, in index order."""
        with self._lock:
            return self._tool_calls_locked()

    def _tool_calls_locked(self) -> list[ToolCall]:
        return [self._tools[index].freeze(index) for index in sorted(self._tools)]

    @property
    def usage(self) -> Usage | None:
        """The last usage report."""
        return self._usage

    @property
    def finish_reason(self) -> str | None:
        """Why the model stopped, once it did: a portable reason
        (:attr:`Finished.reason`)."""
        finished = self._finished
        return None if finished is None else finished.reason

    @property
    def finished(self) -> Finished | None:
        """The :class:`Finished` event (portable and raw reason), once it came."""
        return self._finished

    @property
    def done(self) -> bool:
        """Whether the stream ended (completely or with an error)."""
        return self._done

    @property
    def error(self) -> BaseException | None:
        """The error that ended the stream, or ``None``."""
        return self._error

    @property
    def resets(self) -> int:
        """How many times the text was taken back by a :class:`Reset`."""
        return self._resets

    def snapshot(self) -> Snapshot:
        """Everything at this moment, as one consistent immutable value."""
        with self._lock:
            return Snapshot(
                text=self._text.value(),
                thinking=self._thinking.value(),
                tool_calls=tuple(self._tool_calls_locked()),
                usage=self._usage,
                finish_reason=None if self._finished is None else self._finished.reason,
                done=self._done,
                error=self._error,
                resets=self._resets,
                raw_finish_reason=None if self._finished is None else self._finished.raw_reason,
            )

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the stream ended or ``timeout`` seconds passed.

        :returns: whether the stream ended.
        """
        with self._lock:
            self._waiters += 1
            try:
                return self._changed.wait_for(lambda: self._done, timeout)
            finally:
                self._waiters -= 1

    def _news(self, position: int, resets: int | None) -> bool:
        """Whether a follower at ``position`` has something to act on (lock held)."""
        return self._done or self._resets != resets or self._text.chars > position

    def follow(self, timeout: float | None = None) -> Iterator[str | Reset]:
        """Yield the answer text as it arrives, from the start, until the
        stream ends; meant for a thread other than the one reading the stream.

        Yields ``str`` pieces (possibly several appends joined). When the text
        is taken back it yields the :class:`~holysse.events.Reset` and starts
        over from the new text.

        :param timeout: the longest wait for new text, in seconds (``None``:
            no limit).
        :raises WaitTimeout: nothing new arrived within ``timeout``.
        :raises HolySSEError: the error that ended the stream, after the text
            received before it.
        """
        position, resets = 0, None
        while True:
            with self._lock:
                if resets is None:
                    resets = self._resets
                self._waiters += 1
                try:
                    arrived = self._changed.wait_for(lambda: self._news(position, resets), timeout)
                finally:
                    self._waiters -= 1
                if not arrived:
                    raise WaitTimeout(f"No new text within {timeout} s.")
                reset = self._resets != resets
                if reset:
                    resets, position = self._resets, 0
                new = self._text.since(position)
                position = self._text.chars
                done, error = self._done, self._error
            if reset:
                yield Reset("", "the text was taken back; following the new text from its start")
            if new:
                yield new
            if done and not new:
                if isinstance(error, HolySSEError):
                    raise error
                return
