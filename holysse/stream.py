"""One streamed answer: :class:`Stream`.

A :class:`Stream` is what :meth:`~holysse.Client.stream` returns: iterable
once, a context manager, closable from any thread, with the answer so far in
its thread-safe :attr:`~Stream.accumulator` and its figures in
:attr:`~Stream.metrics`. It owns the generator of its
:class:`~holysse._loop.StreamLoop` only weakly, so a consumer that breaks out
of its loop releases the connection at once.
"""

from __future__ import annotations

import threading
import weakref
from typing import Callable, Generator, Iterator

from ._checkpoint import Checkpoint
from . import _hooks
from ._loop import StreamLoop
from .accumulator import Accumulator, Snapshot
from .events import Event, Finished, Reset, ToolCall, Usage
from .exceptions import StreamDiverged, UsageError, WaitTimeout
from .metadata import ResponseInfo
from .metrics import StreamMetrics

__all__ = ["Stream"]


class Stream:
    """One streamed answer. Iterate it once (``for event in stream``) or read
    :attr:`text_stream`; a context manager; :meth:`close` works from any
    thread. The answer so far is in :attr:`text` at every moment."""

    def __init__(self, loop: StreamLoop, accumulator: Accumulator, on_metrics: Callable[[StreamMetrics], None] | None) -> None:
        self._loop = loop
        #: The thread-safe partial answer, shared with other threads.
        self.accumulator = accumulator
        #: Timing, reconnects, waste and cost of this stream.
        self.metrics: StreamMetrics = loop.metrics
        self._on_metrics = on_metrics
        self._lock = threading.Lock()
        self._reader: int | None = None  # the thread that iterates
        self._started = False
        self._closed = False
        # A weak reference: a consumer that breaks out of its loop drops the
        # last reference to the generator, which closes it and its connection.
        self._generator: weakref.ref[Generator[Event, None, None]] | None = None

    def __repr__(self) -> str:
        state = "done" if self.accumulator.done else ("running" if self._started else "new")
        return f"<holysse.Stream {state} chars={len(self.accumulator)} reconnects={self.metrics.total_reconnects}>"

    def __iter__(self) -> Iterator[Event]:
        with self._lock:
            if self._closed and not self._started:
                raise UsageError("This Stream was closed before it was read; call client.stream() again.")
            if self._started:
                raise UsageError(
                    "A Stream can be iterated only once; read stream.text or stream.final() for the answer, "
                    "or call client.stream() again for a new one."
                )
            self._started = True
            self._reader = threading.get_ident()
            generator = self._loop.run(self.accumulator, self._finished)
            hook = _hooks.stream_hook
            if hook is not None:  # holysse.otel.instrument(): one span per stream
                generator = hook(self, self._loop.core.original, self._loop.core.dialect.name, generator)
            self._generator = weakref.ref(generator)
        return generator

    def checkpoint(self) -> Checkpoint:
        """Where the answer stands now, as a JSON-serialisable value that
        ``client.stream(resume_from=checkpoint)`` continues, in this process
        or another one. Safe from any thread, at any moment.

        .. versionadded:: 0.2
        """
        return self._loop.checkpoint()

    def _finished(self) -> None:
        if self._on_metrics is not None:
            self._on_metrics(self.metrics)

    @property
    def text_stream(self) -> Iterator[str]:
        """The answer text only, piece by piece.

        :raises StreamDiverged: when a replay diverged (only event iteration
            can show a :class:`Reset`).
        """
        for event in self:
            if isinstance(event, Reset):
                raise StreamDiverged(
                    "The replayed answer diverged and text_stream cannot take text back; iterate the events "
                    "to handle Reset, or pass a seed.",
                    partial=event.delivered,
                )
            if event.text:
                yield event.text

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the stream and release its connection. Safe from any thread:
        the thread reading the stream gets :class:`StreamClosed` at its next
        step (a read blocked on the network ends at once)."""
        self._loop.close()
        with self._lock:
            self._closed = True
            generator = self._generator() if self._generator is not None else None
            reader = self._reader
        # Only the reading thread may finalize the generator: from another
        # thread it could be resumed there at the same moment. The aborted
        # connection ends it in the reading thread instead.
        if generator is not None and reader == threading.get_ident():
            try:
                generator.close()
            except ValueError:
                # It runs in another thread right now: the stream was handed
                # over (the relay's pump does), or a dead reader's thread id
                # was reused. The abort above ends it there.
                pass

    def display(self, *, interval: float = 0.1) -> None:
        """Read the stream, rendering the answer live in a Jupyter cell
        (Markdown, updated in place, with a status line). Needs IPython; see
        :func:`holysse.notebook.display`.

        :raises HolySSEError: the error that ended the stream, after it was shown.
        """
        from .notebook import display

        display(self, interval=interval)

    def final(self, timeout: float | None = None) -> Snapshot:
        """Block until the stream is done and return the complete result.
        Reads the stream itself if nobody iterates it.

        :raises WaitTimeout: another thread reads the stream and it did not
            finish within ``timeout`` seconds (also a :class:`TimeoutError`).
        :raises HolySSEError: the error that ended the stream.
        """
        with self._lock:
            untouched = not self._started
        if untouched:
            for _ in self:
                pass
        elif not self.accumulator.wait(timeout):
            raise WaitTimeout(f"The stream did not finish within {timeout} s.")
        snapshot = self.accumulator.snapshot()
        if snapshot.error is not None:
            raise snapshot.error
        return snapshot

    @property
    def text(self) -> str:
        """The answer text received so far (all of it once the stream is done)."""
        return self.accumulator.text

    @property
    def thinking(self) -> str:
        """Reasoning text received so far (kept apart from :attr:`text`)."""
        return self.accumulator.thinking

    @property
    def tool_calls(self) -> list[ToolCall]:
        """Tool calls assembled so far."""
        return self.accumulator.tool_calls

    @property
    def usage(self) -> Usage | None:
        """Token usage reported by the server for the final connection."""
        return self.accumulator.usage

    @property
    def finish_reason(self) -> str | None:
        """Why the model stopped, once it did: ``"stop"``, ``"length"``,
        ``"tool_calls"``, ``"content_filter"``, ``"refusal"`` or ``"other"``,
        the same in every dialect (the provider's word is
        :attr:`raw_finish_reason`)."""
        return self.accumulator.finish_reason

    @property
    def raw_finish_reason(self) -> str | None:
        """The provider's own finish or stop reason (``"end_turn"``,
        ``"max_tokens"``, ``"tool_use"``, ...)."""
        finished: Finished | None = self.accumulator.finished
        return None if finished is None else finished.raw_reason

    @property
    def response(self) -> ResponseInfo | None:
        """Status, headers and request id of the connection that delivered
        the end of the answer (while it runs: the current one); ``None``
        before a connection answered."""
        return self._loop.response

    @property
    def id(self) -> str | None:
        """The answer's id as the server sent it: the chat completion id
        (``chatcmpl-...``), the Anthropic message id (``msg_...``) or the
        Responses response id (``resp_...``)."""
        return getattr(self._loop.parser, "response_id", None)

    @property
    def model(self) -> str | None:
        """The model that wrote the answer, as the server named it (often
        more precise than the one requested)."""
        return getattr(self._loop.parser, "model", None)

    @property
    def done(self) -> bool:
        """Whether the stream ended (completely or with an error)."""
        return self.accumulator.done
