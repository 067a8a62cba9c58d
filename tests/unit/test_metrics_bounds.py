"""A long-lived worker's monitor stays bounded (issue 18, item 8): 100,000 distinct workflow and
step names make at most the bounded number of series (the rest counted as `other`), and the
baselines keep at most `max_keys` keys, in bounded memory."""

from __future__ import annotations

import tracemalloc
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import SpanContext, TraceFlags

from activities.metrics import E_KIND, E_NAME, E_STEP, E_VALUE, E_WORKFLOW, METRIC_EVENT
from worker.observability.baselines import Baselines
from worker.observability.monitor import OTHER, LabelBounds, Monitor
from workflows.engine.telemetry import (
    A_METRICS_ENABLED,
    A_STATUS,
    A_STEP,
    A_STEP_TYPE,
    A_WORKFLOW,
    RUN_SPAN,
    STEP_SPAN,
)

NAMES = 100_000


def span(span_id: int, name: str, attributes: dict[str, Any], events: Any = ()) -> ReadableSpan:
    context = SpanContext(1, span_id, is_remote=False, trace_flags=TraceFlags(1))
    return ReadableSpan(
        name=name,
        context=context,
        attributes=attributes,
        events=events,
        start_time=0,
        end_time=1_000_000,  # 1 ms
    )


def series(reader: InMemoryMetricReader) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(
                    dict(p.attributes or {}) for p in metric.data.data_points
                )
    return found


def test_100000_distinct_names_stay_within_the_bounds_in_bounded_memory() -> None:
    bounds = LabelBounds(workflows=50, steps=200, error_types=10)
    baselines = Baselines(max_keys=1_000)
    tracemalloc.start()
    try:
        for i in range(NAMES):
            workflow = bounds.workflow(f"wf-{i}")
            bounds.step(workflow, f"step-{i}")
            bounds.error_type(f"Error{i}")
            baselines.observe((f"wf-{i}", None), 1.0)
            baselines.observe((f"wf-{i}", f"step-{i}"), 1.0)
            if i == 1_000:  # past every bound: from here on memory must not grow
                at_bound = tracemalloc.get_traced_memory()[0]
        grown = tracemalloc.get_traced_memory()[0] - at_bound
    finally:
        tracemalloc.stop()
    assert bounds.size() == 50 + 200 + 10
    assert bounds.overflowed["workflow"] == NAMES - 50
    assert bounds.workflow("wf-7") == "wf-7" and bounds.workflow("wf-99999") == OTHER
    assert len(baselines) == 1_000  # the newest 1,000 of 200,000 keys (runs and steps)
    assert baselines.stats((f"wf-{NAMES - 1}", f"step-{NAMES - 1}")) is not None
    assert baselines.stats(("wf-0", "step-0")) is None  # the oldest went first
    # 99,000 names after the bounds were reached: 100 bytes kept per name would be 9.9 MB
    assert grown < 500_000, f"memory grew by {grown} bytes after the bounds were reached"


def test_the_monitor_exports_bounded_series_for_ever_new_names() -> None:
    reader = InMemoryMetricReader()
    bounds = LabelBounds(workflows=50, steps=200, error_types=10)
    baselines = Baselines(max_keys=1_000)
    monitor = Monitor(
        MeterProvider(metric_readers=[reader]), baselines, labels=bounds, remember_spans=1_000
    )
    names = 5_000  # through the SDK: about 0.2 ms of CPU per span
    for i in range(names):
        attributes = {
            A_WORKFLOW: f"wf-{i}",
            A_STEP: f"step-{i}",
            A_STEP_TYPE: "action",
            A_STATUS: "completed",
        }
        monitor.on_end(span(2 * i + 1, STEP_SPAN, attributes))
        monitor.on_end(span(2 * i + 2, RUN_SPAN, {A_WORKFLOW: f"wf-{i}", A_STATUS: "completed"}))
    assert monitor.counted["steps"] == names and monitor.counted["runs"] == names
    found = series(reader)
    workflows = {s["workflow"] for s in found["cadenza.steps"]}
    assert len(workflows) == 51 and OTHER in workflows  # 50 names, then everything is 'other'
    assert len(found["cadenza.steps"]) <= 200 + 1
    assert len(found["cadenza.step.duration"]) <= 200 + 1
    assert len(found["cadenza.runs"]) <= 50 + 1
    assert len(baselines) == 1_000 and len(monitor._seen) == 1_000


def test_custom_metrics_are_bounded_in_names_and_labels() -> None:
    reader = InMemoryMetricReader()
    monitor = Monitor(
        MeterProvider(metric_readers=[reader]),
        Baselines(),
        labels=LabelBounds(workflows=20, steps=40),
        max_custom_metrics=30,
    )
    for i in range(3_000):
        event = Event(
            METRIC_EVENT,
            {
                E_NAME: f"m{i % 100}",  # 100 names, 30 exported
                E_KIND: "counter",
                E_VALUE: 1.0,
                E_WORKFLOW: f"wf-{i}",
                E_STEP: f"s-{i}",
            },
        )
        monitor.on_end(span(i + 1, "cadenza.attempt", {}, [event]))
    found = series(reader)
    names = [n for n in found if n.startswith("m")]
    assert len(names) == 30
    assert sum(len(found[n]) for n in names) <= 30 * (40 + 1)
    assert len(monitor._warned) <= 30  # one warning per dropped name, bounded too
    assert monitor.counted["custom"] + monitor.counted["custom_dropped"] == 3_000


def test_a_step_with_metrics_enabled_false_is_not_counted_nor_baselined() -> None:
    reader = InMemoryMetricReader()
    baselines = Baselines()
    monitor = Monitor(MeterProvider(metric_readers=[reader]), baselines)
    attributes = {
        A_WORKFLOW: "w",
        A_STEP: "quiet",
        A_STEP_TYPE: "action",
        A_STATUS: "completed",
        A_METRICS_ENABLED: False,
    }
    monitor.on_end(span(1, STEP_SPAN, attributes))
    assert monitor.counted == {**monitor.counted, "steps": 0, "unmetered": 1}
    assert "cadenza.steps" not in series(reader) and len(baselines) == 0


def test_baselines_evict_the_least_recently_added_key() -> None:
    baselines = Baselines(max_keys=2)
    baselines.add(("a", None), 1)
    baselines.add(("b", None), 1)
    baselines.add(("a", None), 2)  # a is fresh again
    baselines.add(("c", None), 1)  # b goes
    assert len(baselines) == 2
    assert baselines.stats(("b", None)) is None and baselines.stats(("a", None)) is not None
