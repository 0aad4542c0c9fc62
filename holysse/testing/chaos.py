"""A random but reproducible fault plan, for concurrency tests and soaks.

:class:`RandomFaults` is a callable fault plan (``FakeServer(faults=...)``):
each streaming request gets a fault drawn from a generator seeded with the
plan's seed, the stream's key (a body field, ``user`` by default) and the
attempt number, so the same streams meet the same faults in any thread
order. After ``max_faults`` faults a stream is left alone, so it can finish.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Mapping

from .faults import Fault
from .state import RecordedRequest

__all__ = ["RandomFaults", "DEFAULT_MIX"]

#: Relative weights of the fault kinds: cuts (FIN, RST, stall) and statuses.
DEFAULT_MIX: Mapping[str, float] = {"fin": 1, "rst": 1, "stall": 1, "429": 1, "5xx": 1}


class RandomFaults:
    """Faults at random: cuts at a random payload offset, 429 or 5xx.

    :param seed: seeds every draw.
    :param rate: the chance that an attempt gets a fault.
    :param max_faults: faults per stream at most.
    :param span: cut offsets are drawn from ``[1, span)`` payload bytes.
    :param mix: weights per kind: ``fin``, ``rst``, ``stall`` (silent until
        the client gives up), ``429`` (with ``Retry-After``), ``5xx`` (500,
        502 or 503).
    :param key: the request-body field naming the stream.
    :param retry_after: the ``Retry-After`` of a 429, in seconds.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        rate: float = 0.5,
        max_faults: int = 3,
        span: int = 4000,
        mix: Mapping[str, float] = DEFAULT_MIX,
        key: str = "user",
        retry_after: int = 1,
    ) -> None:
        unknown = set(mix) - set(DEFAULT_MIX)
        if unknown or not mix:
            raise ValueError(f"mix takes weights for {sorted(DEFAULT_MIX)}, got {sorted(mix)}.")
        if not 0 <= rate <= 1 or max_faults < 0 or span < 2:
            raise ValueError("rate must be within [0, 1], max_faults >= 0 and span >= 2.")
        self._seed = seed
        self._rate = rate
        self._max_faults = max_faults
        self._span = span
        self._kinds = list(mix)
        self._weights = [mix[kind] for kind in self._kinds]
        self._key = key
        self._retry_after = retry_after
        self._lock = threading.Lock()
        self._attempts: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()
        #: Faults handed out, per kind.
        self.injected: Counter[str] = Counter()

    def __call__(self, request: RecordedRequest) -> Fault | None:
        body = request.body if isinstance(request.body, dict) else {}
        stream = str(body.get(self._key))
        with self._lock:
            attempt = self._attempts[stream]
            self._attempts[stream] += 1
            if self._faults[stream] >= self._max_faults:
                return None
        rng = random.Random(f"{self._seed}/{stream}/{attempt}")
        if rng.random() >= self._rate:
            return None
        kind = rng.choices(self._kinds, self._weights)[0]
        with self._lock:
            self._faults[stream] += 1
            self.injected[kind] += 1
        if kind == "429":
            return Fault.status(429, retry_after=self._retry_after)
        if kind == "5xx":
            return Fault.status(rng.choice((500, 502, 503)))
        cut = {"fin": Fault.fin, "rst": Fault.rst, "stall": Fault.stall}[kind]
        return cut(rng.randrange(1, self._span))

    @property
    def total(self) -> int:
        """Faults handed out so far."""
        return sum(self.injected.values())
