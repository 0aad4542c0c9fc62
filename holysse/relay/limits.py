"""How many upstream streams one relay process runs at once:
:class:`StreamLimits`.

Every started stream is a paid generation and a thread, so a browser (or a
script holding one session cookie) must not be able to start them without
bound. :meth:`StreamLimits.acquire` counts a stream in when it starts, per
owner and in total, and refuses one over either limit with
:class:`~holysse.exceptions.TooManyStreams` (answered ``429`` with
``Retry-After``); :meth:`StreamLimits.release` counts it out when its pump
ends, however it ends.

The counts are per process: with several workers, an owner may run up to
``per_owner`` streams in each. Streams without an owner (``owner=None``)
count only towards ``total``.
"""

from __future__ import annotations

import threading

from ..exceptions import TooManyStreams, UsageError

__all__ = ["StreamLimits", "MAX_STREAMS", "MAX_STREAMS_PER_OWNER"]

#: Concurrent upstream streams per process, by default.
MAX_STREAMS = 64
#: Concurrent upstream streams per owner (user or session), by default.
MAX_STREAMS_PER_OWNER = 4


class StreamLimits:
    """Counts running upstream streams; thread-safe.

    :param per_owner: streams one owner may run at once, or ``None`` for no limit.
    :param total: streams this process may run at once, or ``None`` for no limit.
    :param retry_after: seconds a refused browser is told to wait (``Retry-After``).
    """

    def __init__(self, per_owner: int | None = MAX_STREAMS_PER_OWNER, total: int | None = MAX_STREAMS,
                 retry_after: float = 5.0) -> None:
        for name, value in (("max_streams_per_owner", per_owner), ("max_streams", total)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise UsageError(f"{name} must be an int >= 1 or None (no limit), not {value!r}.")
        if not isinstance(retry_after, (int, float)) or retry_after <= 0:
            raise UsageError(f"retry_after must be a positive number of seconds, not {retry_after!r}.")
        self.per_owner = per_owner
        self.total = total
        self.retry_after = float(retry_after)
        self._lock = threading.Lock()
        self._running = 0
        self._by_owner: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"<StreamLimits running={self._running} per_owner={self.per_owner} total={self.total}>"

    @property
    def running(self) -> int:
        """Streams counted in now."""
        return self._running

    def acquire(self, owner: str | None) -> None:
        """Count in one more stream of ``owner``.

        :raises TooManyStreams: the owner's or the process's limit is reached.
        """
        with self._lock:
            mine = self._by_owner.get(owner, 0) if owner is not None else 0
            if owner is not None and self.per_owner is not None and mine >= self.per_owner:
                raise TooManyStreams(
                    f"You already have {mine} answers being generated (the limit is {self.per_owner}); wait for "
                    "one to finish or stop one.", retry_after=self.retry_after)
            if self.total is not None and self._running >= self.total:
                raise TooManyStreams(
                    f"This server is generating {self._running} answers, its limit; try again shortly.",
                    retry_after=self.retry_after)
            self._running += 1
            if owner is not None:
                self._by_owner[owner] = mine + 1

    def release(self, owner: str | None) -> None:
        """Count out one stream of ``owner`` (once per :meth:`acquire`)."""
        with self._lock:
            self._running = max(0, self._running - 1)
            if owner is not None:
                left = self._by_owner.get(owner, 0) - 1
                if left > 0:
                    self._by_owner[owner] = left
                else:
                    self._by_owner.pop(owner, None)
