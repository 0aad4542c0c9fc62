"""A Python reader of relayed streams: :class:`Follower`.

What :meth:`Relay.follow <holysse.relay.core.Relay.follow>` returns: the
stored events of one stream, then the new ones as the pump (in this process
or any other sharing the store) writes them, as the typed events
:meth:`holysse.Client.stream` yields (:class:`~holysse.TextDelta`,
:class:`~holysse.Usage`, :class:`~holysse.Reset`, ...,
:class:`~holysse.Finished`). :attr:`Follower.last_id` is the id of the last
event yielded: a script that stores it can continue after its own restart
with ``relay.follow(stream_id, after=last_id)``, getting every event exactly
once. A follower counts as a listener (it keeps the stream from being
cancelled for want of one) and takes the stream over when its producer's
lease expired.
"""

from __future__ import annotations

import json
import time
from typing import Iterator, Protocol

from .. import Event, Finished
from ..exceptions import ReadTimeout, RelayError, UsageError
from .store import StreamStore
from .wire_events import from_wire

__all__ = ["Follower", "FollowerHost"]


class FollowerHost(Protocol):
    """What a follower needs from its relay (:class:`~holysse.relay.core.Relay`)."""

    store: StreamStore
    poll: float

    def adopt(self, stream_id: str) -> bool:
        """Take over a stream whose lease expired."""


class Follower:
    """The typed events of one relayed stream; iterate it once."""

    def __init__(self, relay: FollowerHost, stream_id: str, after: str, timeout: float | None) -> None:
        self._relay = relay
        self.stream_id = stream_id
        #: The id of the last event yielded (``after`` until the first one).
        self.last_id = after
        self._timeout = timeout
        self._started = False
        #: The answer text yielded so far (after the last :class:`~holysse.Reset`).
        self.text = ""
        #: Why the model stopped, once it did.
        self.finish_reason: str | None = None

    def __repr__(self) -> str:
        return f"<Follower {self.stream_id[:8]} after={self.last_id!r}>"

    def __iter__(self) -> Iterator[Event]:
        if self._started:
            raise UsageError("A Follower can be iterated only once; call relay.follow(..., after=last_id) again.")
        self._started = True
        return self._events()

    def _events(self) -> Iterator[Event]:
        relay, store, stream_id = self._relay, self._relay.store, self.stream_id
        last_event = last_beat = time.monotonic()
        while True:
            entries = store.read(stream_id, self.last_id, relay.poll)
            now = time.monotonic()
            for entry in entries:
                last_event = now
                if entry.event == "failed":
                    self.last_id = entry.id
                    fields = json.loads(entry.data)
                    raise RelayError(f"The relayed answer failed ({fields.get('error')}): {fields.get('message')}",
                                     partial=self.text, status=502)
                event = from_wire(entry.event, entry.data, self.text)
                self.last_id = entry.id
                if event is None:
                    continue
                self.text = "" if entry.event == "reset" else self.text + event.text
                if isinstance(event, Finished):
                    self.finish_reason = event.reason
                yield event
                if entry.event == "finish":
                    return
            if now - last_beat >= relay.poll:
                last_beat = now
                store.touch(stream_id, "listener")
                info = store.info(stream_id)
                if info.ended and not store.read(stream_id, self.last_id, 0):
                    return  # ended, its terminal event before ``after``: nothing more to read
                if not info.ended and info.holder is None:
                    relay.adopt(stream_id)
            if self._timeout is not None and now - last_event > self._timeout:
                raise ReadTimeout(f"No event of relayed stream {stream_id[:8]} for {self._timeout:g} s.",
                                  partial=self.text)
