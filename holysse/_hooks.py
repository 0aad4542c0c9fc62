"""Hooks that optional integrations install, so that holysse itself never
imports them: :func:`holysse.otel.instrument` sets :data:`stream_hook`.

A stream hook is called when a :class:`~holysse.stream.Stream` starts to be
read, with the stream, the request it sends first, its dialect's name and the
generator of its events; it returns the generator the consumer reads (the
same events, observed on their way).
"""

from __future__ import annotations

from typing import Any, Callable, Generator

__all__ = ["StreamHook", "stream_hook"]

#: ``hook(stream, request, dialect_name, events) -> events``.
StreamHook = Callable[[Any, Any, str, Generator[Any, None, None]], Generator[Any, None, None]]

#: The hook every stream starts through, or ``None`` (the default: nothing is observed).
stream_hook: StreamHook | None = None
