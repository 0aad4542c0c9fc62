"""Live display of a stream in Jupyter: ``stream.display()`` or
``holysse.notebook.display(stream)``.

The answer renders as Markdown and updates in place as it arrives, with a
status line below it (tokens, tokens per second, reconnects; then the time,
and the cost when it is known). A :class:`~holysse.events.Reset` redraws the
text from its new start. Needs IPython (``pip install 'holysse[notebook]'``)::

    stream = client.stream(model="gpt-4.1", messages=[...])
    stream.display()
    stream.text          # the whole answer, once the cell is done

In a terminal IPython session the answer shows once, at the end (terminals
cannot update an output in place).
"""

from __future__ import annotations

import time
from html import escape
from typing import Any, Iterator, Protocol

from .events import Event, Reconnecting, Reset, Resumed
from .exceptions import HolySSEError, UsageError
from .metrics import StreamMetrics
from .monitor import cost_value

__all__ = ["display"]


class Stream(Protocol):
    """What :func:`display` reads: a :class:`holysse.Stream` (a protocol, so
    this module does not import the stream it is imported by)."""

    @property
    def text(self) -> str: ...

    @property
    def metrics(self) -> StreamMetrics: ...

    def __iter__(self) -> Iterator[Event]: ...

_WAITING = "*waiting for the first token…*"


def display(stream: Stream, *, interval: float = 0.1) -> None:
    """Read ``stream`` to its end, rendering the answer live in the cell.

    :param interval: the shortest time between two redraws, in seconds (the
        final state is always drawn).
    :raises ImportError: IPython is not installed.
    :raises UsageError: not running inside IPython, or the stream was
        already read.
    :raises HolySSEError: the error that ended the stream, after the partial
        answer and the error were drawn.
    """
    view = _LiveView(_shell(), interval)
    try:
        for event in stream:
            view.event(event, stream)
    except HolySSEError as exc:
        view.finish(stream, f"✗ {type(exc).__name__}: {exc}")
        raise
    except KeyboardInterrupt:
        view.finish(stream, f"■ stopped after {len(stream.text)} characters")
        raise
    view.finish(stream, "✓ " + _figures(stream, final=True))


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError as exc:
        raise ImportError("holysse.notebook needs IPython: pip install 'holysse[notebook]'") from exc
    shell = get_ipython()
    if shell is None:
        raise UsageError("holysse.notebook.display runs inside Jupyter or IPython; in a script, iterate the "
                         "stream and print event.text instead.")
    return shell


class _LiveView:
    """Two outputs updated in place: the answer (Markdown) and a status line."""

    def __init__(self, shell: Any, interval: float) -> None:
        self._live = getattr(shell, "kernel", None) is not None  # a Jupyter kernel, not a terminal
        self._interval = interval
        self._drawn_at = 0.0
        self._status = "● connecting…"
        self._handles: tuple[Any, Any] | None = None
        if self._live:
            self._handles = (_publish(_answer(""), display_id=True),
                             _publish(_status(self._status), display_id=True))

    def event(self, event: Event, stream: Stream) -> None:
        if isinstance(event, Reconnecting):
            self._status = f"↻ reconnecting in {event.delay:.1f} s (attempt {event.attempt}): {event.reason}"
            self._draw(stream, force=True)
        elif isinstance(event, (Resumed, Reset)) or event.text:
            self._status = "● " + _figures(stream, final=False)
            self._draw(stream, force=isinstance(event, Reset))

    def finish(self, stream: Stream, status: str) -> None:
        self._status = status
        if self._live:
            self._draw(stream, force=True)
        else:
            _publish(_answer(stream.text))
            _publish(_status(status))

    def _draw(self, stream: Stream, *, force: bool) -> None:
        now = time.monotonic()
        if self._handles is None or (not force and now - self._drawn_at < self._interval):
            return
        self._drawn_at = now
        answer, status = self._handles
        answer.update(_answer(stream.text or _WAITING), raw=True)
        status.update(_status(self._status), raw=True)


def _publish(bundle: dict[str, str], **options: Any) -> Any:
    """Show a MIME bundle; with ``display_id=True``, return its handle."""
    from IPython.display import display as ipython_display

    return ipython_display(bundle, raw=True, **options)  # type: ignore[no-untyped-call]


def _answer(text: str) -> dict[str, str]:
    return {"text/markdown": text, "text/plain": text}


def _status(line: str) -> dict[str, str]:
    return {"text/html": f'<div style="color:#777;font-size:85%">{escape(line)}</div>', "text/plain": line}


def _figures(stream: Stream, *, final: bool) -> str:
    """``123 tokens · 456 tokens/s · 0 reconnects`` (and, at the end, the
    time and the cost when it is known)."""
    m = stream.metrics
    tps = m.tokens_per_second
    parts = [f"{m.text_events} tokens", f"{'-' if tps is None else f'{tps:.0f}'} tokens/s",
             f"{m.total_reconnects} reconnects"]
    if final and m.duration is not None:
        parts.insert(1, f"{m.duration:.2f} s")
    if final and m.cost is not None:
        parts.append(f"cost {_money(m.cost)}")
    return " · ".join(parts)


def _money(cost: Any) -> str:
    value = cost_value(cost)
    return str(cost) if value is None else f"${value:.4f}"
