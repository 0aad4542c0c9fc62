"""The SSE wire layer: bytes in, :class:`ServerSentEvent` out (and back).

:class:`SSEDecoder` owns the WHATWG "event stream" interpretation: UTF-8 with
U+FFFD for invalid bytes, one leading BOM stripped, lines ending at CRLF, LF or
CR in any mix (also across feeds), sticky ``id``, ``retry`` only as ASCII
digits, blocks without data still updating the last event ID, and an
unterminated block at EOF discarded. :func:`encode_event` (from
:mod:`holysse.sse_encode`) serialises one event so that no text can inject fields.

Framing (BOM, line ends, blank lines, size limits) is done on bytes by
:class:`~holysse._blocks.BlockFramer`. The field parsing of the complete
blocks of a feed is done by sseclient-py, in one batch: a block without a data line gets ``data:`` put in
front, so that sseclient (which skips events without data) yields exactly one
event per block. Its results are then checked against the rules it gets wrong:
ids with NUL and bogus ``retry`` values fall back to a WHATWG scan of the
block, invalid UTF-8 is replaced by U+FFFD before a second pass, and big blocks
are parsed in slices (sseclient's data concatenation is quadratic).

This is the only module that imports sseclient-py. No sockets, no clock, no
threads: a decoder is a plain state machine, not thread-safe.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Any, Callable

import sseclient

from ._redact import guard
from ._blocks import BlockFramer
from .exceptions import ProtocolError, UsageError
from .sse_encode import encode_event

__all__ = ["ServerSentEvent", "SSEDecoder", "encode_event"]

logger = guard(logging.getLogger(__name__))

#: Added in front of a block without a data line, so that sseclient yields
#: exactly one event per block (it skips blocks whose data buffer is empty).
_PREFIX = b"data:\n"
_DATA_FIRST = (b"data:", b"data\n")
#: Blocks above this size are parsed in slices: sseclient appends data lines
#: with ``str +=`` on a dict item, which is quadratic in the number of lines.
_BIG_BLOCK = 16 << 10
_SLICE_LINES = 32
_SLICE_MIN = 1024
#: ``retry`` values with more digits than this are clamped to ``sys.maxsize``.
_RETRY_MAX_DIGITS = len(str(sys.maxsize))


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event.

    :param event: the event type (``"message"`` when the block had none).
    :param data: the data lines joined with LF.
    :param id: the last event ID at dispatch (sticky across events, ``""`` if
        none), like a browser's ``MessageEvent.lastEventId``.
    :param retry: the reconnection time in ms from a valid ``retry:`` line in
        the same block, else ``None``.
    """

    event: str = "message"
    data: str = ""
    id: str = ""
    retry: int | None = None


# A frozen dataclass __init__ goes through object.__setattr__ once per field
# (~0.7 us an event); the hot loop of SSEDecoder._dispatch sets the slots
# directly (~0.3 us).
_new_object = object.__new__
_set_event, _set_data, _set_id, _set_retry = (
    vars(ServerSentEvent)[field].__set__ for field in ("event", "data", "id", "retry")
)


class SSEDecoder:
    """Incremental ``text/event-stream`` decoder (WHATWG HTML rules).

    ::

        decoder = SSEDecoder()
        for chunk in byte_chunks:
            for event in decoder.feed(chunk):
                ...
        decoder.close()          # EOF: an unterminated block is discarded

    :param max_event_bytes: largest event block accepted, in bytes (its lines
        with their line ends, after CRLF/CR became LF).
    :param max_line_bytes: longest line accepted; defaults to ``max_event_bytes``.
    :param last_event_id: the sticky id to start from (the id a reconnect sent
        as ``Last-Event-ID``), so events without ``id:`` keep it.

    .. note::
       Fields apply when their block ends: an unterminated block at EOF
       changes neither :attr:`last_event_id` nor :attr:`reconnection_time`
       (even a complete ``retry:`` line in it, which a browser would apply).
       After a :class:`~holysse.exceptions.ProtocolError` the decoder is
       closed, and the events of that feed are not returned.
    """

    def __init__(
        self, *, max_event_bytes: int = 8 << 20, max_line_bytes: int | None = None, last_event_id: str = ""
    ) -> None:
        max_line = max_event_bytes if max_line_bytes is None else max_line_bytes
        self._framer = BlockFramer(max_event_bytes, max_line)
        #: The last event ID: updated by every blank line from the id buffer.
        self.last_event_id = last_event_id
        #: Reconnection time in ms from the last valid ``retry:`` field, or ``None``.
        self.reconnection_time: int | None = None
        self._closed = False
        self._parser = _BatchParser()

    @property
    def pending_bytes(self) -> int:
        """Bytes of an unterminated block currently buffered (0 at a boundary)."""
        return self._framer.pending_bytes

    def feed(self, data: bytes | bytearray | memoryview) -> list[ServerSentEvent]:
        """Decode the next bytes of the stream.

        :param data: any slice of the body; events may span feeds.
        :returns: the events completed by these bytes, in order.
        :raises ProtocolError: if a line or an event exceeds its limit (the
            decoder is then closed).
        :raises UsageError: if the decoder was closed.
        """
        if self._closed:
            raise UsageError("SSEDecoder.feed() called after close(); create a new decoder per stream")
        if type(data) is not bytes:
            data = bytes(data)  # never keep a reference to a caller's mutable buffer
        try:
            blocks, size = self._framer.feed(data)
        except ProtocolError:
            self.close()
            raise
        if not blocks:
            return []
        out = self._simple(blocks)
        return out if out is not None else self._dispatch(blocks, size)

    def _simple(self, blocks: list[bytes]) -> list[ServerSentEvent] | None:
        """The fast path for what LLM servers send almost always: blocks that
        are one ``data: `` line each, valid UTF-8 (``None`` when a block is
        anything else: the full parse handles all of them)."""
        out: list[ServerSentEvent] = []
        last_id = self.last_event_id
        for block in blocks:
            if not block.startswith(b"data: ") or b"\n" in block or len(block) < 7:
                return None
            try:
                data = block[6:].decode("utf-8")
            except UnicodeDecodeError:
                return None
            obj = _new_object(ServerSentEvent)
            _set_event(obj, "message")
            _set_data(obj, data)
            _set_id(obj, last_id)
            _set_retry(obj, None)
            out.append(obj)
        return out

    def close(self) -> list[ServerSentEvent]:
        """End of stream: discard an unterminated block (it is never dispatched
        and its fields change nothing). Idempotent.

        :returns: ``[]`` (no event can complete at EOF).
        """
        dropped = self._framer.discard()
        if dropped and not self._closed:
            logger.debug("EOF inside an event: discarding %d buffered bytes", dropped)
        self._closed = True
        return []

    # -- field parsing (sseclient) and WHATWG fix-ups --------------------------

    def _dispatch(self, blocks: list[bytes], size: int) -> list[ServerSentEvent]:
        """Parse complete blocks, apply them in order, return the events to dispatch."""
        blocks, sent, events = self._parse(blocks, size)
        out: list[ServerSentEvent] = []
        append = out.append
        last_id = self.last_event_id
        for block, piece, ev in zip(blocks, sent, events):
            data: str | None = ev.data
            if piece is not block:  # parsed as "data:\n" + block: "" if no data, else "\n" + data
                data = data[1:] if data else None
            retry = None
            if ev.id is not None or ev.retry is not None:
                last_id, retry = self._apply_fields(block, ev, last_id)
            if data is not None:
                obj = _new_object(ServerSentEvent)
                _set_event(obj, ev.event)
                _set_data(obj, data)
                _set_id(obj, last_id)
                _set_retry(obj, retry)
                append(obj)
        self.last_event_id = last_id
        return out

    def _apply_fields(self, block: bytes, ev: sseclient.Event, last_id: str) -> tuple[str, int | None]:
        """Apply the block's ``id`` and ``retry`` fields (sseclient gives the raw
        value of the last line of each; fall back to a WHATWG scan when that
        value is not valid).

        :returns: the new last event ID and the block's retry (or ``None``).
        """
        id_raw = ev.id
        if id_raw is not None:
            if "\x00" in id_raw:
                id_raw = _last_valid(block, "id", _valid_id)
            if id_raw is not None:
                last_id = id_raw
        retry_raw = ev.retry
        retry = None
        if retry_raw is not None:
            if not (retry_raw.isdigit() and retry_raw.isascii()):
                retry_raw = _last_valid(block, "retry", _valid_retry)
            if retry_raw is not None:
                retry = self.reconnection_time = _retry_ms(retry_raw)
        return last_id, retry

    def _parse(self, blocks: list[bytes], size: int) -> tuple[list[bytes], list[bytes], list[sseclient.Event]]:
        """Field-parse blocks with sseclient: one batch, big blocks apart.

        :returns: the blocks (repaired if they were not valid UTF-8), what was
            parsed for each (see :meth:`_parse_batch`) and one sseclient event
            per block.
        """
        big = []
        if size > _BIG_BLOCK:
            big = [i for i, block in enumerate(blocks) if len(block) > _BIG_BLOCK]
        sent = [block if block.startswith(_DATA_FIRST) else _sent(block) for block in blocks]
        for i in big:
            sent[i] = _PREFIX  # a placeholder: parsed below, in slices
        blocks, sent, events = self._parse_batch(blocks, sent)
        for i in big:
            sent[i], events[i] = self._parse_big(blocks[i])
        return blocks, sent, events

    def _parse_batch(
        self, blocks: list[bytes], sent: list[bytes]
    ) -> tuple[list[bytes], list[bytes], list[sseclient.Event]]:
        """Run sseclient over ``sent``: per block, the block itself when it
        has a data line, else ``data:\n`` + block, or ``data:\n`` alone as a
        placeholder. On invalid UTF-8, repair the blocks and run it
        again."""
        try:
            return blocks, sent, self._parser.parse(sent)
        except UnicodeDecodeError:
            logger.debug("invalid UTF-8 in the event stream: replacing it with U+FFFD")
        repaired = [_repair(block) for block in blocks]
        sent = [
            new if piece is old else piece if piece is _PREFIX else _PREFIX + new
            for old, new, piece in zip(blocks, repaired, sent)
        ]
        return repaired, sent, self._parser.parse(sent)

    def _parse_big(self, block: bytes) -> tuple[bytes, sseclient.Event]:
        """Field-parse a big block as consecutive slices and merge the results.

        :returns: like one item of :meth:`_parse`: (``block`` itself, an event
            holding the data) or (something else, an event with data ``""``).
        """
        merged = sseclient.Event()
        data = _only_data(block)
        if data is not None:  # no other field: nothing for sseclient to decide
            merged.data = data
            return block, merged
        slices = _slices(block)
        slices, sent, events = self._parse_batch(slices, [_sent(piece) for piece in slices])
        datas: list[str] = []
        for piece, piece_sent, ev in zip(slices, sent, events):
            data = _data(piece, piece_sent, ev)
            if data is not None:
                datas.append(data)
            # sseclient says "message" both for no event line and for "event:"
            if ev.event != "message" or (merged.event != "message" and _has_field(piece, b"event")):
                merged.event = ev.event
            merged.id = ev.id if ev.id is not None else merged.id
            merged.retry = ev.retry if ev.retry is not None else merged.retry
        if not datas:
            return _PREFIX, merged
        merged.data = "\n".join(datas)
        return block, merged


# -- sseclient glue and WHATWG helpers -----------------------------------------------


class _BatchParser(sseclient.SSEClient):
    """sseclient-py's field parser run over a list of complete blocks.

    sseclient logs through the logger named after the class's module, so its
    DEBUG records appear under ``holysse.wire``.
    """

    def __init__(self) -> None:
        super().__init__(iter(()))
        self._batch: list[bytes] = []
        if not logger.isEnabledFor(logging.DEBUG):  # sseclient logs as this module's logger
            self._logger: Any = _QUIET  # it logs every event: skip even the level check


    def _read(self) -> list[bytes]:
        return self._batch

    def parse(self, batch: list[bytes]) -> list[sseclient.Event]:
        """Parse LF-separated blocks, each holding at least one data line.

        :param batch: the blocks, without the blank line that ends them.
        :returns: exactly one sseclient event per block.
        :raises UnicodeDecodeError: if a line is not valid UTF-8.
        """
        self._batch = batch
        try:
            return list(self.events())
        finally:
            self._batch = []


class _Quiet:
    """Stands in for sseclient's logger when DEBUG is off."""

    def debug(self, *args: object) -> None:
        pass


_QUIET: Any = _Quiet()


def _sent(block: bytes) -> bytes:
    """What sseclient parses for ``block``: the block itself when it has a data
    line (then sseclient dispatches it), else ``data:\n`` + block."""
    if block.startswith(_DATA_FIRST) or _has_field(block, b"data"):
        return block
    return _PREFIX + block


def _data(block: bytes, sent: bytes, ev: sseclient.Event) -> str | None:
    """The data to dispatch for ``block``, or ``None`` when its data buffer is
    empty, from sseclient's ``ev`` for ``sent`` (the block itself when it
    has a data line, else ``data:\n`` + block, parsed as data ``""`` when
    the block's data buffer is empty, else as ``"\n" + data``)."""
    if sent is block:
        return ev.data
    return ev.data[1:] if ev.data else None


def _repair(block: bytes) -> bytes:
    """The block with invalid UTF-8 replaced by U+FFFD, as valid UTF-8."""
    return block.decode("utf-8", "replace").encode("utf-8")


def _valid_id(value: str) -> bool:
    return "\x00" not in value


def _valid_retry(value: str) -> bool:
    return value.isascii() and value.isdigit()


def _retry_ms(value: str) -> int:
    digits = value.lstrip("0")
    return min(int(digits or "0"), sys.maxsize) if len(digits) <= _RETRY_MAX_DIGITS else sys.maxsize


def _last_valid(block: bytes, name: str, valid: Callable[[str], bool]) -> str | None:
    """The value of the last line of field ``name`` in ``block`` that passes
    ``valid`` (WHATWG rules), or ``None``. Used when sseclient's answer, the
    last line's raw value, is not a valid one."""
    found = None
    for line in block.decode("utf-8", "replace").split("\n"):
        field, _, value = line.partition(":")
        if field == name:
            value = value[1:] if value.startswith(" ") else value
            if valid(value):
                found = value
    return found


def _only_data(block: bytes) -> str | None:
    """The data of a block made of ``data`` lines only (the usual shape of a
    big event), joined without sseclient's per-line work (about 1.3 us a
    line); ``None`` when the block has other lines."""
    values = []
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            values.append(line[6:] if line.startswith(b" ", 5) else line[5:])
        elif line == b"data":
            values.append(b"")
        else:
            return None
    return b"\n".join(values).decode("utf-8", "replace")


def _slices(block: bytes) -> list[bytes]:
    """Cut a big block at line ends into pieces of about :data:`_SLICE_LINES` lines."""
    step = max(_SLICE_MIN, _SLICE_LINES * len(block) // (block.count(b"\n") + 1))
    pieces = []
    start, size = 0, len(block)
    while start < size:
        cut = block.find(b"\n", start + step)
        if cut < 0:
            cut = size
        pieces.append(block[start:cut])
        start = cut + 1
    return pieces


def _has_field(block: bytes, name: bytes) -> bool:
    """Whether some line of the LF-separated ``block`` is a ``name`` field."""
    lines = b"\n" + block + b"\n"
    return b"\n" + name + b":" in lines or b"\n" + name + b"\n" in lines
