"""holysse.testing: a fault-injecting fake LLM server for tests, the demo and
benchmarks. Standard library only.

::

    from holysse.testing import FakeServer, Fault

    with FakeServer(answer_chars=600) as server:
        body = {"model": "fake-1", "messages": [{"role": "user", "content": "Hi"}], "seed": 1}
        server.set_faults([Fault.rst(server.event_offsets(body)[20] + 3)])
        ...  # stream from server.url; the first connection is reset mid-event
        assert stream_text == server.expected_text(body)

Modules: :mod:`~holysse.testing.server` (lifecycle), ``handler`` (routing,
resume, fault application), ``connection`` (HTTP/1.1 on a raw socket),
``framing`` (SSE bytes, chunked/gzip framing, cut offsets), ``dialects``
(the three wire shapes), ``generation`` (reading request bodies),
``model`` (the deterministic fake model), ``faults`` (the fault plan),
``chaos`` (:class:`RandomFaults`, a reproducible random fault plan),
``memory`` (:class:`MemoryTransport`: scripted connections without sockets,
plugged into ``Client(transport=...)``).
"""

from __future__ import annotations

from .chaos import RandomFaults
from .faults import Fault
from .memory import MemoryTransport, Reply
from .model import FakeModel
from .server import FakeServer
from .state import RecordedRequest

__all__ = ["FakeServer", "Fault", "FakeModel", "MemoryTransport", "RandomFaults", "RecordedRequest", "Reply"]
