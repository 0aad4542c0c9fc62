"""The relay's producer side: :class:`Relay` starts upstream streams and
pumps them into a store.

:meth:`Relay.start` opens a :class:`holysse.Stream` and a
:class:`~holysse.relay.pump.Pump` that reads it into the store, event by
event, under a lease, so the answer keeps being produced while the browser
is away. A reaper thread per process (:mod:`~holysse.relay.reaper`) renews
the leases of the pumps it runs, cancels the ones nobody listened to for
``grace`` seconds or that someone stopped from any worker, and takes over
the streams of other processes whose lease expired (they died or hung).
:meth:`Relay.open` hands a browser connection the
:class:`~holysse.relay.sse.EventStream` that re-serves a stream;
:meth:`Relay.follow` gives Python code the same stream as typed events.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import secrets
import socket
import threading
import time
from typing import Any

from .. import Client, Event
from ..exceptions import HolySSEError, StreamForbidden, StreamNotFound, UsageError
from . import links, takeover
from .follow import Follower
from .limits import MAX_STREAMS, MAX_STREAMS_PER_OWNER, StreamLimits
from .memory_store import MemoryStore
from .pump import Pump
from .reaper import Reaper
from .sse import EventStream
from .store import Entry, StreamStore
from .wire_events import to_wire

__all__ = ["Relay"]

logger = logging.getLogger(__name__)

_STREAM_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_JOIN_BUDGET = 2.0


class Relay:
    """Relays upstream answers to browsers through a :class:`StreamStore`.

    ::

        relay = Relay(holysse.Client(), MemoryStore())
        stream_id = relay.start(owner=session_id, model="gpt-4.1", messages=messages)
        events = relay.open(stream_id, owner=session_id, last_event_id=header)  # a WSGI app

    Thread-safe; one per process. :meth:`close` stops every pump it runs
    (it does not close the store or the client: they are yours).

    .. note:: Each running stream holds one upstream connection. For many
       concurrent streams, give the client a ``requests.Session`` whose
       adapter pool holds them all (``pool_maxsize``), or urllib3 discards the
       extra connections with a warning.

    :param client: the :class:`holysse.Client` that streams the answers.
    :param store: where events wait for browsers (default: a new
        :class:`MemoryStore`).
    :param keepalive: seconds without an event after which a browser
        connection gets a ``: keep-alive`` comment.
    :param grace: seconds with no browser listening after which the upstream
        stream is cancelled.
    :param poll: how often (seconds) listeners and pumps record that they are
        alive and check for cancellation; bounds how fast a cancellation or a
        dead producer is noticed.
    :param producer_timeout: seconds without a sign of life from the pump
        (its process died, or the store lost its writes) after which
        browsers are told the stream failed.
    :param retry_ms: the SSE ``retry:`` (reconnection delay) sent to
        browsers, or ``None``.
    :param expose_errors: send upstream error messages to the browser
        (default: only the error's type; the message may name internal hosts).
    :param lease: seconds a pump's lease lasts without renewal (the reaper
        renews it every ``poll`` seconds). When a process dies or hangs, its
        streams are taken over by another process of the relay within
        ``lease + poll`` seconds (with a store shared between processes).
    :param secret: the key that signs read links (:meth:`link`), e.g. the
        app's secret key; every worker must have the same one.
    :param inline: let the browser connection that follows a stream pumped
        by this process drive the pump in its own thread (one thread woken
        per event instead of two). It sends no keep-alive comment while the
        upstream is silent; ``False`` keeps every pump on a thread of its own.
    :param max_streams_per_owner: upstream streams one owner may run at once
        in this process (4), or ``None``; past it :meth:`start` raises
        :class:`~holysse.exceptions.TooManyStreams` (HTTP 429, ``Retry-After``).
    :param max_streams: upstream streams this process starts and runs at once
        (64), or ``None``; past it, the same (see :mod:`holysse.relay.limits`).
    """

    def __init__(
        self,
        client: Client,
        store: StreamStore | None = None,
        *,
        keepalive: float = 15.0,
        grace: float = 30.0,
        poll: float = 1.0,
        producer_timeout: float = 30.0,
        retry_ms: int | None = 1000,
        expose_errors: bool = False,
        lease: float = 10.0,
        secret: str | bytes | None = None,
        inline: bool = True,
        max_streams_per_owner: int | None = MAX_STREAMS_PER_OWNER,
        max_streams: int | None = MAX_STREAMS,
    ) -> None:
        if min(keepalive, grace, poll, producer_timeout, lease) <= 0:
            raise UsageError("keepalive, grace, poll, producer_timeout and lease must be positive.")
        if lease <= 2 * poll:
            raise UsageError(f"lease ({lease:g} s) must be longer than two polls ({poll:g} s each): the reaper "
                             "renews it every poll.")
        self.client = client
        self.store: StreamStore = store if store is not None else MemoryStore()
        self.keepalive = keepalive
        self.grace = grace
        self.poll = poll
        self.producer_timeout = producer_timeout
        self.retry_ms = retry_ms
        self.expose_errors = expose_errors
        self.limits = StreamLimits(max_streams_per_owner, max_streams)
        self._counted: dict[str, str | None] = {}  # started here: stream id -> owner, until its pump ends
        self.lease = lease
        self.inline = inline
        self._secret = secret.encode("utf-8") if isinstance(secret, str) else secret
        #: Whether other processes share the store (then streams can be taken over).
        self.shared = bool(getattr(self.store, "shared", False))
        self._lock = threading.Lock()
        self._pumps: dict[str, Pump] = {}
        self._reaper = Reaper(self)
        self._closing = threading.Event()
        self._where = f"{socket.gethostname()}:{os.getpid()}"

    def __repr__(self) -> str:
        return f"<holysse.relay.Relay store={self.store!r} pumps={len(self._pumps)}>"

    # -- starting and stopping ----------------------------------------------------

    def start(self, *, owner: str | None = None, **request: Any) -> str:
        """Start streaming one answer into the store; return its stream id.

        :param owner: the user or session allowed to read and stop the stream
            (``None``: anyone who has the id).
        :param request: arguments of :meth:`holysse.Client.stream`
            (``model``, ``messages``, ...).
        :raises UsageError: for bad request arguments or a closed relay.
        :raises StoreUnavailable: the store cannot take a new stream (full, or
            Redis down).
        :raises TooManyStreams: ``owner`` (or this process) already runs as
            many streams as allowed; nothing is sent upstream.
        """
        if self._closing.is_set():
            raise UsageError("This Relay is closed; create a new one.")
        self.limits.acquire(owner)
        try:
            stream = self.client.stream(**request)
            stream_id = secrets.token_urlsafe(24)
            stored = takeover.request_json(request, stream) if self.shared else None
            holder = self._holder()
            try:
                self.store.create(stream_id, owner, request=stored)
                self.store.claim(stream_id, holder, self.lease)
            except BaseException:
                stream.close()
                raise
        except BaseException:
            self.limits.release(owner)
            raise
        with self._lock:
            self._counted[stream_id] = owner
        self._run(Pump(self, stream_id, stream, holder, checkpoints=stored is not None))
        logger.debug("Started stream %s", stream_id[:8])
        return stream_id

    def _holder(self) -> str:
        """A new lease holder id: ``host:pid:random`` (who pumps a stream is
        in :attr:`StreamInfo.holder <holysse.relay.store.StreamInfo.holder>`)."""
        return f"{self._where}:{secrets.token_hex(4)}"

    def _run(self, pump: Pump) -> None:
        with self._lock:
            self._pumps[pump.stream_id] = pump
        self._reaper.ensure()
        pump.start()

    def pump(self, stream_id: str) -> Pump | None:
        """The pump of ``stream_id`` if this process runs it."""
        return self._pumps.get(stream_id)

    def forget(self, pump: Pump) -> None:
        """Called by a pump that ended (its stream's slot in :attr:`limits` frees)."""
        with self._lock:
            if self._pumps.get(pump.stream_id) is pump:
                del self._pumps[pump.stream_id]
            counted = pump.stream_id in self._counted
            owner = self._counted.pop(pump.stream_id, None)
        if counted:
            self.limits.release(owner)

    def adopt(self, stream_id: str) -> bool:
        """Take over a stream whose pump's lease expired (its process died or
        hung): claim the lease, rebuild the upstream stream from the stored
        request and continuation state, and pump it here.

        :returns: whether this process pumps the stream now.
        """
        if self._closing.is_set() or stream_id in self._pumps or not self.shared:
            return False
        holder = self._holder()
        try:
            if not self.store.claim(stream_id, holder, self.lease):
                return False
        except HolySSEError as exc:
            logger.warning("Could not claim stream %s: %s", stream_id[:8], exc)
            return False
        try:
            request, state = self.store.resumable(stream_id)
            if request is None:
                raise UsageError("it was started without a stored request")
            entries = self._entries(stream_id)
            stream = takeover.resume(self.client, request, state, entries)
        except (HolySSEError, ValueError) as exc:
            logger.warning("Cannot take over stream %s: %s", stream_id[:8], exc)
            self.store.release(stream_id, holder)
            return False
        logger.info("Taking over stream %s after %d events (its pump's lease expired)", stream_id[:8], len(entries))
        self._run(Pump(self, stream_id, stream, holder, checkpoints=True))
        return True

    def _entries(self, stream_id: str) -> list[Entry]:
        entries: list[Entry] = []
        while batch := self.store.read(stream_id, entries[-1].id if entries else "", 0):
            entries += batch
        return entries

    def stop(self, stream_id: str, *, owner: str | None = None) -> None:
        """Cancel a stream's upstream, wherever its pump runs (within
        ``poll`` seconds on another worker).

        :raises StreamNotFound: no such stream.
        :raises StreamForbidden: ``owner`` may not touch it.
        :raises StoreUnavailable: the store failed.
        """
        self.check_owner(stream_id, owner)
        self.store.cancel(stream_id)
        pump = self._pumps.get(stream_id)
        if pump is not None:
            pump.cancel("stopped by the user")

    def check_owner(self, stream_id: str, owner: str | None, token: str | None = None) -> bool:
        """Check that ``owner``, or the holder of the read link ``token``,
        may read ``stream_id``.

        :returns: whether the stream has ended.
        :raises StreamNotFound: malformed or unknown id.
        :raises StreamForbidden: the stream is bound to another owner, and
            ``token`` is not a valid link for it (or has expired).
        """
        if not _STREAM_ID.fullmatch(stream_id):
            raise StreamNotFound("Malformed stream id.")
        info = self.store.info(stream_id)
        if info.owner is not None and (owner is None or not _same(info.owner, owner)):
            if not token:
                raise StreamForbidden("This stream belongs to another session; start your own.")
            if self._secret is None:
                raise StreamForbidden("This relay has no secret, so it accepts no read links.")
            links.verify(self._secret, stream_id, token, time.time())
        return info.ended

    def link(self, stream_id: str, *, expires_in: float = 3600.0) -> str:
        """A read link token for ``stream_id``: whoever holds it may follow
        the stream (``GET {base}/streams/{id}?token=...``, or
        ``HolySSE.follow(id, {token})``) for ``expires_in`` seconds, but not
        stop it. Signed with ``secret`` (HMAC-SHA256).

        :raises UsageError: the relay has no ``secret``.
        """
        if self._secret is None:
            raise UsageError("Give the Relay a secret= (e.g. the app's secret key) to sign read links.")
        return links.sign(self._secret, stream_id, time.time() + expires_in)

    def follow(self, stream_id: str, *, after: str = "", owner: str | None = None, token: str | None = None,
               timeout: float | None = None) -> Follower:
        """Read a relayed stream from Python (a script, a Celery task, a
        notebook cell) as the typed events :meth:`holysse.Client.stream`
        yields, from the start or after the id ``after``.
        :attr:`Follower.last_id` is the id to pass as ``after`` to continue
        after a restart.

        :param timeout: seconds without any new event after which the reader
            gives up with :class:`~holysse.ReadTimeout` (``None``: wait while
            the stream's producer is alive).
        :raises StreamNotFound: no such stream.
        :raises StreamForbidden: ``owner`` (or ``token``) may not read it.
        """
        self.check_owner(stream_id, owner, token)
        return Follower(self, stream_id, after, timeout)

    def open(self, stream_id: str, *, owner: str | None = None, last_event_id: str = "",
             token: str | None = None) -> EventStream:
        """The event stream a browser connection reads: every event after
        ``last_event_id`` (all of them when empty), then the new ones as they
        come. A WSGI application too.

        :raises StreamNotFound: no such stream.
        :raises StreamForbidden: ``owner`` may not read it.
        :raises RelayError: ``last_event_id`` is not an id of this stream (400).
        :raises StoreUnavailable: the store failed.
        """
        ended = self.check_owner(stream_id, owner, token)
        if not ended:
            self.store.touch(stream_id, "listener")  # from the request on, before the body is read
        if self.shared:
            self._reaper.ensure()  # this worker may take streams over from now on
        pending = self.store.read(stream_id, last_event_id, 0) if ended or last_event_id else []
        finished = ended and not pending  # the browser has everything: 204 tells EventSource to stop
        return EventStream(self, stream_id, last_event_id, pending, finished=finished)

    @property
    def closing(self) -> bool:
        """Whether :meth:`close` was called (open event streams end soon)."""
        return self._closing.is_set()

    def close(self) -> None:
        """Stop every pump this relay runs, stop its reaper and join them
        (bounded). Browser connections end within ``poll`` seconds. On a
        store shared between processes, the streams are handed over (their
        leases released: another process continues them at once, see
        :meth:`adopt`); else they end with a ``failed`` event."""
        self._closing.set()
        with self._lock:
            pumps = list(self._pumps.values())
        handover = self.shared and takeover.supported()
        for pump in pumps:
            if handover and pump.checkpoints:
                pump.hand_over()
            else:
                pump.cancel("the relay is closing")
        deadline = time.monotonic() + _JOIN_BUDGET
        for pump in pumps:
            pump.done.wait(max(0.0, deadline - time.monotonic()))
        self._reaper.join(max(0.0, deadline - time.monotonic()))

    def pumps(self) -> list[Pump]:
        """The pumps this process runs now."""
        with self._lock:
            return list(self._pumps.values())

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def to_wire(self, event: Event) -> tuple[str, str] | None:
        """The SSE event name and JSON data sent to browsers for ``event``,
        or ``None`` for events not relayed (see
        :func:`~holysse.relay.wire_events.to_wire`)."""
        return to_wire(event)


def _same(owner: str, claimed: str) -> bool:
    """Constant-time comparison (of UTF-8 bytes: ``compare_digest`` refuses non-ASCII ``str``)."""
    return hmac.compare_digest(owner.encode("utf-8"), claimed.encode("utf-8"))
