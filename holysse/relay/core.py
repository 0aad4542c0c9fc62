"""The relay's producer side: :class:`Relay` starts upstream streams and
pumps them into a store.

:meth:`Relay.start` opens a :class:`holysse.Stream` and a pump thread that
reads it into the store, event by event, so the answer keeps being
produced while the browser is away. One reaper thread per process watches
the pumps it runs: it records that they are alive, and closes the upstream
stream (its socket, so tokens stop being paid) of any stream nobody has
listened to for ``grace`` seconds, or that someone cancelled from any
worker. :meth:`Relay.open` hands a browser connection the
:class:`~holysse.relay.sse.EventStream` that re-serves a stream.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
import threading
import time
from typing import Any

from .. import Client, Event, Reconnecting, Reset, Resumed, Stream, TextDelta, ThinkingDelta, ToolCallDelta, Usage
from ..exceptions import (
    HolySSEError,
    StoreUnavailable,
    StreamClosed,
    StreamForbidden,
    StreamNotFound,
    UsageError,
)
from .sse import EventStream
from .store import MemoryStore, StreamStore

__all__ = ["Relay"]

logger = logging.getLogger(__name__)

_STREAM_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_JOIN_BUDGET = 2.0


class _Pump:
    """One upstream stream being read into the store, on its own thread."""

    def __init__(self, stream_id: str, stream: Stream) -> None:
        self.stream_id = stream_id
        self.stream = stream
        self.cancel_reason: str | None = None
        self.thread: threading.Thread | None = None

    def cancel(self, reason: str) -> None:
        if self.cancel_reason is None:
            self.cancel_reason = reason
            logger.info("Cancelling upstream of stream %s: %s", self.stream_id[:8], reason)
        self.stream.close()


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
    ) -> None:
        if min(keepalive, grace, poll, producer_timeout) <= 0:
            raise ValueError("keepalive, grace, poll and producer_timeout must be positive.")
        self.client = client
        self.store: StreamStore = store if store is not None else MemoryStore()
        self.keepalive = keepalive
        self.grace = grace
        self.poll = poll
        self.producer_timeout = producer_timeout
        self.retry_ms = retry_ms
        self.expose_errors = expose_errors
        self._lock = threading.Lock()
        self._pumps: dict[str, _Pump] = {}
        self._reaper: threading.Thread | None = None
        self._closing = threading.Event()

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
        """
        if self._closing.is_set():
            raise UsageError("This Relay is closed; create a new one.")
        stream = self.client.stream(**request)
        stream_id = secrets.token_urlsafe(24)
        try:
            self.store.create(stream_id, owner)
        except BaseException:
            stream.close()
            raise
        pump = _Pump(stream_id, stream)
        pump.thread = threading.Thread(target=self._run_pump, args=(pump,), name=f"holysse-pump-{stream_id[:8]}",
                                       daemon=True)
        with self._lock:
            self._pumps[stream_id] = pump
            self._ensure_reaper_locked()
        pump.thread.start()
        logger.debug("Started stream %s", stream_id[:8])
        return stream_id

    def stop(self, stream_id: str, *, owner: str | None = None) -> None:
        """Cancel a stream's upstream, wherever its pump runs (within
        ``poll`` seconds on another worker).

        :raises StreamNotFound: no such stream.
        :raises StreamForbidden: ``owner`` may not touch it.
        :raises StoreUnavailable: the store failed.
        """
        self.check_owner(stream_id, owner)
        self.store.cancel(stream_id)
        with self._lock:
            pump = self._pumps.get(stream_id)
        if pump is not None:
            pump.cancel("stopped by the user")

    def check_owner(self, stream_id: str, owner: str | None) -> bool:
        """Check that ``owner`` may read ``stream_id``.

        :returns: whether the stream has ended.
        :raises StreamNotFound: malformed or unknown id.
        :raises StreamForbidden: the stream is bound to another owner.
        """
        if not _STREAM_ID.fullmatch(stream_id):
            raise StreamNotFound("Malformed stream id.")
        info = self.store.info(stream_id)
        if info.owner is not None and (owner is None or not _same(info.owner, owner)):
            raise StreamForbidden("This stream belongs to another session; start your own.")
        return info.ended

    def open(self, stream_id: str, *, owner: str | None = None, last_event_id: str = "") -> EventStream:
        """The event stream a browser connection reads: every event after
        ``last_event_id`` (all of them when empty), then the new ones as they
        come. A WSGI application too.

        :raises StreamNotFound: no such stream.
        :raises StreamForbidden: ``owner`` may not read it.
        :raises RelayError: ``last_event_id`` is not an id of this stream (400).
        :raises StoreUnavailable: the store failed.
        """
        ended = self.check_owner(stream_id, owner)
        pending = self.store.read(stream_id, last_event_id, 0) if ended or last_event_id else []
        finished = ended and not pending  # the browser has everything: 204 tells EventSource to stop
        return EventStream(self, stream_id, last_event_id, pending, finished=finished)

    @property
    def closing(self) -> bool:
        """Whether :meth:`close` was called (open event streams end soon)."""
        return self._closing.is_set()

    def close(self) -> None:
        """Cancel every pump this relay runs, stop its reaper and join them
        (bounded). Browser connections end within ``poll`` seconds."""
        self._closing.set()
        with self._lock:
            pumps = list(self._pumps.values())
            reaper = self._reaper
        for pump in pumps:
            pump.cancel("the relay is closing")
        deadline = time.monotonic() + _JOIN_BUDGET
        for thread in [p.thread for p in pumps] + [reaper]:
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the pump ---------------------------------------------------------------------

    def _run_pump(self, pump: _Pump) -> None:
        store, stream_id = self.store, pump.stream_id
        try:
            for event in pump.stream:
                item = self.to_wire(event)
                if item is not None:
                    store.append(stream_id, *item)
            store.append(stream_id, "finish", _json({"reason": pump.stream.finish_reason,
                                                     "usage": _usage(pump.stream.usage)}))
        except StoreUnavailable as exc:
            logger.error("Stream %s stopped: the store failed: %s", stream_id[:8], exc)
        except StreamNotFound:
            logger.warning("Stream %s was evicted or expired while it was produced", stream_id[:8])
        except BaseException as exc:
            self._fail(pump, exc)
        finally:
            pump.stream.close()
            with self._lock:
                self._pumps.pop(stream_id, None)

    def _fail(self, pump: _Pump, exc: BaseException) -> None:
        if isinstance(exc, StreamClosed) and pump.cancel_reason is not None:
            error, message = "cancelled", f"The answer was cancelled: {pump.cancel_reason}."
        elif isinstance(exc, HolySSEError):
            error = type(exc).__name__
            message = str(exc) if self.expose_errors else "The answer could not be completed."
            logger.warning("Stream %s failed: %s", pump.stream_id[:8], exc)
        else:
            error, message = "internal", "The answer could not be completed."
            logger.error("Stream %s failed", pump.stream_id[:8], exc_info=exc)
        try:
            self.store.append(pump.stream_id, "failed", _json({"error": error, "message": message}))
        except HolySSEError as store_error:
            logger.error("Stream %s: could not record its failure: %s", pump.stream_id[:8], store_error)

    def to_wire(self, event: Event) -> tuple[str, str] | None:
        """The SSE event name and JSON data sent to browsers for ``event``,
        or ``None`` for events not relayed (:class:`~holysse.Finished`: its
        reason travels in the final ``finish`` event)."""
        kind = type(event)
        if kind is TextDelta:
            return "text", _json({"text": event.text})
        if kind is ThinkingDelta:
            return "thinking", _json({"text": event.thinking})  # type: ignore[union-attr]
        if kind is ToolCallDelta:
            return "tool", _json({"index": event.index, "id": event.id, "name": event.name,  # type: ignore[union-attr]
                                  "arguments": event.arguments})  # type: ignore[union-attr]
        if kind is Usage:
            return "usage", _json(_usage(event))  # type: ignore[arg-type]
        if kind is Reset:
            return "reset", _json({"reason": "the model's answer changed; showing it from the start"})
        if kind is Reconnecting:
            return "upstream", _json({"state": "reconnecting", "attempt": event.attempt,  # type: ignore[union-attr]
                                      "delay": event.delay})  # type: ignore[union-attr]
        if kind is Resumed:
            return "upstream", _json({"state": "resumed", "strategy": event.strategy,  # type: ignore[union-attr]
                                      "attempt": event.attempt})  # type: ignore[union-attr]
        return None

    # -- the reaper -------------------------------------------------------------------

    def _ensure_reaper_locked(self) -> None:
        if self._reaper is None or not self._reaper.is_alive():
            self._reaper = threading.Thread(target=self._reap, name="holysse-relay-reaper", daemon=True)
            self._reaper.start()

    def _reap(self) -> None:
        """Every ``poll`` seconds: heartbeat each local pump, cancel the ones
        cancelled elsewhere or unheard for ``grace`` seconds. Ends when no
        pump is left."""
        while not self._closing.wait(self.poll):
            with self._lock:
                pumps = list(self._pumps.values())
                if not pumps:
                    self._reaper = None
                    return
            for pump in pumps:
                self._check(pump)

    def _check(self, pump: _Pump) -> None:
        try:
            self.store.touch(pump.stream_id, "producer")
            info = self.store.info(pump.stream_id)
        except StreamNotFound:
            pump.cancel("the stream expired or was evicted from the store")
            return
        except HolySSEError as exc:  # the store failed: the pump's next append will tell
            logger.warning("Heartbeat of stream %s failed: %s", pump.stream_id[:8], exc)
            return
        if info.cancelled:
            pump.cancel("stopped by the user")
        elif time.time() - info.listener_seen > self.grace:
            pump.cancel(f"nobody listened for {self.grace:g} s")


def _same(owner: str, claimed: str) -> bool:
    """Constant-time comparison (of UTF-8 bytes: ``compare_digest`` refuses non-ASCII ``str``)."""
    return hmac.compare_digest(owner.encode("utf-8"), claimed.encode("utf-8"))


_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _usage(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens}

