"""SSE encoding: one event to bytes, with no way for its text to inject a
field or end the event early (the inverse of :class:`holysse.wire.SSEDecoder`).

Also available as ``holysse.wire.encode_event``. No I/O.
"""

from __future__ import annotations

from .exceptions import UsageError

__all__ = ["encode_event"]


def encode_event(
    data: str, *, event: str | None = None, id: str | None = None, retry: int | None = None
) -> bytes:
    """Serialise one event, safely.

    ``data`` is split on CRLF, LF and CR into several ``data:`` lines, so no
    text can inject a field or end the event early (a decoder gives back
    ``data`` with its line ends as LF).

    :param data: the event's data (``""`` is dispatched as an empty message).
    :param event: the event type, or ``None`` for the default ``message``.
    :param id: the event id, or ``None`` to send no ``id:`` line.
    :param retry: a reconnection time in ms (a non-negative int), or ``None``.
    :returns: the UTF-8 bytes of the event, blank line included.
    :raises UsageError: if ``event`` or ``id`` contains CR or LF, ``id`` a NUL,
        or ``retry`` is not a non-negative int.
    """
    lines = []
    if event is not None:
        if "\r" in event or "\n" in event:
            raise UsageError(f"SSE event type must not contain CR or LF: {event!r}")
        lines.append("event: " + event)
    if id is not None:
        if "\r" in id or "\n" in id or "\x00" in id:
            raise UsageError(f"SSE id must not contain CR, LF or NUL: {id!r}")
        lines.append("id: " + id)
    if retry is not None:
        if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
            raise UsageError(f"SSE retry must be a non-negative int (milliseconds): {retry!r}")
        lines.append(f"retry: {retry}")
    if "\n" in data or "\r" in data:
        for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
            lines.append("data: " + line)
    else:  # one line (a relayed JSON text, nearly always): no splitting
        lines.append("data: " + data)
    return ("\n".join(lines) + "\n\n").encode("utf-8")
