"""Where the example chats get their answers, and where they keep streams.

- ``HOLYSHEEP_API_KEY`` set: the HolySheep gateway (``$HOLYSHEEP_BASE_URL`` to
  change it), model ``$HOLYSSE_MODEL`` (default ``gpt-4.1-mini``);
- else ``HOLYSSE_UPSTREAM_URL`` set: that OpenAI-compatible server, no key;
- else a :class:`holysse.testing.FakeServer` started in this process (no
  network, no key), answering ``$HOLYSSE_FAKE_CHARS`` characters at one
  token every ``$HOLYSSE_FAKE_DELAY`` seconds.

Streams go to Redis when ``HOLYSSE_REDIS_URL`` is set (needed with several
workers), else to memory. ``HOLYSSE_POLL`` and ``HOLYSSE_LEASE`` (seconds) set
the relay's poll interval and pump lease: a worker that dies mid-answer has
its streams taken over by another within about ``lease + poll`` seconds.
Read links are signed with ``HOLYSSE_SECRET_KEY`` (the same in every worker).
"""

from __future__ import annotations

import atexit
import os
from typing import Any

import holysse
from holysse.relay import MemoryStore, RedisStore, Relay, StreamStore


def make_relay() -> tuple[Relay, dict[str, Any]]:
    """The relay and the request defaults (``model=``, ...) for the example."""
    if os.environ.get("HOLYSHEEP_API_KEY"):
        client = holysse.Client()
        defaults: dict[str, Any] = {"model": os.environ.get("HOLYSSE_MODEL", "gpt-4.1-mini")}
    else:
        url = os.environ.get("HOLYSSE_UPSTREAM_URL") or _fake_server()
        client = holysse.Client(base_url=url)
        defaults = {"model": "fake-1", "seed": 7}
    relay = Relay(client, _store(), poll=float(os.environ.get("HOLYSSE_POLL", "1")),
                  lease=float(os.environ.get("HOLYSSE_LEASE", "10")), secret=os.environ.get("HOLYSSE_SECRET_KEY"))
    atexit.register(relay.close)
    return relay, defaults


def _store() -> StreamStore:
    redis_url = os.environ.get("HOLYSSE_REDIS_URL")
    return RedisStore(url=redis_url) if redis_url else MemoryStore()


def _fake_server() -> str:
    from holysse.testing import FakeServer

    server = FakeServer(answer_chars=int(os.environ.get("HOLYSSE_FAKE_CHARS", "1500")),
                        token_delay=float(os.environ.get("HOLYSSE_FAKE_DELAY", "0.03"))).start()
    atexit.register(server.close)
    return server.url
