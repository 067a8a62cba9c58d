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

as OpenTelemetry metrics (OTLP when configured) and on the worker's Prometheus endpoint
(worker/observability/setup.py). Completed durations go to the baselines
(worker/observability/baselines.py); one far over its baseline raises an `anomaly.run` /
`anomaly.step` alert through the alert manager.
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
from worker.observability.baselines import Baselines, BaselineStats
from workflows.engine.telemetry import (
    A_ATTEMPTS,
    A_COMPLEXITY,
    A_ERROR_TYPE,
    A_EXECUTION,
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


class Monitor(SpanProcessor):
    """Counts runs and steps from their spans (each once), keeps baselines, raises anomalies."""

    def __init__(
        self,
        meter_provider: MeterProvider,
        baselines: Baselines,
        alerts: AlertManager | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        remember_spans: int = 200_000,
    ) -> None:
        self.baselines = baselines
        self.alerts = alerts
        self._loop = loop
        self._queue: asyncio.Queue[AlertInput] = asyncio.Queue()
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._remember = remember_spans
        self._waiting: dict[int, dict[str, str]] = {}
        self._lock = threading.Lock()
        self.counted: dict[str, int] = {"runs": 0, "steps": 0, "decisions": 0, "duplicates": 0}
        meter = meter_provider.get_meter("cadenza")
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
        span_id = span.context.span_id if span.context else 0
        labels = {"workflow": str(attributes.get(A_WORKFLOW)), "step": str(attributes.get(A_STEP))}
        with self._lock:  # a replay starts the same span (same id) again
            if span_id in self._waiting or span_id in self._seen:
                return
            self._waiting[span_id] = labels
        self._approvals.add(1, labels)

    def on_end(self, span: ReadableSpan) -> None:
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
        labels = {"workflow": workflow_id, "status": status}
        self._runs.add(1, labels)
        self._run_duration.record(seconds, labels)
        with self._lock:
            self.counted["runs"] += 1
        if status == "completed":
            exceeded = self.baselines.observe((workflow_id, None), seconds)
            if exceeded is not None:
                self._anomaly(attributes, workflow_id, None, seconds, exceeded)

    def _step_ended(self, attributes: Any, workflow_id: str, status: str, seconds: float) -> None:
        step_id = str(attributes.get(A_STEP, ""))
        step_type = str(attributes.get(A_STEP_TYPE, ""))
        self._steps.add(
            1, {"workflow": workflow_id, "step": step_id, "step_type": step_type, "status": status}
        )
        with self._lock:
            self.counted["steps"] += 1
        if status == "skipped":
            return
        self._step_duration.record(
            seconds, {"workflow": workflow_id, "step": step_id, "step_type": step_type}
        )
        attempts = int(attributes.get(A_ATTEMPTS, 0) or 0)
        if attempts > 1:
            self._retries.add(attempts - 1, {"workflow": workflow_id, "step": step_id})
        if status == "failed":
            self._failures.add(
                1,
                {
                    "workflow": workflow_id,
                    "step": step_id,
                    "error_type": str(attributes.get(A_ERROR_TYPE, "")),
                },
            )
        if status == "completed" and step_type not in NOT_BASELINED:
            exceeded = self.baselines.observe((workflow_id, step_id), seconds)
            if exceeded is not None:
                self._anomaly(attributes, workflow_id, step_id, seconds, exceeded)

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
