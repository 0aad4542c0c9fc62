"""The fake server's shared state: its options, the requests it recorded, the
answers it generated and the generations it keeps for resumes.

Everything here is guarded by locks; handler threads share one
:class:`ServerState`.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from .faults import FaultPlan
from .recorded import RecordedRequest
from .generation import Generation
from .model import FakeModel

__all__ = ["Options", "RecordedRequest", "GenerationStore", "ServerState"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Options:
    """How the fake server behaves (see :class:`~holysse.testing.FakeServer`)."""

    answer_chars: int = 1200
    ids: bool = True
    resume: bool = True
    prefill: bool = True
    chunked: bool = True
    gzip: bool = False
    token_delay: float = 0.0
    ttfb: float = 0.0
    api_key: str | None = field(default=None, repr=False)
    keepalive_comments: bool = False
    token_scale: int = 1
    sse_retry: int | None = None


class GenerationStore:
    """Generations kept for resumes, bounded by count and by total characters
    (the oldest go first).

    :param max_entries: most generations kept.
    :param max_chars: most characters of text kept over all generations.
    """

    def __init__(self, max_entries: int = 10_000, max_chars: int = 20_000_000) -> None:
        self._items: OrderedDict[str, Generation] = OrderedDict()
        self._chars = 0
        self._max_entries = max_entries
        self._max_chars = max_chars
        self._lock = threading.Lock()

    @staticmethod
    def _size(gen: Generation) -> int:
        return len(gen.text) + len(gen.thinking) + sum(len(c.arguments) for c in gen.tool_calls) + 200

    def put(self, gen: Generation) -> None:
        """Keep ``gen`` under its ``gen_id``."""
        with self._lock:
            self._items[gen.gen_id] = gen
            self._chars += self._size(gen)
            while self._items and (len(self._items) > self._max_entries or self._chars > self._max_chars):
                _, old = self._items.popitem(last=False)
                self._chars -= self._size(old)

    def get(self, gen_id: str) -> Generation | None:
        """The generation stored under ``gen_id``, if still kept."""
        with self._lock:
            return self._items.get(gen_id)

    def clear(self) -> None:
        """Forget every generation."""
        with self._lock:
            self._items.clear()
            self._chars = 0


class ServerState:
    """State shared by every connection of one server.

    :param options: the server's options.
    :param model: the fake model.
    :param plan: the fault plan.
    """

    def __init__(self, options: Options, model: FakeModel, plan: FaultPlan) -> None:
        self.options = options
        self.model = model
        self.plan = plan
        self.store = GenerationStore()
        #: Set when the server shuts down.
        self.closing = threading.Event()
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._answers: list[str] = []
        self._generations = 0
        self._random = random.Random()

    def record(self, method: str, path: str, query: dict[str, str], headers: list[tuple[str, str]],
               raw_body: bytes, body: Any) -> RecordedRequest:
        """Record a request in arrival order and return it."""
        merged: dict[str, str] = {}
        for name, value in headers:
            merged[name] = f"{merged[name]}, {value}" if name in merged else value
        with self._lock:
            recorded = RecordedRequest(method, path, query, merged, body, raw_body, len(self._requests))
            self._requests.append(recorded)
        return recorded

    def add_answer(self, text: str) -> None:
        """Record an answer the model generated."""
        with self._lock:
            self._answers.append(text)

    def new_gen_id(self) -> str:
        """A fresh generation id: 24 hex digits (fixed width, so offsets computed
        with a placeholder id are exact)."""
        with self._lock:
            self._generations += 1
            return f"{self._generations:08x}{self._random.getrandbits(64):016x}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the recorded requests."""
        with self._lock:
            return list(self._requests)

    @property
    def answers(self) -> list[str]:
        """A copy of the generated answers."""
        with self._lock:
            return list(self._answers)
