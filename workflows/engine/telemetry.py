"""Replay-safe spans of a run: one `cadenza.run` per execution, one `cadenza.step` per step.

Deterministic code only. The worker installs a replay-safe tracer provider
(`temporalio.contrib.opentelemetry.create_tracer_provider`): a span started while a run replays
gets its original id (ids come from the workflow's seeded random) and its original start time
(workflow time), and a span is only ended, hence exported, outside replay. So every span is
exported once however often the run replays, and the monitor (worker/observability/monitor.py)
counts each step once. Without a provider (a worker with telemetry off, the Replayer) these are
no-op spans.

A step's span is the current span while the step runs, so the activities and child workflows it
starts (and their spans) are its children in the trace.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from opentelemetry import context as otel_context, trace
    from opentelemetry.trace import Span, Status, StatusCode

    from workflows.contracts import StepRecord, StepStatus, WorkflowState
    from workflows.dsl.models import WorkflowStep

TRACER_NAME = "cadenza"
RUN_SPAN = "cadenza.run"
STEP_SPAN = "cadenza.step"
DECISION_SPAN = "cadenza.decision"

# span attribute names, read back by the monitor
A_WORKFLOW = "cadenza.workflow_id"
A_EXECUTION = "cadenza.execution_id"
A_STEP = "cadenza.step_id"
A_STEP_TYPE = "cadenza.step_type"
A_ACTION = "cadenza.action"
A_ATTEMPTS = "cadenza.attempts"
A_STATUS = "cadenza.status"
A_ERROR_TYPE = "cadenza.error_type"
A_STRATEGY = "cadenza.strategy"
A_COMPLEXITY = "cadenza.complexity"
A_TAGS = "cadenza.tags"
A_METRICS_ENABLED = "cadenza.metrics_enabled"
"""Set (false) on a step span whose step has `metrics_enabled: false`: the monitor skips it."""


class RunSpans:
    """The open spans of one workflow execution (the run's and its running steps')."""

    def __init__(self, execution_id: str, workflow_id: str) -> None:
        self._tracer = trace.get_tracer(TRACER_NAME)
        self._base: dict[str, Any] = {A_EXECUTION: execution_id, A_WORKFLOW: workflow_id}
        self._run: tuple[Span, object] | None = None
        self._steps: dict[str, tuple[Span, object]] = {}

    def start_run(self, version: str) -> None:
        """Open the run's span and make it current for everything the run starts next."""
        if self._run is not None:
            return
        attributes = {**self._base, "cadenza.version": version}
        span = self._tracer.start_span(RUN_SPAN, attributes=attributes)
        self._run = (span, otel_context.attach(trace.set_span_in_context(span)))

    def tag(self, tags: list[str]) -> None:
        """The definition's `tags` on the run's span and on every step span opened after."""
        self._base[A_TAGS] = list(tags)
        if self._run is not None:
            self._run[0].set_attribute(A_TAGS, list(tags))

    def end_run(self, status: WorkflowState, error_type: str | None) -> None:
        if self._run is None:
            return
        span, token = self._run
        self._run = None
        span.set_attribute(A_STATUS, status.value)
        if error_type:
            span.set_attribute(A_ERROR_TYPE, error_type)
        if status != WorkflowState.COMPLETED:
            span.set_status(Status(StatusCode.ERROR, f"{status.value}: {error_type or ''}"))
        span.end()
        _detach(token)

    def start_step(self, step: WorkflowStep) -> None:
        """Open a step's span, current in the step's task (its activities become children)."""
        if step.step_id in self._steps:
            return
        span = self._tracer.start_span(STEP_SPAN, attributes=self._step_attributes(step))
        self._steps[step.step_id] = (span, otel_context.attach(trace.set_span_in_context(span)))

    def end_step(self, step: WorkflowStep, record: StepRecord) -> None:
        opened = self._steps.pop(step.step_id, None)
        if opened is None:
            return
        span, token = opened
        _finish(span, record)
        _detach(token)

    def settled_unstarted(self, step: WorkflowStep, record: StepRecord) -> None:
        """A step skipped or failed before it started: a zero-length span records it."""
        span = self._tracer.start_span(STEP_SPAN, attributes=self._step_attributes(step))
        _finish(span, record)

    def _step_attributes(self, step: WorkflowStep) -> dict[str, Any]:
        attributes = {**self._base, A_STEP: step.step_id, A_STEP_TYPE: step.step_type.value}
        if step.action:
            attributes[A_ACTION] = step.action
        if not step.metrics_enabled:
            attributes[A_METRICS_ENABLED] = False
        return attributes


def record_decision(execution_id: str, strategy: str, complexity: float) -> None:
    """A routing decision of an agentic task's orchestrator: a zero-length span the monitor
    counts (cadenza_decisions_total by strategy, and the complexity it was taken at)."""
    span = trace.get_tracer(TRACER_NAME).start_span(
        DECISION_SPAN,
        attributes={A_EXECUTION: execution_id, A_STRATEGY: strategy, A_COMPLEXITY: complexity},
    )
    span.end()


def _finish(span: Span, record: StepRecord) -> None:
    ended: dict[str, Any] = {A_STATUS: record.status.value, A_ATTEMPTS: record.attempts}
    if record.error is not None:
        ended[A_ERROR_TYPE] = record.error.type
    span.set_attributes(ended)  # one call: each takes the span's lock and checks its values
    if record.status == StepStatus.FAILED:
        message = record.error.message[:200] if record.error else "failed"
        span.set_status(Status(StatusCode.ERROR, message))
    span.end()


def _detach(token: object) -> None:
    try:
        otel_context.detach(token)  # type: ignore[arg-type]
    except Exception:
        pass  # attached in another task's context (never expected): nothing to restore
