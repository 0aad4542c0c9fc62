"""Stream stores: where relayed events wait for the browser.

A store keeps, per relayed stream, an append-only log of events (each with
an id that becomes the SSE ``id:``), who owns the stream, whether it ended,
two heartbeats (when a listener, a browser connection, and the producer, the
pump reading the upstream answer, were last seen), and what another process
needs to take the stream over: the pump's lease (who pumps it, until when),
the upstream request and the continuation state after the last stored event.
The relay's pump appends; any number of readers read, block until something
new arrives, and resume after any id they were given.

:class:`StreamStore` is the protocol; :class:`~holysse.relay.memory_store.MemoryStore`
is the default, for one process;
:class:`~holysse.relay.redis_store.RedisStore` shares streams between
workers and machines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..exceptions import RelayError

__all__ = ["Entry", "StreamInfo", "StreamStore", "TERMINAL_EVENTS"]

#: Event names that end a relayed stream: nothing is appended after them.
TERMINAL_EVENTS = frozenset({"finish", "failed"})


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored event.

    :param id: its id in the stream (sent as the SSE ``id:``).
    :param event: the SSE event name (``"text"``, ``"reset"``, ``"finish"``, ...).
    :param data: the event's data, a JSON text.
    """

    id: str
    event: str
    data: str


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What a store knows about a stream, besides its events.

    :param owner: the user or session the stream is bound to (``None``: anyone
        holding the id may read it).
    :param created: wall-clock time of creation (``time.time()``).
    :param ended: whether a terminal event was appended.
    :param listener_seen: wall-clock time a listener was last seen (creation
        counts as one).
    :param producer_seen: wall-clock time the producer last showed life.
    :param cancelled: whether someone asked to stop the stream.
    :param holder: who holds the pump's lease (``None``: nobody, or it
        expired).
    """

    owner: str | None
    created: float
    ended: bool
    listener_seen: float
    producer_seen: float
    cancelled: bool
    holder: str | None = None


class StreamStore(Protocol):
    """What the relay needs from a store. Every method is thread-safe.

    Methods raise :class:`~holysse.exceptions.StreamNotFound` for an unknown
    (or expired) stream, and
    :class:`~holysse.exceptions.StoreUnavailable` when the store cannot
    answer within its timeout.
    """

    def create(self, stream_id: str, owner: str | None, *, request: str | None = None) -> None:
        """Create an empty stream bound to ``owner``; ``request`` (a JSON
        text) is what a takeover needs to reopen the upstream."""

    def append(self, stream_id: str, event: str, data: str, *, holder: str | None = None,
               state: str | None = None) -> str:
        """Append one event; returns its id. A terminal event ends the stream.

        :param holder: the lease the writer holds: the event is refused with
            :class:`~holysse.exceptions.LeaseLost` when another holder took
            the stream (fencing: one pump per stream).
        :param state: the continuation state after this event (a JSON text),
            replacing the previous one in the same atomic write.
        """

    def read(self, stream_id: str, after: str, timeout: float) -> list[Entry]:
        """The events after id ``after`` (``""``: from the start), waiting up
        to ``timeout`` seconds for one when there are none yet (``[]``).

        :raises RelayError: ``after`` is not an id of this store (400).
        """

    def info(self, stream_id: str) -> StreamInfo:
        """The stream's owner, state and heartbeats."""

    def touch(self, stream_id: str, role: str) -> None:
        """Record that a ``"listener"`` or the ``"producer"`` is alive now."""

    def cancel(self, stream_id: str) -> None:
        """Ask the stream's producer, wherever it runs, to stop."""

    def claim(self, stream_id: str, holder: str, ttl: float) -> bool:
        """Take the pump's lease for ``holder`` for ``ttl`` seconds, or renew
        it. Atomic: of several processes claiming one free lease, exactly one
        gets it.

        :returns: whether ``holder`` holds the lease now (``False``: another
            holder's lease runs, or the stream ended).
        """

    def release(self, stream_id: str, holder: str) -> None:
        """Give the lease up if ``holder`` holds it."""

    def resumable(self, stream_id: str) -> tuple[str | None, str | None]:
        """The stored request and continuation state (JSON texts, or ``None``)."""

    def orphans(self, limit: int) -> list[str]:
        """Up to ``limit`` ids of streams not ended whose pump's lease has
        expired (their pump died or hung): candidates for a takeover."""

    def close(self) -> None:
        """Release the store's resources."""


def bad_cursor(after: str) -> RelayError:
    """The error for a ``Last-Event-ID`` that is not an id of this stream."""
    shown = after if len(after) <= 40 else after[:40] + "..."
    return RelayError(
        f"Last-Event-ID {shown!r} is not an event id of this stream; reconnect without it to read from the start.",
        status=400,
    )

