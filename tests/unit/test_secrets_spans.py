"""With payload encryption on, exported spans carry error types and keyed hashes of error
messages, never the plaintext: step failures, recorded exceptions (Temporal's spans record
them), alert messages."""

from __future__ import annotations

import base64
import json
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from worker.observability.tracing import RedactingSpanExporter, span_exporter

SECRET = "card 4111-1111-1111-1111 of alice@example.com"
KEYS = "k1:" + base64.b64encode(b"k" * 32).decode()


def emit(exporter: SpanExporter) -> list[dict[str, Any]]:
    """A failed step, an exception recorded by a span (as Temporal's do) and an alert, as the
    exporter hands them on."""
    memory = InMemorySpanExporter()
    if isinstance(exporter, RedactingSpanExporter):
        exporter.inner = memory
    else:
        exporter = memory
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("cadenza.step") as span:
        span.set_attribute("cadenza.error_type", "PaymentDeclined")
        span.set_status(Status(StatusCode.ERROR, f"declined: {SECRET}"))
    try:
        with tracer.start_as_current_span("RunActivity:charge"):
            raise ValueError(f"charging {SECRET} failed")
    except ValueError:
        pass
    with tracer.start_as_current_span(
        "cadenza.alert", attributes={"cadenza.alert.message": f"run failed: {SECRET}"}
    ) as span:
        span.add_event("alert", attributes={"cadenza.alert.message": f"run failed: {SECRET}"})
    provider.shutdown()
    return [json.loads(s.to_json()) for s in memory.get_finished_spans()]


def exporter(env: dict[str, str]) -> SpanExporter:
    chosen, described = span_exporter({"OTEL_TRACES_EXPORTER": "console", **env})
    assert chosen is not None and described is not None
    return chosen


def test_without_keys_spans_keep_their_messages() -> None:
    plain = exporter({})
    assert not isinstance(plain, RedactingSpanExporter)
    assert SECRET in json.dumps(emit(plain))  # what the redaction is for


def test_with_keys_exported_spans_hold_types_and_hashes_not_messages() -> None:
    spans = emit(exporter({"CADENZA_CODEC_KEYS": KEYS}))
    out = json.dumps(spans)
    assert "4111" not in out and "alice" not in out, out
    step, activity, alert = spans
    assert step["status"]["description"].startswith("PaymentDeclined: redacted ")
    exception = activity["events"][0]["attributes"]
    assert exception["exception.type"] == "ValueError"
    assert exception["exception.message"].startswith("redacted ")
    assert "exception.stacktrace" not in exception
    assert activity["status"]["description"].startswith("ValueError: redacted ")
    assert alert["attributes"]["cadenza.alert.message"].startswith("redacted ")
    assert alert["events"][0]["attributes"]["cadenza.alert.message"].startswith("redacted ")


def test_the_same_message_gives_the_same_tag_and_the_key_matters() -> None:
    a = RedactingSpanExporter(ConsoleSpanExporter(), b"1" * 32)
    b = RedactingSpanExporter(a.inner, b"2" * 32)
    assert a.redact(SECRET) == a.redact(SECRET) != a.redact(SECRET + ".")
    assert a.redact(SECRET) != b.redact(SECRET)
