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
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping

from opentelemetry import context as otel_context, trace
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from temporalio.contrib.opentelemetry import (
    OpenTelemetryPlugin,
    ReplaySafeTracerProvider,
    create_tracer_provider,
)

from cadenza.errors import EXIT_USAGE, CadenzaError

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

    def plugin(self) -> OpenTelemetryPlugin:
        """The Temporal plugin: context propagation and Temporal's own spans."""
        return OpenTelemetryPlugin(add_temporal_spans=True)

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
        provider = create_tracer_provider(resource=resource)
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
    headers and timeout from the same variables)."""
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
