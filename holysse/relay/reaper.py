"""The relay's reaper: one thread per process that keeps the pumps honest.

Every ``poll`` seconds it renews the lease of each pump this process runs
(which also records that the producer is alive), records a listener for the
pumps a browser connection drives inline (they cannot beat while they wait
on the upstream), and closes the upstream stream (its socket, so tokens stop
being paid) of any stream that someone stopped from any worker, or that
nobody listened to for ``grace`` seconds. With a store shared between
processes it also takes over the streams whose pump's lease expired, that
is, whose process died or hung (:meth:`Relay.adopt
<holysse.relay.core.Relay.adopt>`), and keeps running while the relay is
open, pumps or not.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

from ..exceptions import HolySSEError, StreamNotFound
from .pump import Pump
from .store import StreamStore

__all__ = ["Reaper", "ReaperHost"]

logger = logging.getLogger(__name__)

#: Orphaned streams looked at per poll.
_ORPHANS_PER_POLL = 16


class ReaperHost(Protocol):
    """What the reaper needs from its relay (:class:`~holysse.relay.core.Relay`)."""

    store: StreamStore
    poll: float
    grace: float
    lease: float
    shared: bool

    @property
    def closing(self) -> bool:
        """Whether the relay is closing."""

    def pumps(self) -> list[Pump]:
        """The pumps the relay runs now."""

    def adopt(self, stream_id: str) -> bool:
        """Take over a stream whose lease expired."""


class Reaper:
    """The reaper thread of one :class:`~holysse.relay.core.Relay`."""

    def __init__(self, relay: ReaperHost) -> None:
        self._relay = relay
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def ensure(self) -> None:
        """Start the thread unless it runs."""
        with self._lock:
            if self._thread is None and not self._relay.closing:
                self._thread = threading.Thread(target=self._run, name="holysse-relay-reaper", daemon=True)
                self._thread.start()

    def join(self, timeout: float) -> None:
        """Wait (bounded) for the thread to end after the relay closed."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        relay = self._relay
        pause = threading.Event()
        while not relay.closing:
            pause.wait(relay.poll)
            if relay.closing:
                break
            pumps = relay.pumps()
            with self._lock:
                if not pumps and not relay.shared:
                    self._thread = None
                    return
            for pump in pumps:
                self.check(pump)
            if relay.shared:
                self._adopt_orphans()
        with self._lock:
            self._thread = None

    def check(self, pump: Pump) -> None:
        """Renew ``pump``'s lease; cancel it when stopped, unheard or taken over."""
        relay, store, stream_id = self._relay, self._relay.store, pump.stream_id
        try:
            if not store.claim(stream_id, pump.holder, relay.lease):
                if not store.info(stream_id).ended and not pump.done.is_set():
                    pump.cancel("another process took the stream over")
                return
            if pump.inline:
                store.touch(stream_id, "listener")
            info = store.info(stream_id)
        except StreamNotFound:
            pump.cancel("the stream expired or was evicted from the store")
            return
        except HolySSEError as exc:  # the store failed: the pump's next write will tell
            logger.warning("Heartbeat of stream %s failed: %s", stream_id[:8], exc)
            return
        if info.cancelled:
            pump.cancel("stopped by the user")
        elif time.time() - info.listener_seen > relay.grace:
            pump.cancel(f"nobody listened for {relay.grace:g} s")

    def _adopt_orphans(self) -> None:
        relay = self._relay
        try:
            orphans = relay.store.orphans(_ORPHANS_PER_POLL)
        except HolySSEError as exc:
            logger.warning("Could not look for streams to take over: %s", exc)
            return
        for stream_id in orphans:
            if relay.closing:
                return
            relay.adopt(stream_id)
