"""The monitor sees every span whatever the trace sampling; exporters see the sampled ones."""

from __future__ import annotations

from opentelemetry import context as otel_context, trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider, sampling
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from worker.observability.tracing import RecordAll, configured_sampler, install_tracing


class Ended(SpanProcessor):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def _provider(inner: sampling.Sampler) -> tuple[TracerProvider, Ended, InMemorySpanExporter]:
    provider = TracerProvider(sampler=RecordAll(inner))
    ended, exported = Ended(), InMemorySpanExporter()
    provider.add_span_processor(ended)
    provider.add_span_processor(SimpleSpanProcessor(exported))
    return provider, ended, exported


def _under(sampled: bool) -> otel_context.Context:
    flags = trace.TraceFlags(trace.TraceFlags.SAMPLED if sampled else trace.TraceFlags.DEFAULT)
    parent = trace.SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=flags)
    return trace.set_span_in_context(trace.NonRecordingSpan(parent))


def test_a_run_in_a_sampled_out_trace_is_recorded_for_the_monitor_not_exported() -> None:
    provider, ended, exported = _provider(sampling.ParentBased(sampling.ALWAYS_ON))
    tracer = provider.get_tracer("cadenza")
    run = tracer.start_span("cadenza.run", _under(sampled=False), attributes={"a": 1})
    step = tracer.start_span("cadenza.step", trace.set_span_in_context(run))
    step.end()
    run.end()
    assert [(s.name, dict(s.attributes or {})) for s in ended.spans] == [
        ("cadenza.step", {}),
        ("cadenza.run", {"a": 1}),
    ]
    assert exported.get_finished_spans() == ()


def test_sampled_spans_are_recorded_and_exported_as_before() -> None:
    provider, ended, exported = _provider(sampling.ParentBased(sampling.ALWAYS_ON))
    provider.get_tracer("cadenza").start_span("cadenza.run", _under(sampled=True)).end()
    assert len(ended.spans) == 1 and len(exported.get_finished_spans()) == 1


def test_a_ratio_sampler_decides_what_is_exported_only() -> None:
    provider, ended, exported = _provider(sampling.TraceIdRatioBased(0.0))
    for _ in range(20):
        provider.get_tracer("cadenza").start_span("cadenza.step").end()
    assert len(ended.spans) == 20 and exported.get_finished_spans() == ()


def test_the_worker_provider_records_spans_of_sampled_out_traces() -> None:
    tracer = install_tracing("cadenza-test").provider.get_tracer("cadenza")
    span = tracer.start_span("cadenza.step", _under(sampled=False))
    assert span.is_recording() and not span.get_span_context().trace_flags.sampled
    span.end()
    assert isinstance(RecordAll(configured_sampler()).inner, sampling.Sampler)
