"""The public surface: exported names, the exception tree, pickling, and the
key never showing up anywhere a user or a log can see it."""

from __future__ import annotations

import logging
import pickle
import subprocess
import sys

import pytest

import holysse
from holysse import exceptions as exc
from holysse.testing import FakeServer, Fault

from .conftest import CHAT, Sleeps, make_client

KEY = "hs_" + "Zq9" * 12


def test_exported_names_are_pinned() -> None:
    assert sorted(holysse.__all__) == sorted([
        "__version__", "Client", "Stream", "RetryPolicy", "Timeout", "ProviderProfile", "PROFILES",
        "Accumulator", "Snapshot", "StreamMetrics", "Event", "TextDelta", "ThinkingDelta", "ToolCallDelta",
        "ToolCall", "Usage", "Finished", "Reconnecting", "Resumed", "Reset", "HolySSEError", "TransportError",
        "ConnectError", "ReadTimeout", "StreamInterrupted", "HTTPStatusError", "AuthenticationError",
        "RateLimitError", "ProtocolError", "ProviderError", "StreamDiverged", "StreamClosed",
        "RetriesExhausted", "UsageError", "WaitTimeout", "LatencyMonitor", "PriceTable", "Price", "Cost", "TokenCount",
        "ProfileRule", "Checkpoint",
    ])
    for name in holysse.__all__:
        assert getattr(holysse, name) is not None
    imported = subprocess.run(
        [sys.executable, "-c", "import sys, holysse; print(*(m for m in sys.modules if m.startswith('holysse')))"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    assert "holysse.client" in imported
    for optional in ("holysse.relay", "holysse.testing", "holysse.notebook", "holysse.cli"):
        assert optional not in imported  # imported explicitly only


@pytest.mark.parametrize(
    ("child", "parent"),
    [
        (exc.TransportError, exc.HolySSEError), (exc.ConnectError, exc.TransportError),
        (exc.ReadTimeout, exc.TransportError), (exc.StreamInterrupted, exc.TransportError),
        (exc.HTTPStatusError, exc.HolySSEError), (exc.RateLimitError, exc.HTTPStatusError),
        (exc.AuthenticationError, exc.HTTPStatusError), (exc.ProtocolError, exc.HolySSEError),
        (exc.ProviderError, exc.HolySSEError), (exc.StreamDiverged, exc.HolySSEError),
        (exc.StreamClosed, exc.HolySSEError), (exc.RetriesExhausted, exc.HolySSEError),
        (exc.UsageError, exc.HolySSEError), (exc.UsageError, RuntimeError), (exc.UsageError, ValueError),
        (exc.WaitTimeout, exc.HolySSEError), (exc.WaitTimeout, TimeoutError),
        (exc.TooManyStreams, exc.RelayError),
    ],
)
def test_exception_tree(child: type, parent: type) -> None:
    assert issubclass(child, parent)


def test_builtins_are_not_shadowed() -> None:
    import builtins

    assert not set(exc.__all__) & set(dir(builtins))


@pytest.mark.parametrize(
    "error",
    [
        exc.StreamInterrupted("cut", partial="abc", last_event_id="7"),
        exc.RateLimitError("429", partial="x", status_code=429, headers={"a": "b"}, request_id="r1",
                           body_excerpt="{}", retry_after=2.0),
        exc.ProviderError("boom", partial="p", error_type="overloaded_error", code="c", retryable=True),
        exc.StreamDiverged("diverged", partial="a", replayed="b"),
        exc.RetriesExhausted("gave up", partial="z", attempts=((1, "cut", 0.5),)),
        exc.UsageError("misuse"),
    ],
)
def test_exceptions_pickle_with_their_attributes(error: exc.HolySSEError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error) and copy.partial == error.partial
    assert {k: v for k, v in vars(copy).items()} == {k: v for k, v in vars(error).items()}


def test_key_never_in_repr_or_endpoint() -> None:
    client = holysse.Client(api_key=KEY, base_url="http://127.0.0.1:9/v1")
    assert KEY not in repr(client) and KEY not in repr(client.endpoint) and "key=set" in repr(client)
    stream = client.stream(**CHAT)
    assert KEY not in repr(stream)


def test_key_never_in_logs_or_errors_of_a_troubled_stream(sleeps: Sleeps, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeServer(answer_chars=400, api_key=KEY) as server:
        offsets = server.event_offsets(CHAT)
        server.set_faults([Fault.rst(offsets[8] + 3), Fault.status(503), Fault.fin(offsets[20] + 1),
                           Fault.status(401)])
        client = holysse.Client(api_key=KEY, base_url=server.url, sleep=sleeps, timeout=(2, 1))
        with pytest.raises(holysse.HTTPStatusError) as info:
            list(client.stream(**CHAT))
    reconnect_logs = [r for r in caplog.records if r.levelno == logging.INFO and "Reconnecting" in r.getMessage()]
    assert len(reconnect_logs) == 3 and all(r.name.startswith("holysse") for r in reconnect_logs)
    seen = [str(info.value), repr(info.value), repr(vars(info.value)), repr(info.value.__cause__),
            *(r.getMessage() for r in caplog.records), *(repr(r.args) for r in caplog.records)]
    assert len(caplog.records) > 5
    assert not [text for text in seen if KEY in text]


def test_insecure_http_with_a_key_is_refused_unless_allowed() -> None:
    with pytest.raises(holysse.UsageError, match="clear text"):
        holysse.Client(api_key=KEY, base_url="http://api.example.com/v1")
    holysse.Client(api_key=KEY, base_url="http://api.example.com/v1", allow_insecure_http=True).close()
    holysse.Client(api_key=KEY, base_url="http://localhost:8000/v1").close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": "gpt\r\nX-Evil: 1"}, "one-line"),
        ({"extra_headers": {"X-A": "ok\r\nX-B: injected"}}, "one-line"),
        ({"stream": False}, "always true"),
        ({"resume": "sometimes"}, "not a strategy"),
        ({"on_divergence": "ignore"}, "on_divergence"),
    ],
)
def test_bad_arguments_to_stream_are_usage_errors(server: FakeServer, kwargs: dict[str, object], match: str) -> None:
    client = make_client(server)
    body = dict(CHAT, **kwargs)
    with pytest.raises(holysse.UsageError, match=match):
        client.stream(**body)
    assert server.requests == []


def test_a_closed_stream_cannot_be_read(server: FakeServer) -> None:
    stream = make_client(server).stream(**CHAT)
    stream.close()
    with pytest.raises(holysse.UsageError, match="closed before it was read"):
        list(stream)
    assert server.requests == []
