"""holysse: stream LLM answers over Server-Sent Events, synchronously, and get
the whole answer: nothing lost, nothing repeated, whatever the network does.

::

    import holysse

    client = holysse.Client()          # $HOLYSHEEP_API_KEY, https://api.holysheep.ai/v1
    with client.stream(model="gpt-4.1", messages=[{"role": "user", "content": "Hi"}]) as stream:
        for event in stream:
            print(event.text, end="", flush=True)
    print(stream.usage, stream.finish_reason, stream.metrics)
"""

from __future__ import annotations

import logging

from ._version import __version__
from ._checkpoint import Checkpoint
from .accumulator import Accumulator, Snapshot
from .client import Client
from .stream import Stream
from .dialects.profiles import PROFILES, ProfileRule, ProviderProfile
from .events import (
    Event,
    Finished,
    Reconnecting,
    Reset,
    Resumed,
    TextDelta,
    ThinkingDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from .exceptions import (
    AuthenticationError,
    ConnectError,
    HolySSEError,
    HTTPStatusError,
    ProtocolError,
    ProviderError,
    RateLimitError,
    ReadTimeout,
    RetriesExhausted,
    StreamClosed,
    StreamDiverged,
    StreamInterrupted,
    TransportError,
    UsageError,
    WaitTimeout,
)
from .metrics import StreamMetrics, TokenCount
from .monitor import LatencyMonitor
from .pricing import Cost, Price, PriceTable
from .retry import RetryPolicy
from .transport import Timeout

__all__ = [
    "__version__",
    "Client",
    "Stream",
    "Checkpoint",
    "RetryPolicy",
    "Timeout",
    "ProviderProfile",
    "ProfileRule",
    "PROFILES",
    "PriceTable",
    "Price",
    "Cost",
    "TokenCount",
    "Accumulator",
    "Snapshot",
    "StreamMetrics",
    "LatencyMonitor",
    "Event",
    "TextDelta",
    "ThinkingDelta",
    "ToolCallDelta",
    "ToolCall",
    "Usage",
    "Finished",
    "Reconnecting",
    "Resumed",
    "Reset",
    "HolySSEError",
    "TransportError",
    "ConnectError",
    "ReadTimeout",
    "StreamInterrupted",
    "HTTPStatusError",
    "AuthenticationError",
    "RateLimitError",
    "ProtocolError",
    "ProviderError",
    "StreamDiverged",
    "StreamClosed",
    "RetriesExhausted",
    "UsageError",
    "WaitTimeout",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
