"""Custom metrics without a server: what ctx.metrics accepts and refuses, what the monitor exports
from an attempt's span, metrics_enabled: false, and the validation of custom_metrics and tags."""

from __future__ import annotations

import math
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from activities.metrics import StepMetrics
from activities.registry import ActionError
from worker.observability.baselines import Baselines
from worker.observability.monitor import Monitor
from workflows.dsl.validate import validate_definition


def test_declared_metrics_are_recorded_by_kind() -> None:
    metrics = StepMetrics("orders", "charge", ["processed:counter", "size:histogram", "depth"])
    metrics.counter("processed")
    metrics.counter("processed", 2)
    metrics.histogram("size", 3.5)
    metrics.histogram("size", 7)
    metrics.gauge("depth", 4)
    metrics.gauge("depth", 9)
    assert metrics.recorded() == {
        "processed": ("counter", 3.0),
        "size": ("histogram", [3.5, 7.0]),
        "depth": ("gauge", 9.0),
    }


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda m: m.counter("nope"), "'nope' is not declared by step 'charge' (declared: depth, "),
        (lambda m: m.histogram("processed", 1), "is a counter; record it with ctx.metrics.counter"),
        (lambda m: m.counter("processed", -1), "a counter only goes up"),
        (lambda m: m.counter("processed", math.nan), "must be finite"),
        (lambda m: m.gauge("depth", math.inf), "must be finite"),
        (lambda m: m.histogram("size", 10**400), "must be finite"),
        (lambda m: m.gauge("depth", "7"), "must be a number"),
        (lambda m: m.counter("processed", True), "must be a number"),
    ],
)
def test_bad_recordings_are_non_retryable_action_errors(call: Any, says: str) -> None:
    metrics = StepMetrics("orders", "charge", ["processed:counter", "size:histogram", "depth"])
    with pytest.raises(ActionError) as raised:
        call(metrics)
    assert says in str(raised.value)
    assert raised.value.non_retryable


def test_an_undeclared_kind_is_fixed_by_the_first_recording() -> None:
    metrics = StepMetrics("orders", "charge", ["depth"])
    metrics.gauge("depth", 1)
    with pytest.raises(ActionError, match="is a gauge"):
        metrics.counter("depth")


def test_a_step_without_declarations_refuses_every_name() -> None:
    with pytest.raises(ActionError, match=r"\(declared: none\)"):
        StepMetrics("orders", "charge").counter("x")


def monitored() -> tuple[TracerProvider, Monitor, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    monitor = Monitor(MeterProvider(metric_readers=[reader]), Baselines())
    tracing = TracerProvider()
    tracing.add_span_processor(monitor)
    return tracing, monitor, reader


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


def attempt(tracing: TracerProvider, metrics: StepMetrics) -> None:
    with tracing.get_tracer("cadenza").start_as_current_span("cadenza.attempt"):
        metrics.publish()


def test_the_monitor_exports_an_attempts_metrics_with_workflow_and_step() -> None:
    tracing, monitor, reader = monitored()
    metrics = StepMetrics("orders", "charge", ["processed:counter", "size:histogram", "depth"])
    metrics.counter("processed", 2)
    metrics.histogram("size", 3)
    metrics.histogram("size", 5)
    metrics.gauge("depth", 4)
    attempt(tracing, metrics)
    metrics.counter("processed")  # a second attempt adds to the same series
    attempt(tracing, metrics)
    found = points(reader)
    where = {"workflow": "orders", "step": "charge"}
    assert [(dict(p.attributes), p.value) for p in found["processed"]] == [(where, 3)]
    (size,) = found["size"]
    assert dict(size.attributes) == where and size.count == 2 and size.sum == 8
    assert [p.value for p in found["depth"]] == [4]
    assert monitor.counted["custom"] == 4


def test_metrics_enabled_false_publishes_nothing() -> None:
    tracing, monitor, reader = monitored()
    metrics = StepMetrics("orders", "charge", ["processed:counter"], enabled=False)
    metrics.counter("processed")  # still checked ...
    with pytest.raises(ActionError):
        metrics.counter("other")
    attempt(tracing, metrics)  # ... and never published
    assert "processed" not in points(reader) and monitor.counted["custom"] == 0


def test_a_name_recorded_as_two_kinds_keeps_the_first() -> None:
    tracing, monitor, reader = monitored()
    first = StepMetrics("a", "s", ["n:counter"])
    first.counter("n")
    attempt(tracing, first)
    second = StepMetrics("b", "s", ["n:gauge"])
    second.gauge("n", 5)
    attempt(tracing, second)
    assert [p.value for p in points(reader)["n"]] == [1]
    assert monitor.counted["custom_dropped"] == 1


def definition(**fields: Any) -> dict[str, Any]:
    step = {"step_id": "charge", "action": "std.echo", **fields.pop("step", {})}
    return {"workflow_id": "orders", "steps": [step], **fields}


@pytest.mark.parametrize(
    ("fields", "path", "says"),
    [
        ({"step": {"custom_metrics": ["Bad-Name"]}}, "custom_metrics[0]", "is not valid"),
        ({"step": {"custom_metrics": ["x:summary"]}}, "custom_metrics[0]", "unknown kind"),
        ({"step": {"custom_metrics": ["x", "x:counter"]}}, "custom_metrics[1]", "declared twice"),
        ({"step": {"custom_metrics": ["cadenza_runs"]}}, "custom_metrics[0]", "cadenza's own"),
        ({"step": {"custom_metrics": [f"m{i}" for i in range(21)]}}, "custom_metrics", "at most"),
        ({"tags": ["ok", " padded"]}, "tags[1]", "spaces"),
        ({"tags": ["it's"]}, "tags[0]", "quote"),
        ({"tags": ["a", "a"]}, "tags[1]", "twice"),
        ({"tags": ["x" * 65]}, "tags[0]", "at most 64"),
        ({"tags": [f"t{i}" for i in range(21)]}, "tags", "at most 20"),
    ],
)
def test_validation_refuses_bad_metrics_and_tags(fields: Any, path: str, says: str) -> None:
    report = validate_definition(definition(**fields))
    assert not report.ok
    (problem,) = report.errors
    assert problem.path.endswith(path) and says in problem.message
    assert problem.code in ("invalid_metric", "invalid_tag")


def test_custom_metrics_on_a_step_without_an_action_are_refused() -> None:
    report = validate_definition(
        {
            "workflow_id": "w",
            "steps": [
                {
                    "step_id": "p",
                    "step_type": "parallel",
                    "custom_metrics": ["n"],
                    "parallel_steps": [{"step_id": "c", "action": "std.echo"}],
                }
            ],
        }
    )
    assert [d.code for d in report.errors] == ["invalid_metric"]
    assert "runs no action" in report.errors[0].message


def test_good_metrics_and_tags_validate() -> None:
    report = validate_definition(
        definition(
            tags=["billing", "team:payments"],
            step={"custom_metrics": ["processed:counter", "size:histogram", "depth:gauge", "n"]},
        )
    )
    assert report.ok, report.summary()
