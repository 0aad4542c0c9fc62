"""Cutting an event stream's bytes into blocks: :class:`BlockFramer`.

A *block* is the lines of one event, line ends normalised to LF, without the
blank line that ends it. The framer strips one leading BOM, treats CRLF, LF
and CR alike in any mix (a CR ending one feed pairs with an LF starting the
next), keeps the unterminated block for the next feed, and enforces the line
and event size limits, in time linear in the bytes fed. What the lines mean
is :mod:`holysse.wire`'s business.

No sockets, no clock, no threads.
"""

from __future__ import annotations

from .exceptions import ProtocolError

__all__ = ["BlockFramer"]

_BOM = b"\xef\xbb\xbf"


class BlockFramer:
    """Bytes in, complete blocks out.

    :param max_event_bytes: the largest block accepted (its lines with their
        LF line ends).
    :param max_line_bytes: the longest line accepted.
    """

    def __init__(self, max_event_bytes: int, max_line_bytes: int) -> None:
        self._max_event = max_event_bytes
        self._max_line = max_line_bytes
        self._pending = bytearray()  # the unterminated block, LF-normalised
        self._line_len = 0  # length of the unterminated last line
        self._head = b""  # stream start, until we know whether it is a BOM
        self._bom_pending = True
        self._cr_pending = False  # the last feed ended with CR (an LF next is its pair)

    @property
    def pending_bytes(self) -> int:
        """Bytes of an unterminated block currently buffered (0 at a boundary)."""
        return len(self._pending) + len(self._head)

    def feed(self, data: bytes) -> tuple[list[bytes], int]:
        """Add the next bytes of the stream.

        :returns: the blocks they complete, and the bytes buffered with them
            (a bound of the largest block's size).
        :raises ProtocolError: a line or a block is over its limit.
        """
        if self._bom_pending:
            data = self._strip_bom(data)
        if not data:
            return [], 0
        if self._cr_pending:
            self._cr_pending = False
            if data[0] == 10:  # the LF of a CRLF split across feeds
                data = data[1:]
                if not data:
                    return [], 0
        if data.find(b"\r") >= 0:
            self._cr_pending = data[-1] == 13
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        size = len(self._pending) + len(data)
        blocks = self._frame(data)
        if blocks and size > self._max_event:
            self._check_blocks(blocks)
        return blocks, size

    def discard(self) -> int:
        """End of stream: drop the unterminated block; returns its size."""
        dropped = len(self._pending)
        self._pending = bytearray()
        self._head = b""
        return dropped

    def _strip_bom(self, data: bytes) -> bytes:
        head = self._head + data
        if len(head) < 3 and _BOM.startswith(head):
            self._head = head  # maybe the start of a BOM: wait for more
            return b""
        self._bom_pending = False
        self._head = b""
        return head[3:] if head.startswith(_BOM) else head

    def _frame(self, data: bytes) -> list[bytes]:
        """Add LF-normalised bytes; cut out the blocks they complete.

        :returns: complete blocks, without the blank line ending each.
        """
        blocks = []
        pending = self._pending
        if data[0] == 10:
            if pending and pending[-1] == 10:  # a blank line: the pending block is complete
                del pending[-1]
                blocks.append(self._take_pending())
            if not pending:  # more blank lines between blocks change nothing
                data = data.lstrip(b"\n")
                if not data:
                    return blocks
        first = data.find(b"\n")
        last = data.rfind(b"\n")
        if self._line_len + len(data) > self._max_line:
            self._check_lines(data, first, last)
        else:  # no line can be too long: just track the current one
            self._line_len = self._line_len + len(data) if first < 0 else len(data) - last - 1
        tail = data
        # (b"\n\n" in data) costs ~1 ns a byte: look only between two line ends
        if first != last and data.find(b"\n\n", first, last + 1) >= 0:
            parts = data.split(b"\n\n")
            tail = parts.pop().lstrip(b"\n")
            if pending:
                pending += parts[0]
                parts[0] = self._take_pending()
            blocks += parts
        if tail:
            pending += tail
            if len(pending) > self._max_event:
                self._fail(f"an SSE event is larger than max_event_bytes={self._max_event}", "max_event_bytes")
        return blocks

    def _take_pending(self) -> bytes:
        block = bytes(self._pending)
        self._pending.clear()
        return block

    def _check_lines(self, data: bytes, first: int, last: int) -> None:
        """Track the length of the current line; fail if a line is too long.

        :param first: index of the first LF in ``data`` (-1 if none).
        :param last: index of its last LF.
        """
        if first < 0:
            self._line_len += len(data)
            longest = self._line_len
        else:
            longest = self._line_len + first
            if last - first - 1 > self._max_line:  # a line in between may be too long
                longest = max(longest, max(map(len, data[first + 1 : last].split(b"\n"))))
            self._line_len = len(data) - last - 1
            longest = max(longest, self._line_len)
        if longest > self._max_line:
            self._fail(f"an SSE line is longer than max_line_bytes={self._max_line}", "max_line_bytes")

    def _check_blocks(self, blocks: list[bytes]) -> None:
        if max(len(block.lstrip(b"\n")) + 1 for block in blocks) > self._max_event:
            self._fail(f"an SSE event is larger than max_event_bytes={self._max_event}", "max_event_bytes")

    def _fail(self, what: str, parameter: str) -> None:
        raise ProtocolError(f"{what} bytes; raise it with SSEDecoder({parameter}=...) if the server is trusted")
