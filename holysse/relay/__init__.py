"""holysse.relay: re-serve LLM streams to browsers, resumably.

A view starts an upstream stream; a pump thread reads it into a stream store
so the answer keeps coming while the browser is away; every browser
connection gets a ``text/event-stream`` of the stored events, each with an
``id:``, and continues after ``Last-Event-ID`` when it reconnects::

    import holysse
    from holysse.relay import MemoryStore, Relay
    from holysse.relay.flask import relay_blueprint   # or .django.relay_urls, or RelayApp (WSGI)

    relay = Relay(holysse.Client(), MemoryStore(), keepalive=15, grace=30)
    app.register_blueprint(relay_blueprint(relay, model="gpt-4.1"))

In the page: ``<script src="/holysse/holysse.js">`` and
``HolySSE.start({base: "/holysse", body: {messages}, target: element})``.

Modules: :mod:`~holysse.relay.core` (:class:`Relay`: starting, stopping,
takeover), :mod:`~holysse.relay.pump` (one upstream answer written into the
store, under a lease), :mod:`~holysse.relay.reaper` (leases, cancellation,
orphans), :mod:`~holysse.relay.takeover` (the stored continuation state),
:mod:`~holysse.relay.sse` (one browser connection),
:mod:`~holysse.relay.follow` (a Python reader), :mod:`~holysse.relay.links`
(signed read links), :mod:`~holysse.relay.wire_events` (events <-> SSE),
:mod:`~holysse.relay.store` (the store protocol),
:mod:`~holysse.relay.memory_store` (:class:`MemoryStore`),
:mod:`~holysse.relay.redis_store` (:class:`RedisStore`),
:mod:`~holysse.relay.http` (framework-neutral endpoints),
:mod:`~holysse.relay.wsgi`, :mod:`~holysse.relay.flask`,
:mod:`~holysse.relay.django`; ``static/holysse.js`` (the browser client).
Not imported by ``import holysse``.
"""

from __future__ import annotations

from ..exceptions import LeaseLost, RelayError, StoreFull, StoreUnavailable, StreamForbidden, StreamNotFound
from .core import Relay
from .follow import Follower
from .redis_store import RedisStore
from .http import Endpoints, Reply, chat_request, script
from .sse import SSE_HEADERS, EventStream
from .memory_store import MemoryStore
from .store import TERMINAL_EVENTS, Entry, StreamInfo, StreamStore
from .wsgi import RelayApp

__all__ = [
    "Relay",
    "RelayApp",
    "Follower",
    "Endpoints",
    "Reply",
    "EventStream",
    "StreamStore",
    "MemoryStore",
    "RedisStore",
    "Entry",
    "StreamInfo",
    "TERMINAL_EVENTS",
    "SSE_HEADERS",
    "chat_request",
    "script",
    "RelayError",
    "StreamNotFound",
    "StreamForbidden",
    "StoreUnavailable",
    "StoreFull",
    "LeaseLost",
]

