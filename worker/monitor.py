"""The monitor: cadenza's spans feed metrics, performance baselines and anomaly alerts.

`Monitor` is an OpenTelemetry span processor attached to the worker's tracer provider. It reads
the `cadenza.run` and `cadenza.step` spans (workflows/telemetry.py) when they end: a span ends
once, outside replay, and the monitor also drops a span id it has already seen (a workflow task
that completed live but was not acknowledged is run again), so every run and step is counted
once. It publishes:

- `cadenza_runs_total{workflow,status}`, `cadenza_run_duration_seconds{workflow,status}`,
- `cadenza_steps_total{workflow,step,step_type,status}`,
  `cadenza_step_duration_seconds{workflow,step,step_type}`,
  `cadenza_step_retries_total{workflow,step}`,
  `cadenza_step_failures_total{workflow,step,error_type}`,
- `cadenza_approvals_waiting{workflow,step}` (approval steps waiting, as seen by this worker),
- `cadenza_alerts_total{rule}`,

as OpenTelemetry metrics (OTLP when configured) and on the worker's Prometheus endpoint.

Baselines: per definition (and per step) the monitor keeps the durations of recent completed
runs, seeded from Temporal visibility when the worker starts; a run or step that takes longer
than `anomaly_factor` x its p95 (and at least `anomaly_min_excess_seconds` more) raises an
`anomaly.run` / `anomaly.step` alert through the alert manager.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from temporalio.client import Client

from activities.alerts import AlertManager, AlertSink, LogSink, OtelEventSink, WebhookSink
from activities.contracts import AlertInput
from worker.settings import Settings
from worker.telemetry import TelemetryConfigError, Tracing, install_tracing, metric_reader
from workflows.dsl.models import ExecutionResult, StepStatus
from workflows.engine import SA_WORKFLOW_ID, WORKFLOW_NAME
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

# Steps whose duration is a person's or a timer's, not the system's: no anomaly alerts.
NOT_BASELINED = frozenset({"approval", "wait"})
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)


@dataclass
class BaselineStats:
    samples: int
    p50: float
    p95: float


class Baselines:
    """Recent durations per (workflow_id, step_id or None for the run); thread-safe."""

    def __init__(
        self, window: int = 50, min_samples: int = 5, factor: float = 3.0, min_excess: float = 1.0
    ) -> None:
        self.window = window
        self.min_samples = min_samples
        self.factor = factor
        self.min_excess = min_excess
        self._samples: dict[tuple[str, str | None], deque[float]] = {}
        self._lock = threading.Lock()

    def add(self, key: tuple[str, str | None], seconds: float) -> None:
        with self._lock:
            self._samples.setdefault(key, deque(maxlen=self.window)).append(seconds)

    def stats(self, key: tuple[str, str | None]) -> BaselineStats | None:
        with self._lock:
            values = sorted(self._samples.get(key, ()))
        if not values:
            return None
        return BaselineStats(len(values), _quantile(values, 0.5), _quantile(values, 0.95))

    def observe(self, key: tuple[str, str | None], seconds: float) -> BaselineStats | None:
        """Record a completed duration; the baseline it exceeds, if it is an anomaly."""
        before = self.stats(key)
        self.add(key, seconds)
        if before is None or before.samples < self.min_samples:
            return None
        limit = max(before.p95 * self.factor, before.p95 + self.min_excess)
        return before if seconds > limit else None


def _quantile(values: list[float], q: float) -> float:
    index = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return values[index]


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


async def seed_baselines(
    client: Client, baselines: Baselines, runs: int = 200, results: int = 50
) -> int:
    """Seed baselines from the most recent completed runs in visibility: run durations from
    their start and close times, step durations from the results of the latest `results`.
    Returns how many runs were read."""
    query = f"WorkflowType = '{WORKFLOW_NAME}' AND ExecutionStatus = 'Completed'"
    found: list[tuple[str, str, str, float]] = []
    async for execution in client.list_workflows(query, limit=runs):
        workflow_id = execution.typed_search_attributes.get(SA_WORKFLOW_ID)
        if not workflow_id or execution.close_time is None:
            continue
        seconds = (execution.close_time - execution.start_time).total_seconds()
        found.append((execution.id, execution.run_id or "", workflow_id, seconds))
    gate = asyncio.Semaphore(8)

    async def steps_of(execution_id: str, run_id: str) -> ExecutionResult | None:
        async with gate:
            try:
                handle = client.get_workflow_handle(
                    execution_id, run_id=run_id or None, result_type=ExecutionResult
                )
                result: ExecutionResult = await handle.result()
                return result
            except Exception as exc:  # an old or foreign result shape: skip it
                log.debug("baseline seed skips %s: %s", execution_id, exc)
                return None

    outcomes = await asyncio.gather(*(steps_of(e, r) for e, r, _, _ in found[:results]))
    for index in reversed(range(len(found))):  # oldest first: the window keeps the newest
        workflow_id = found[index][2]
        baselines.add((workflow_id, None), found[index][3])
        outcome = outcomes[index] if index < len(outcomes) else None
        if outcome is None:
            continue
        for step_id, record in outcome.steps.items():
            if record.status == StepStatus.COMPLETED and record.started_at and record.ended_at:
                started = datetime.fromisoformat(record.started_at)
                ended = datetime.fromisoformat(record.ended_at)
                baselines.add((workflow_id, step_id), (ended - started).total_seconds())
    return len(found)


@dataclass
class Observability:
    """What a worker session observes with: tracing, the monitor, alerts, metric readers."""

    tracing: Tracing
    monitor: Monitor
    alerts: AlertManager
    meter_provider: MeterProvider
    metrics_address: str | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)


def alert_sinks(settings: Settings, http: httpx.AsyncClient) -> list[AlertSink]:
    """The sinks `settings.alert_sinks` names, plus a webhook whenever `alert_webhook_url` is set
    (a webhook needs the URL; `alert_webhook_token` is sent as a bearer token)."""
    names = list(settings.alert_sinks)
    if settings.alert_webhook_url and "webhook" not in names:
        names.append("webhook")
    sinks: list[AlertSink] = []
    for name in names:
        if name == "log":
            sinks.append(LogSink())
        elif name == "otel":
            sinks.append(OtelEventSink())
        elif name == "webhook":
            if not settings.alert_webhook_url:
                raise TelemetryConfigError(
                    "alert sink 'webhook' needs CADENZA_ALERT_WEBHOOK_URL (the receiver's URL)"
                )
            headers = {}
            if settings.alert_webhook_token:
                headers["Authorization"] = f"Bearer {settings.alert_webhook_token}"
            sinks.append(WebhookSink(settings.alert_webhook_url, http, headers=headers))
        else:
            raise TelemetryConfigError(f"unknown alert sink {name!r}: use log, webhook or otel")
    return sinks


@asynccontextmanager
async def observability(
    client: Client, settings: Settings, http: httpx.AsyncClient
) -> AsyncIterator[Observability]:
    """Tracing, the monitor (metrics, baselines), alerts and the Prometheus endpoint, for the
    duration of a worker session."""
    tracing = install_tracing("cadenza-worker")
    alerts = AlertManager(alert_sinks(settings, http))
    readers: list[MetricReader] = []
    server = None
    address = None
    if settings.metrics_port is not None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry, start_http_server

        registry = CollectorRegistry()
        readers.append(PrometheusMetricReader(registry=registry))
        server, _thread = start_http_server(
            settings.metrics_port, addr=settings.metrics_host, registry=registry
        )
        address = f"http://{settings.metrics_host}:{server.server_port}/metrics"
    otlp = metric_reader()
    if otlp is not None:
        readers.append(otlp)
    meter_provider = MeterProvider(
        metric_readers=readers, resource=Resource.create({"service.name": "cadenza-worker"})
    )
    baselines = Baselines(
        window=settings.baseline_window,
        min_samples=settings.baseline_min_samples,
        factor=settings.anomaly_factor,
        min_excess=settings.anomaly_min_excess_seconds,
    )
    monitor = Monitor(meter_provider, baselines, alerts, asyncio.get_running_loop())
    seen = Observability(tracing, monitor, alerts, meter_provider, address)
    seen.tasks.append(asyncio.create_task(monitor.deliver_alerts()))
    if settings.baseline_seed_runs:
        seen.tasks.append(
            asyncio.create_task(
                _seed_quietly(
                    client, baselines, settings.baseline_seed_runs, settings.baseline_seed_results
                )
            )
        )
    tracing.router.attach(monitor)
    log.info(
        "telemetry: traces %s; metrics %s; alerts to %s",
        f"exported ({tracing.exporting})" if tracing.exporting else "not exported (no OTEL_*)",
        ", ".join(filter(None, [address, "otlp" if otlp else None])) or "not published",
        ", ".join(s.name for s in alerts.sinks) or "nowhere",
    )
    try:
        yield seen
    finally:
        tracing.router.detach(monitor)
        for task in seen.tasks:
            task.cancel()
        await asyncio.gather(*seen.tasks, return_exceptions=True)
        if server is not None:
            server.shutdown()
            server.server_close()
        meter_provider.shutdown()
        tracing.flush()


async def _seed_quietly(client: Client, baselines: Baselines, runs: int, results: int) -> None:
    try:
        count = await asyncio.wait_for(seed_baselines(client, baselines, runs, results), 60)
        log.info("baselines seeded from %d completed runs", count)
    except Exception as exc:
        log.warning("baselines not seeded from visibility: %s", exc)
