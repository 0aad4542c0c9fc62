"""OpenTelemetry: one GenAI span per stream with a span event per reconnect,
resume and reset, the GenAI client histograms and a reconnect counter; a
no-op when opentelemetry is not installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

import holysse
import holysse.otel
from holysse.testing import FakeServer, Fault

from .conftest import CHAT, Sleeps, make_client

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace", reason="needs opentelemetry-sdk (the test extra)")
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HISTOGRAMS = {"gen_ai.client.operation.duration", "gen_ai.client.token.usage",
              "gen_ai.client.operation.time_to_first_chunk", "gen_ai.client.operation.time_per_output_chunk"}


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        tracer_provider = sdk_trace.TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        assert holysse.otel.instrument(tracer_provider=tracer_provider, meter_provider=self.meter_provider)

    def metrics(self) -> dict[str, list[Any]]:
        data = self.reader.get_metrics_data()
        found: dict[str, list[Any]] = {}
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found[metric.name] = list(metric.data.data_points)
        return found


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    recorded = Telemetry()
    try:
        yield recorded
    finally:
        holysse.otel.uninstrument()
        recorded.meter_provider.shutdown()


def test_a_stream_with_two_reconnects_is_one_span_with_three_events_and_the_genai_metrics(
    server: FakeServer, sleeps: Sleeps, telemetry: Telemetry
) -> None:
    body = dict(CHAT, temperature=0.5, max_tokens=4000, top_p=0.9, stop=["\n\n\n"])
    offsets = server.event_offsets({**body, "stream_options": {"include_usage": True}})
    server.set_faults([Fault.status(429), Fault.rst(offsets[len(offsets) // 2] + 3)])
    stream = make_client(server, sleeps).stream(**body)
    assert stream.final().text == server.expected_text(body)
    assert stream.metrics.reconnects == {"retry": 1, "cursor": 1}

    (span,) = telemetry.spans.get_finished_spans()
    assert span.name == "chat fake-1" and span.kind is SpanKind.CLIENT and span.status.status_code is StatusCode.UNSET
    attributes = dict(span.attributes)
    port = int(server.url.split(":")[2].split("/")[0])
    assert attributes == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.system": "openai",
        "gen_ai.request.model": "fake-1", "gen_ai.request.temperature": 0.5, "gen_ai.request.max_tokens": 4000,
        "gen_ai.request.top_p": 0.9, "gen_ai.request.seed": 3, "gen_ai.request.stop_sequences": ("\n\n\n",),
        "server.address": "127.0.0.1", "server.port": port,
        "gen_ai.response.id": stream.id, "gen_ai.response.model": "fake-1",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": stream.usage.input_tokens, "gen_ai.usage.output_tokens": stream.usage.output_tokens,
        "holysse.reconnects": 2, "holysse.wasted_output_tokens": 0,
    }
    assert [event.name for event in span.events] == ["holysse.reconnect", "holysse.reconnect", "holysse.resume"]
    assert "429" in span.events[0].attributes["holysse.reason"]
    assert span.events[2].attributes["holysse.strategy"] == "cursor"

    points = telemetry.metrics()
    assert HISTOGRAMS <= set(points)
    (duration,) = points["gen_ai.client.operation.duration"]
    assert duration.count == 1 and duration.sum == pytest.approx(stream.metrics.duration)
    assert duration.attributes["gen_ai.request.model"] == "fake-1" and "error.type" not in duration.attributes
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in points["gen_ai.client.token.usage"]}
    assert tokens == {"input": stream.metrics.billed_input_tokens, "output": stream.metrics.billed_output_tokens}
    (first,) = points["gen_ai.client.operation.time_to_first_chunk"]
    assert first.sum == pytest.approx(stream.metrics.ttft)
    (per_chunk,) = points["gen_ai.client.operation.time_per_output_chunk"]
    assert per_chunk.count == len(stream.metrics.gaps) > 10
    reconnects = {p.attributes["holysse.strategy"]: p.value for p in points["holysse.client.reconnects"]}
    assert reconnects == {"retry": 1, "cursor": 1}


def test_a_failed_stream_records_error_type(server: FakeServer, sleeps: Sleeps, telemetry: Telemetry) -> None:
    server.set_faults([Fault.status(401)])
    with pytest.raises(holysse.AuthenticationError):
        list(make_client(server, sleeps, dialect="anthropic").stream(**CHAT, max_tokens=100))
    (span,) = telemetry.spans.get_finished_spans()
    assert span.attributes["error.type"] == "AuthenticationError" and span.status.status_code is StatusCode.ERROR
    assert span.attributes["gen_ai.provider.name"] == "anthropic"
    (duration,) = telemetry.metrics()["gen_ai.client.operation.duration"]
    assert duration.attributes["error.type"] == "AuthenticationError"


def test_a_reset_is_a_span_event(sleeps: Sleeps, telemetry: Telemetry) -> None:
    body = {"model": "fake-1", "messages": [{"role": "user", "content": "Be creative."}], "temperature": 1.0}
    with FakeServer(answer_chars=500, ids=False) as srv:
        srv.set_faults([Fault.fin(4000)])
        stream = make_client(srv, sleeps, resume="replay").stream(**body)
        for _ in stream:
            pass
    (span,) = telemetry.spans.get_finished_spans()
    assert [event.name for event in span.events] == ["holysse.reconnect", "holysse.resume", "holysse.reset"]
    assert span.events[2].attributes["holysse.withdrawn_chars"] > 0


def test_breaking_out_ends_the_span(server: FakeServer, telemetry: Telemetry) -> None:
    stream = make_client(server).stream(**CHAT)
    for event in stream:
        if event.text:
            break
    del event
    stream.close()
    (span,) = telemetry.spans.get_finished_spans()
    assert span.attributes["error.type"] == "StreamClosed"


BLOCKED = """
import json, sys
for name in ("opentelemetry", "opentelemetry.trace", "opentelemetry.metrics"):
    sys.modules[name] = None  # opentelemetry-api is not installed, as far as this process can tell
import holysse, holysse.otel
turned_on = holysse.otel.instrument()
client = holysse.Client(api_key="hs_" + "o" * 32, base_url=sys.argv[1])
text = client.stream(model="fake-1", messages=[{"role": "user", "content": "Hi"}], seed=1).final().text
print(json.dumps({"turned_on": turned_on, "text": text,
                  "imported": [m for m, v in sys.modules.items() if m.startswith("opentelemetry") and v is not None]}))
"""


def test_without_opentelemetry_nothing_changes_and_nothing_is_imported() -> None:
    with FakeServer(answer_chars=300) as server:
        done = subprocess.run([sys.executable, "-c", BLOCKED, server.url], capture_output=True, text=True,
                              timeout=60, check=False, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        expected = server.expected_text({"model": "fake-1", "messages": [{"role": "user", "content": "Hi"}],
                                         "seed": 1, "stream_options": {"include_usage": True}})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result == {"turned_on": False, "text": expected, "imported": []}
