"""OpenTelemetry set-up of a cadenza process: the replay-safe tracer provider and the exporters.

One process-wide tracer provider (`create_tracer_provider` from temporalio.contrib.opentelemetry,
so spans in workflow code are replay-safe) is installed once, as the global provider. Span
processors are attached to it through a router, so a worker session (or a test) can add its
monitor for its lifetime and remove it after.

Exporters follow the standard OpenTelemetry variables:
- traces are exported by OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` or
  `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (or `OTEL_TRACES_EXPORTER=otlp`); `console`
  prints them; `none` turns export off;
- the protocol is `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` / `OTEL_EXPORTER_OTLP_PROTOCOL`:
  `http/protobuf` (the default, as the specification says) or `grpc`;
- `OTEL_SERVICE_NAME` names the process (default `cadenza-worker` or `cadenza-cli`);
- metrics go to OTLP the same way (`OTEL_METRICS_EXPORTER`, `..._METRICS_ENDPOINT`), and to a
  Prometheus endpoint with `cadenza worker --metrics-port`.

With payload encryption on (`CADENZA_CODEC_KEYS`), error text is as secret as the payloads it
came from: every exported span (cadenza's and Temporal's) keeps its error type but its status
description, `exception.message` and message attributes become `redacted <hmac>` (a keyed hash:
the same message gives the same tag, so failures can still be grouped), and stack traces are
dropped (`RedactingSpanExporter`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context, trace
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor, sampling
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Status
from temporalio.contrib.opentelemetry import (
    OpenTelemetryPlugin,
    ReplaySafeTracerProvider,
    create_tracer_provider,
)

from cadenza.errors import EXIT_USAGE, CadenzaError
from worker.codec import KEYS_VARIABLE, parse_keys

log = logging.getLogger("cadenza.telemetry")


class SpanRouter(SpanProcessor):
    """Forwards span events to the processors attached now (attach/detach at any time)."""

    def __init__(self) -> None:
        self._targets: tuple[SpanProcessor, ...] = ()
        self._lock = threading.Lock()

    def attach(self, processor: SpanProcessor) -> None:
        with self._lock:
            self._targets = (*self._targets, processor)

    def detach(self, processor: SpanProcessor) -> None:
        with self._lock:
            self._targets = tuple(p for p in self._targets if p is not processor)

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        for target in self._targets:
            target.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        for target in self._targets:
            target.on_end(span)

    def shutdown(self) -> None:
        for target in self._targets:
            target.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(t.force_flush(timeout_millis) for t in self._targets)


class Tracing:
    """The process's tracer provider and its router (see `install_tracing`)."""

    def __init__(self, provider: ReplaySafeTracerProvider, router: SpanRouter) -> None:
        self.provider = provider
        self.router = router
        self.exporting: str | None = None
        """What traces are exported to ("otlp http/protobuf http://...", "console"), if any."""

    def plugin(self, temporal_spans: bool = False) -> OpenTelemetryPlugin:
        """The Temporal plugin: context propagation (a step's attempts are children of its step
        span, a run's spans of its caller's), and with `temporal_spans` Temporal's own spans."""
        return OpenTelemetryPlugin(add_temporal_spans=temporal_spans)

    def flush(self) -> None:
        self.provider.force_flush(5_000)


_tracing: Tracing | None = None
_install_lock = threading.Lock()


def install_tracing(
    service_name: str = "cadenza-worker", env: Mapping[str, str] | None = None
) -> Tracing:
    """Install the replay-safe tracer provider as the global one (once per process)."""
    global _tracing
    with _install_lock:
        if _tracing is not None:
            return _tracing
        env = os.environ if env is None else env
        resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", service_name)})
        provider = create_tracer_provider(
            sampler=RecordAll(configured_sampler()), resource=resource
        )
        _memoise_tracers(provider)
        router = SpanRouter()
        provider.add_span_processor(router)
        tracing = Tracing(provider, router)
        exporter, described = span_exporter(env)
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
            tracing.exporting = described
        trace.set_tracer_provider(provider)
        _tracing = tracing
        return tracing


class RecordAll(sampling.Sampler):
    """Every span is recorded, whatever the sampler decides; the sampler decides only what is
    exported (an exporter's processor skips spans not sampled).

    The monitor counts runs and steps from span ends: under the SDK's default sampler a run
    started in a caller's trace that was sampled out (or under `OTEL_TRACES_SAMPLER=
    traceidratio`) made no recording spans, so its steps were missing from cadenza's metrics,
    baselines and alerts."""

    def __init__(self, inner: sampling.Sampler) -> None:
        self.inner = inner

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: trace.SpanKind | None = None,
        attributes: Any = None,
        links: Sequence[trace.Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> sampling.SamplingResult:
        result = self.inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )
        if result.decision is sampling.Decision.DROP:  # recorded, not exported
            return sampling.SamplingResult(
                sampling.Decision.RECORD_ONLY, attributes, result.trace_state
            )
        return result

    def get_description(self) -> str:
        return f"RecordAll{{{self.inner.get_description()}}}"


def configured_sampler() -> sampling.Sampler:
    """The sampler `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` name, as the SDK reads
    them (default: parentbased_always_on)."""
    from_env = getattr(sampling, "_get_from_env_or_default", None)
    if from_env is None:  # an SDK without it: its documented default
        return sampling.ParentBased(sampling.ALWAYS_ON)
    sampler: sampling.Sampler = from_env()
    return sampler


def _memoise_tracers(provider: ReplaySafeTracerProvider) -> None:
    """One tracer per name: Temporal's interceptors ask the provider for a tracer at every span
    and header (`trace.get_tracer`), and the SDK builds a new one each time, with a `warnings`
    filter: 0.08-0.10 ms of worker CPU per step (docs/benchmarks.md). Tracers keep no state."""
    build = provider.get_tracer
    made: dict[tuple[str, str | None, str | None], trace.Tracer] = {}

    def get_tracer(
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> trace.Tracer:
        if attributes:
            return build(name, version, schema_url, attributes)
        key = (name, version, schema_url)
        tracer = made.get(key)
        if tracer is None:
            tracer = made[key] = build(name, version, schema_url)
        return tracer

    provider.get_tracer = get_tracer  # type: ignore[method-assign,assignment]


def _protocol(env: Mapping[str, str], signal: str) -> str:
    value = env.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL") or env.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    if value not in ("http/protobuf", "grpc"):
        raise TelemetryConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={value!r} is not supported: use http/protobuf or grpc"
        )
    return value


def _chosen(env: Mapping[str, str], signal: str) -> str:
    explicit = env.get(f"OTEL_{signal}_EXPORTER")
    if explicit:
        return explicit.split(",")[0].strip().lower()
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"):
        return "otlp"
    return "none"


def traces_exported(env: Mapping[str, str] | None = None) -> bool:
    """Whether the OTEL_* variables ask for traces to be exported."""
    return _chosen(os.environ if env is None else env, "TRACES") != "none"


def span_exporter(env: Mapping[str, str]) -> tuple[SpanExporter | None, str | None]:
    """The span exporter the OTEL_* variables ask for (the exporters read their endpoint,
    headers and timeout from the same variables), redacting error text when
    `CADENZA_CODEC_KEYS` encrypts payloads."""
    exporter, described = _plain_exporter(env)
    keys = parse_keys(env.get(KEYS_VARIABLE, ""))
    if exporter is None or not keys:
        return exporter, described
    return RedactingSpanExporter(exporter, next(iter(keys.values()))), f"{described}, redacted"


def _plain_exporter(env: Mapping[str, str]) -> tuple[SpanExporter | None, str | None]:
    chosen = _chosen(env, "TRACES")
    if chosen == "none":
        return None, None
    if chosen == "console":
        return ConsoleSpanExporter(), "console"
    if chosen != "otlp":
        raise TelemetryConfigError(
            f"OTEL_TRACES_EXPORTER={chosen!r} is not supported: use otlp, console or none"
        )
    protocol = _protocol(env, "TRACES")
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT", "(default)"
    )
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        return GrpcSpanExporter(), f"otlp grpc {endpoint}"
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(), f"otlp http/protobuf {endpoint}"


SECRET_ATTRIBUTES = ("message", "exception.message", "exception.stacktrace", "error", "detail")
"""Attribute names (or `.name` endings) whose values are error text, redacted when encrypting."""


class RedactingSpanExporter(SpanExporter):
    """Exports spans with their error text replaced by a keyed hash; types stay readable."""

    def __init__(self, inner: SpanExporter, key: bytes) -> None:
        self.inner = inner
        self._key = hmac.new(key, b"cadenza span redaction", hashlib.sha256).digest()

    def redact(self, text: str) -> str:
        tag = hmac.new(self._key, text.encode("utf-8", "replace"), hashlib.sha256).hexdigest()
        return f"redacted {tag[:16]}"

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([self._span(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def _span(self, span: ReadableSpan) -> ReadableSpan:
        status = span.status
        if status.description:
            kind = (span.attributes or {}).get("cadenza.error_type") or next(
                (e.attributes.get("exception.type") for e in span.events if e.attributes), None
            )
            described = self.redact(status.description)
            status = Status(status.status_code, f"{kind}: {described}" if kind else described)
        return ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=self._attributes(span.attributes),
            events=[
                Event(e.name, self._attributes(e.attributes), e.timestamp) for e in span.events
            ],
            links=span.links,
            kind=span.kind,
            status=status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    def _attributes(self, attributes: Mapping[str, Any] | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in (attributes or {}).items():
            secret = any(name == s or name.endswith("." + s) for s in SECRET_ATTRIBUTES)
            if not secret:
                out[name] = value
            elif not name.endswith("stacktrace"):  # frames quote the message: dropped
                out[name] = self.redact(str(value))
        return out


def metric_reader(env: Mapping[str, str] | None = None) -> MetricReader | None:
    """A periodic OTLP metric reader when the OTEL_* variables ask for one."""
    env = os.environ if env is None else env
    chosen = _chosen(env, "METRICS")
    if chosen == "none":
        return None
    if chosen != "otlp":
        raise TelemetryConfigError(
            f"OTEL_METRICS_EXPORTER={chosen!r} is not supported: use otlp or none"
        )
    if _protocol(env, "METRICS") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetricExporter,
        )

        return PeriodicExportingMetricReader(GrpcMetricExporter())
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return PeriodicExportingMetricReader(OTLPMetricExporter())


class TelemetryConfigError(CadenzaError, ValueError):
    """An OTEL_* variable asks for something cadenza does not support.

    Change or unset the variable the message names.
    """

    exit_code = EXIT_USAGE
