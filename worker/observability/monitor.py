"""The monitor: a span processor that turns cadenza's spans into metrics and anomaly alerts.

`Monitor` is an OpenTelemetry span processor attached to the worker's tracer provider. It
reads the `cadenza.run` and `cadenza.step` spans (workflows/engine/telemetry.py) when they end:
a span ends once, outside replay, and the monitor also drops a span id it has already seen (a
workflow task that completed live but was not acknowledged is run again), so every run and step
is counted once. It publishes:

- `cadenza_runs_total{workflow,status}`, `cadenza_run_duration_seconds{workflow,status}`,
- `cadenza_steps_total{workflow,step,step_type,status}`,
  `cadenza_step_duration_seconds{workflow,step,step_type}`,
  `cadenza_step_retries_total{workflow,step}`,
  `cadenza_step_failures_total{workflow,step,error_type}`,
- `cadenza_approvals_waiting{workflow,step}` (approval steps waiting, as seen by this worker),
- `cadenza_alerts_total{rule}`,
- each step's custom metrics (`custom_metrics`, recorded by actions through `ctx.metrics` and
  published as `cadenza.metric` events on the `cadenza.attempt` span, activities/metrics.py)
  under their declared names, with `workflow` and `step` attributes,

as OpenTelemetry metrics (OTLP when configured) and on the worker's Prometheus endpoint
(worker/observability/setup.py). Completed durations go to the baselines
(worker/observability/baselines.py); one far over its baseline raises an `anomaly.run` /
`anomaly.step` alert through the alert manager. A step with `metrics_enabled: false` (its span
says so) is left out of all of it: no step metrics, no custom metrics, no baseline.

A long-lived worker sees ever new names (definitions, step ids, error types), and each distinct
label value is a time series kept for ever: `LabelBounds` admits at most so many distinct values
per label (workflows, (workflow, step) pairs, error types) and records the rest as `other`; the
custom metrics are capped in number; the baselines keep the most recently used keys only.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from activities.alerts import AlertManager
from activities.contracts import AlertInput
from activities.metrics import (
    E_KIND,
    E_NAME,
    E_STEP,
    E_VALUE,
    E_WORKFLOW,
    METRIC_EVENT,
)
from worker.observability.baselines import Baselines, BaselineStats
from workflows.engine.telemetry import (
    A_ATTEMPTS,
    A_COMPLEXITY,
    A_ERROR_TYPE,
    A_EXECUTION,
    A_METRICS_ENABLED,
    A_STATUS,
    A_STEP,
    A_STEP_TYPE,
    A_STRATEGY,
    A_WORKFLOW,
    DECISION_SPAN,
    RUN_SPAN,
    STEP_SPAN,
)

log = logging.getLogger("cadenza.monitor")

# Steps whose duration is a person's, a timer's or another system's: no anomaly alerts.
NOT_BASELINED = frozenset({"approval", "wait", "event"})
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
ATTEMPT_SPAN = "cadenza.attempt"  # the step executor's span of one attempt (activities/steps.py)
OTHER = "other"
"""The label value of every value past a label's bound."""


class LabelBounds:
    """At most `workflows` distinct workflow labels, `steps` distinct (workflow, step) pairs and
    `error_types` distinct error types; values past a bound are reported as `other`.

    A value once admitted keeps its label for the worker's life (its series stays continuous);
    the bounds make the number of series, and the memory they hold, finite. Not thread-safe:
    the monitor calls it under its lock.
    """

    def __init__(self, workflows: int = 200, steps: int = 2_000, error_types: int = 50) -> None:
        self.limits = {"workflow": workflows, "step": steps, "error_type": error_types}
        self._admitted: dict[str, set[Any]] = {key: set() for key in self.limits}
        self.overflowed: dict[str, int] = dict.fromkeys(self.limits, 0)

    def _admit(self, key: str, value: Any) -> bool:
        admitted = self._admitted[key]
        if value in admitted:
            return True
        if len(admitted) < self.limits[key]:
            admitted.add(value)
            return True
        self.overflowed[key] += 1
        return False

    def workflow(self, workflow_id: str) -> str:
        return workflow_id if self._admit("workflow", workflow_id) else OTHER

    def step(self, workflow: str, step_id: str) -> str:
        """The step label, for the (already bounded) workflow label `workflow`."""
        return step_id if self._admit("step", (workflow, step_id)) else OTHER

    def error_type(self, error_type: str) -> str:
        return error_type if self._admit("error_type", error_type) else OTHER

    def size(self) -> int:
        """How many distinct values are admitted, all labels together."""
        return sum(len(values) for values in self._admitted.values())


class Monitor(SpanProcessor):
    """Counts runs and steps from their spans (each once), keeps baselines, raises anomalies."""

    def __init__(
        self,
        meter_provider: MeterProvider,
        baselines: Baselines,
        alerts: AlertManager | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        remember_spans: int = 200_000,
        labels: LabelBounds | None = None,
        max_custom_metrics: int = 200,
    ) -> None:
        self.baselines = baselines
        self.alerts = alerts
        self.labels = labels or LabelBounds()
        self.max_custom_metrics = max_custom_metrics
        self._loop = loop
        self._queue: asyncio.Queue[AlertInput] = asyncio.Queue()
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._remember = remember_spans
        # approval spans started and not ended here (their run may end on another worker)
        self._waiting: OrderedDict[int, dict[str, str]] = OrderedDict()
        self._lock = threading.Lock()
        counts = ("runs", "steps", "decisions", "duplicates", "unmetered", "custom")
        self.counted: dict[str, int] = dict.fromkeys((*counts, "custom_dropped"), 0)
        self._meter = meter = meter_provider.get_meter("cadenza")
        self._custom: dict[str, tuple[str, Any]] = {}
        self._warned: set[str] = set()  # names dropped and logged once (at most as many)
        self._runs = meter.create_counter("cadenza.runs", description="Finished runs.")
        self._run_duration = meter.create_histogram(
            "cadenza.run.duration",
            unit="s",
            description="Duration of finished runs.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._steps = meter.create_counter("cadenza.steps", description="Settled steps.")
        self._step_duration = meter.create_histogram(
            "cadenza.step.duration",
            unit="s",
            description="Duration of settled steps (running time).",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._retries = meter.create_counter(
            "cadenza.step.retries", description="Attempts beyond the first."
        )
        self._failures = meter.create_counter(
            "cadenza.step.failures", description="Steps that failed, by error type."
        )
        self._approvals = meter.create_up_down_counter(
            "cadenza.approvals.waiting", description="Approval steps waiting for decisions."
        )
        self._alerts = meter.create_counter("cadenza.alerts", description="Alerts raised.")
        self._decisions = meter.create_counter(
            "cadenza.decisions", description="Routing decisions of agentic tasks, by strategy."
        )
        self._complexity = meter.create_histogram(
            "cadenza.decision.complexity",
            description="Task complexity (0-1) a routing decision was taken at, by strategy.",
            explicit_bucket_boundaries_advisory=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1),
        )

    # ------------------------------------------------------------------ span processor

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        attributes = span.attributes or {}
        if span.name != STEP_SPAN or attributes.get(A_STEP_TYPE) != "approval":
            return
        if attributes.get(A_METRICS_ENABLED) is False:
            return
        span_id = span.context.span_id if span.context else 0
        with self._lock:  # a replay starts the same span (same id) again
            if span_id in self._waiting or span_id in self._seen:
                return
            workflow = self.labels.workflow(str(attributes.get(A_WORKFLOW)))
            labels = {"workflow": workflow, "step": self.labels.step(workflow, _step(attributes))}
            self._waiting[span_id] = labels
            if len(self._waiting) > self._remember:  # never ended here: forget the oldest
                self._waiting.popitem(last=False)
        self._approvals.add(1, labels)

    def on_end(self, span: ReadableSpan) -> None:
        if span.name == ATTEMPT_SPAN:
            self._custom_metrics(span)
            return
        if span.name not in (STEP_SPAN, RUN_SPAN, DECISION_SPAN) or span.context is None:
            return
        span_id = span.context.span_id
        with self._lock:
            if span_id in self._seen:
                self.counted["duplicates"] += 1
                return
            self._seen[span_id] = None
            if len(self._seen) > self._remember:
                self._seen.popitem(last=False)
            waiting = self._waiting.pop(span_id, None)
        if waiting is not None:
            self._approvals.add(-1, waiting)
        attributes = span.attributes or {}
        seconds = max(((span.end_time or 0) - (span.start_time or 0)) / 1e9, 0.0)
        workflow_id = str(attributes.get(A_WORKFLOW, ""))
        status = str(attributes.get(A_STATUS, "unknown"))
        if span.name == RUN_SPAN:
            self._run_ended(attributes, workflow_id, status, seconds)
        elif span.name == DECISION_SPAN:
            strategy = {"strategy": str(attributes.get(A_STRATEGY, ""))}
            self._decisions.add(1, strategy)
            self._complexity.record(float(attributes.get(A_COMPLEXITY, 0.0) or 0.0), strategy)  # type: ignore[arg-type]
            with self._lock:
                self.counted["decisions"] += 1
        else:
            self._step_ended(attributes, workflow_id, status, seconds)

    def _run_ended(self, attributes: Any, workflow_id: str, status: str, seconds: float) -> None:
        with self._lock:
            self.counted["runs"] += 1
            labels = {"workflow": self.labels.workflow(workflow_id), "status": status}
        self._runs.add(1, labels)
        self._run_duration.record(seconds, labels)
        if status == "completed":
            exceeded = self.baselines.observe((workflow_id, None), seconds)
            if exceeded is not None:
                self._anomaly(attributes, workflow_id, None, seconds, exceeded)

    def _step_ended(self, attributes: Any, workflow_id: str, status: str, seconds: float) -> None:
        step_id = _step(attributes)
        step_type = str(attributes.get(A_STEP_TYPE, ""))
        with self._lock:
            if attributes.get(A_METRICS_ENABLED) is False:  # the step's metrics_enabled: false
                self.counted["unmetered"] += 1
                return
            self.counted["steps"] += 1
            workflow = self.labels.workflow(workflow_id)
            step = self.labels.step(workflow, step_id)
            error_type = self.labels.error_type(str(attributes.get(A_ERROR_TYPE, "")))
        where = {"workflow": workflow, "step": step}
        self._steps.add(1, {**where, "step_type": step_type, "status": status})
        if status == "skipped":
            return
        self._step_duration.record(seconds, {**where, "step_type": step_type})
        attempts = int(attributes.get(A_ATTEMPTS, 0) or 0)
        if attempts > 1:
            self._retries.add(attempts - 1, where)
        if status == "failed":
            self._failures.add(1, {**where, "error_type": error_type})
        if status == "completed" and step_type not in NOT_BASELINED:
            exceeded = self.baselines.observe((workflow_id, step_id), seconds)
            if exceeded is not None:
                self._anomaly(attributes, workflow_id, step_id, seconds, exceeded)

    def _custom_metrics(self, span: ReadableSpan) -> None:
        """Export the `cadenza.metric` events of an attempt (activities/metrics.py)."""
        for event in span.events:
            if event.name != METRIC_EVENT or not event.attributes:
                continue
            name, kind = str(event.attributes.get(E_NAME)), str(event.attributes.get(E_KIND))
            values = _numbers(event.attributes.get(E_VALUE))
            with self._lock:
                instrument = self._instrument(name, kind)
                if instrument is None:
                    self.counted["custom_dropped"] += 1
                    continue
                self.counted["custom"] += 1
                workflow = self.labels.workflow(str(event.attributes.get(E_WORKFLOW, "")))
                step = self.labels.step(workflow, str(event.attributes.get(E_STEP, "")))
            where = {"workflow": workflow, "step": step}
            if kind == "counter":
                instrument.add(sum(values), where)
            elif kind == "gauge":
                for value in values[-1:]:
                    instrument.set(value, where)
            else:
                for value in values:
                    instrument.record(value, where)

    def _instrument(self, name: str, kind: str) -> Any:
        """The instrument of custom metric `name`, made on first use; None when `name` was
        first recorded as another kind, or the worker already exports `max_custom_metrics`."""
        known = self._custom.get(name)
        if known is not None:
            if known[0] != kind:
                self._warn(name, f"recorded as a {kind}, but it is a {known[0]} on this worker")
                return None
            return known[1]
        if len(self._custom) >= self.max_custom_metrics or kind not in _MAKERS:
            self._warn(name, f"over {self.max_custom_metrics} custom metrics on this worker")
            return None
        instrument = _MAKERS[kind](self._meter, name)
        self._custom[name] = (kind, instrument)
        return instrument

    def _warn(self, name: str, why: str) -> None:
        if name not in self._warned and len(self._warned) < self.max_custom_metrics:
            self._warned.add(name)
            log.warning("custom metric %r dropped: %s", name, why)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    # ------------------------------------------------------------------ alerts

    def _anomaly(
        self,
        attributes: Any,
        workflow_id: str,
        step_id: str | None,
        seconds: float,
        baseline: BaselineStats,
    ) -> None:
        what = f"step '{step_id}'" if step_id else "the run"
        alert = AlertInput(
            rule="anomaly.step" if step_id else "anomaly.run",
            execution_id=str(attributes.get(A_EXECUTION, "")),
            workflow_id=workflow_id,
            step_id=step_id,
            message=f"{workflow_id}: {what} took {seconds:.2f} s, over {self.baselines.factor:g}x "
            f"its baseline p95 of {baseline.p95:.2f} s (p50 {baseline.p50:.2f} s, "
            f"{baseline.samples} recent runs)",
            target_seconds=round(baseline.p95 * self.baselines.factor, 3),
            observed_seconds=round(seconds, 3),
            at=datetime.now(UTC).isoformat(),
        )
        self._alerts.add(1, {"rule": alert.rule})
        if self._loop is None:
            return
        # spans end on the workflow threads: hand the alert to the worker's event loop
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, alert)
        except RuntimeError:
            log.warning("alert dropped (the worker is stopping): %s", alert.message)

    async def deliver_alerts(self) -> None:
        """Hand anomaly alerts to the alert manager until cancelled."""
        while True:
            alert = await self._queue.get()
            if self.alerts is None:
                continue
            for attempt in range(3):
                try:
                    await self.alerts.raise_alert(alert)
                    break
                except Exception as exc:
                    log.warning(
                        "alert %s not delivered (attempt %d): %s", alert.key, attempt + 1, exc
                    )
                    await asyncio.sleep(2**attempt)


def _step(attributes: Any) -> str:
    return str(attributes.get(A_STEP, ""))


def _numbers(value: object) -> list[float]:
    """An event's value as numbers: one (a counter's sum, a gauge's value) or a histogram's."""
    items = value if isinstance(value, list | tuple) else [value]
    return [float(v) for v in items if isinstance(v, int | float) and not isinstance(v, bool)]


DESCRIPTION = "A custom metric of cadenza steps (custom_metrics), recorded through ctx.metrics."
_MAKERS: dict[str, Any] = {
    "counter": lambda meter, name: meter.create_counter(name, description=DESCRIPTION),
    "histogram": lambda meter, name: meter.create_histogram(name, description=DESCRIPTION),
    "gauge": lambda meter, name: meter.create_gauge(name, description=DESCRIPTION),
}
