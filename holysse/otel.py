"""OpenTelemetry for holysse streams, following the GenAI semantic conventions.

::

    import holysse.otel
    holysse.otel.instrument()      # the global tracer and meter providers, or pass your own

After :func:`instrument`, every stream is one ``CLIENT`` span named ``chat
{model}`` with ``gen_ai.operation.name``, ``gen_ai.provider.name`` (and the
older ``gen_ai.system``), ``gen_ai.request.model`` and the request parameters
(``max_tokens``, ``temperature``, ``top_p``, ``top_k``, ``seed``,
``frequency_penalty``, ``presence_penalty``, ``stop_sequences``),
``server.address`` and ``server.port``; when it ends, ``gen_ai.response.id``,
``gen_ai.response.model``, ``gen_ai.response.finish_reasons`` (portable),
``gen_ai.usage.input_tokens`` and ``gen_ai.usage.output_tokens`` of the
answer, and ``error.type`` (the exception's class name) when it failed. A
span event marks each reconnect (``holysse.reconnect``: attempt, delay,
reason), each resume after part of the answer arrived (``holysse.resume``:
strategy, characters re-sent, wasted output tokens) and each reset
(``holysse.reset``).

Metrics: the histograms ``gen_ai.client.operation.duration`` (s),
``gen_ai.client.token.usage`` ({token}, billed input and output, resume
waste included), ``gen_ai.client.operation.time_to_first_chunk`` (s) and
``gen_ai.client.operation.time_per_output_chunk`` (s, each gap between
answer chunks), and the counter ``holysse.client.reconnects``.

Only ``opentelemetry-api`` is needed (``pip install 'holysse[otel]'``); when
it is not installed :func:`instrument` does nothing and returns ``False``.
This module is imported only when you import it.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Generator
from urllib.parse import urlsplit

from . import _hooks
from .events import Reconnecting, Reset, Resumed
from .metrics import StreamMetrics

__all__ = ["instrument", "uninstrument", "SCOPE"]

logger = logging.getLogger(__name__)

#: The instrumentation scope name of holysse's tracer and meter.
SCOPE = "holysse"

#: Request fields reported as ``gen_ai.request.*``.
_PARAMETERS = {
    "max_tokens": "gen_ai.request.max_tokens", "max_completion_tokens": "gen_ai.request.max_tokens",
    "max_output_tokens": "gen_ai.request.max_tokens", "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p", "top_k": "gen_ai.request.top_k", "seed": "gen_ai.request.seed",
    "frequency_penalty": "gen_ai.request.frequency_penalty", "presence_penalty": "gen_ai.request.presence_penalty",
    "n": "gen_ai.request.choice.count",
}
_PROVIDERS = (("anthropic", "anthropic"), ("openai.azure", "azure.ai.openai"), ("openai", "openai"),
              ("deepseek", "deepseek"), ("mistral", "mistral_ai"), ("groq", "groq"), ("x.ai", "x_ai"),
              ("perplexity", "perplexity"), ("googleapis", "gcp.gemini"), ("cohere", "cohere"))
_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
_CHUNK_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


def instrument(tracer_provider: Any = None, meter_provider: Any = None) -> bool:
    """Trace and measure every holysse stream from now on (all clients).

    :param tracer_provider: an OpenTelemetry ``TracerProvider`` (default: the global one).
    :param meter_provider: a ``MeterProvider`` (default: the global one).
    :returns: ``False`` (and nothing changes) when ``opentelemetry-api`` is not installed.
    """
    try:
        from opentelemetry import metrics, trace
    except ImportError:
        logger.debug("opentelemetry-api is not installed; holysse.otel.instrument() does nothing")
        return False
    _hooks.stream_hook = _Telemetry(trace.get_tracer(SCOPE, tracer_provider=tracer_provider),
                                    metrics.get_meter(SCOPE, meter_provider=meter_provider)).observe
    return True


def uninstrument() -> None:
    """Stop tracing streams that start from now on."""
    _hooks.stream_hook = None


def provider_name(url: str, dialect: str) -> str:
    """``gen_ai.provider.name`` for a request to ``url`` in ``dialect``: the
    well-known name when the host says it, else the dialect's vendor."""
    host = (urlsplit(url).hostname or "").lower()
    for marker, name in _PROVIDERS:
        if marker in host:
            return name
    return "anthropic" if dialect == "anthropic" else "openai"


class _Telemetry:
    """The tracer and instruments, and the stream hook using them."""

    def __init__(self, tracer: Any, meter: Any) -> None:
        self.tracer = tracer
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS)
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS)
        self.first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk", unit="s",
            description="Time to receive the first chunk of the answer", explicit_bucket_boundaries_advisory=_CHUNK_BUCKETS)
        self.per_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_per_output_chunk", unit="s",
            description="Time between consecutive answer chunks", explicit_bucket_boundaries_advisory=_CHUNK_BUCKETS)
        self.reconnects = meter.create_counter(
            "holysse.client.reconnects", unit="{reconnect}", description="Reconnects of holysse streams")

    def observe(self, stream: Any, request: Any, dialect: str, events: Generator[Any, None, None]
                ) -> Generator[Any, None, None]:
        """The stream hook: the same events, inside a span."""
        from opentelemetry.trace import SpanKind, Status, StatusCode

        common = _common(request, dialect)
        span = self.tracer.start_span(f"chat {common.get('gen_ai.request.model', '')}".rstrip(),
                                      kind=SpanKind.CLIENT, attributes={**common, **_parameters(request.json)})
        error: str | None = None
        try:
            for event in events:
                kind = type(event)
                if kind is Reconnecting:
                    span.add_event("holysse.reconnect", {"holysse.attempt": event.attempt,
                                                         "holysse.delay": event.delay, "holysse.reason": event.reason})
                elif kind is Resumed:
                    self.reconnects.add(1, {**common, "holysse.strategy": event.strategy})
                    if event.strategy != "retry":  # a plain retry resumes nothing
                        span.add_event("holysse.resume", {
                            "holysse.strategy": event.strategy, "holysse.resent_chars": event.resent_chars,
                            "holysse.wasted_output_tokens": stream.metrics.wasted_output_tokens})
                elif kind is Reset:
                    span.add_event("holysse.reset", {"holysse.reason": event.reason,
                                                     "holysse.withdrawn_chars": len(event.delivered)})
                yield event
        except GeneratorExit:
            error = "StreamClosed"  # the consumer stopped reading
            raise
        except BaseException as exc:
            error = type(exc).__name__
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
            raise
        finally:
            events.close()
            try:
                self._end(span, stream, common, error)
            except Exception:  # telemetry must never break a stream
                logger.debug("Could not record the telemetry of a stream", exc_info=True)

    def _end(self, span: Any, stream: Any, common: dict[str, Any], error: str | None) -> None:
        metrics: StreamMetrics = stream.metrics
        outcome: dict[str, Any] = {}
        if stream.model:
            outcome["gen_ai.response.model"] = stream.model
        if error is not None:
            outcome["error.type"] = error
        usage = stream.usage
        ended = {**outcome, "holysse.reconnects": metrics.total_reconnects,
                 "holysse.wasted_output_tokens": metrics.wasted_output_tokens}
        if stream.id:
            ended["gen_ai.response.id"] = stream.id
        if stream.finish_reason:
            ended["gen_ai.response.finish_reasons"] = [stream.finish_reason]
        if usage is not None and usage.input_tokens is not None:
            ended["gen_ai.usage.input_tokens"] = usage.input_tokens
        if usage is not None and usage.output_tokens is not None:
            ended["gen_ai.usage.output_tokens"] = usage.output_tokens
        span.set_attributes(ended)
        span.end()
        attributes = {**common, **outcome}
        duration = metrics.duration if metrics.duration is not None else time.monotonic() - metrics.started
        self.duration.record(duration, attributes)
        if metrics.ttft is not None:
            self.first_chunk.record(metrics.ttft, attributes)
        for gap in metrics.gaps:
            self.per_chunk.record(gap, attributes)
        billed = ((metrics.billed_input_tokens, "input"), (metrics.billed_output_tokens, "output"))
        if any(count for count, _ in billed):
            for count, token_type in billed:
                self.tokens.record(count, {**attributes, "gen_ai.token.type": token_type})


def _common(request: Any, dialect: str) -> dict[str, Any]:
    """The attributes of both the span and the metrics."""
    parts = urlsplit(request.url)
    body = request.json if isinstance(request.json, dict) else {}
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider_name(request.url, dialect),
        "gen_ai.system": provider_name(request.url, dialect),
        "server.address": parts.hostname or "",
        "server.port": parts.port or (443 if parts.scheme == "https" else 80),
    }
    if isinstance(body.get("model"), str):
        attributes["gen_ai.request.model"] = body["model"]
    return attributes


def _parameters(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        return {}
    found: dict[str, Any] = {}
    for field, name in _PARAMETERS.items():
        value = body.get(field)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and name not in found:
            found[name] = value
    stop = body.get("stop", body.get("stop_sequences"))
    if isinstance(stop, str):
        stop = [stop]
    if isinstance(stop, list) and stop and all(isinstance(item, str) for item in stop):
        found["gen_ai.request.stop_sequences"] = stop
    return found
