"""SSE serialisation and HTTP body framing for the fake server, and where cuts land.

The server turns SSE events into *pieces* (one piece per event, the payload
bytes of the decoded SSE body), then frames each piece for the wire: optional
gzip (flushed with ``Z_SYNC_FLUSH`` after every piece, so streaming stays
live), then chunked transfer coding (one HTTP chunk per piece), a
close-delimited body, or a ``Content-Length`` body. :func:`plan_writes` gives
the exact socket writes for a response, cut where a fault says.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass

from .faults import Fault

__all__ = ["KEEPALIVE", "sse_bytes", "event_ends", "BodyEncoder", "Writes", "plan_writes"]

logger = logging.getLogger(__name__)

#: A comment block, sent before some events when ``keepalive_comments`` is on.
KEEPALIVE = b": keep-alive\n\n"

CHUNKED = "chunked"
CLOSE = "close"
LENGTH = "length"


def sse_bytes(data: str, *, event: str | None = None, event_id: str | None = None) -> bytes:
    """One SSE event: optional ``event:`` and ``id:`` lines, one ``data:``
    line per line of ``data``, a blank line.

    :param data: the event data; must not contain ``"\\r"``.
    """
    head = ""
    if event is not None:
        head += f"event: {event}\n"
    if event_id is not None:
        head += f"id: {event_id}\n"
    if "\n" in data:
        body = "".join(f"data: {line}\n" for line in data.split("\n"))
    else:
        body = f"data: {data}\n"
    return (head + body + "\n").encode("utf-8")


def event_ends(pieces: list[bytes]) -> list[int]:
    """Payload offsets where each piece ends."""
    ends = []
    total = 0
    for piece in pieces:
        total += len(piece)
        ends.append(total)
    return ends


class BodyEncoder:
    """Frames payload pieces for the wire, statefully (gzip keeps a dictionary).

    :param framing: ``"chunked"``, ``"close"`` (close-delimited) or ``"length"``.
    :param gzip: compress with gzip, flushed after every piece.
    """

    def __init__(self, framing: str, gzip: bool = False) -> None:
        self.framing = framing
        self._compressor = zlib.compressobj(6, zlib.DEFLATED, 31) if gzip else None

    def encode(self, piece: bytes) -> bytes:
        """The wire bytes of one piece."""
        if self._compressor is not None:
            piece = self._compressor.compress(piece) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        return self._chunk(piece)

    def finish(self) -> bytes:
        """The wire bytes that end the body (gzip trailer, last chunk)."""
        tail = b""
        if self._compressor is not None:
            tail = self._chunk(self._compressor.flush(zlib.Z_FINISH))
        if self.framing == CHUNKED:
            tail += b"0\r\n\r\n"
        return tail

    def _chunk(self, data: bytes) -> bytes:
        if self.framing != CHUNKED or not data:
            return data
        return b"%x\r\n%s\r\n" % (len(data), data)


@dataclass
class Writes:
    """The socket writes for one response body."""

    #: One entry per event (the server may pause between them).
    parts: list[bytes]
    #: True when the body is complete (a connection can be reused after it).
    complete: bool


def plan_writes(pieces: list[bytes], framing: str, gzip: bool, fault: Fault | None) -> Writes:
    """The writes for ``pieces`` under ``framing``, cut where ``fault`` says.

    A payload cut inside a piece writes the chunk header announcing the whole
    piece, then part of it (with gzip, the partial piece is compressed and
    framed on its own so that exactly ``fault.at`` bytes decode). A payload cut
    on a piece boundary ends after complete chunks. A wire cut truncates the
    framed body, chunk headers and gzip trailer included, at ``fault.at`` bytes.
    """
    encoder = BodyEncoder(framing, gzip)
    if fault is None or not fault.is_cut:
        return Writes([encoder.encode(p) for p in pieces] + [encoder.finish()], True)
    if fault.unit == "wire":
        return _truncate([encoder.encode(p) for p in pieces] + [encoder.finish()], fault.at)
    parts: list[bytes] = []
    remaining = fault.at
    for piece in pieces:
        if remaining >= len(piece):
            parts.append(encoder.encode(piece))
            remaining -= len(piece)
            continue
        if remaining > 0:
            if gzip:
                parts.append(encoder.encode(piece[:remaining]))
            elif framing == CHUNKED:
                parts.append(b"%x\r\n%s" % (len(piece), piece[:remaining]))
            else:
                parts.append(piece[:remaining])
        return Writes(parts, False)
    parts.append(encoder.finish())  # the cut is at or past the end of the payload
    return Writes(parts, True)


def _truncate(parts: list[bytes], at: int) -> Writes:
    out: list[bytes] = []
    remaining = at
    for part in parts:
        if remaining >= len(part):
            out.append(part)
            remaining -= len(part)
        else:
            if remaining:
                out.append(part[:remaining])
            return Writes(out, False)
    return Writes(out, True)
