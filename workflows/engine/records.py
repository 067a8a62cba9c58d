"""The step records of a run and what follows each status change: the counts by status, the
set of running steps, the step's span and SLA timer, what expressions see of settled steps, and
the Web UI's details. Deterministic code only."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from temporalio import workflow

from activities.contracts import ErrorType
from workflows.contracts import ChildResult, ErrorInfo, ExecutionResult, StepRecord, StepStatus
from workflows.dsl.models import WorkflowStep
from workflows.engine.scope import Scope
from workflows.engine.sla import SlaWatch
from workflows.engine.telemetry import RunSpans


class Records:
    """Status changes of a run's steps, kept consistent with everything that reads them."""

    def __init__(
        self,
        state: ExecutionResult,
        steps: dict[str, WorkflowStep],
        spans: RunSpans,
        sla: SlaWatch,
        scope: Scope,
        on_change: Callable[[], None],
        templates: Collection[str] = (),
    ) -> None:
        self.state = state
        self.steps = steps
        self.spans = spans
        self.sla = sla
        self.scope = scope
        self.on_change = on_change
        state.steps = {sid: StepRecord() for sid in steps if sid not in templates}
        self.counts: dict[str, int] = {StepStatus.PENDING.value: len(state.steps)}
        """Steps per status (read by the Web UI's details)."""
        self.running: set[str] = set()
        """Steps running now (read by the Web UI's details)."""

    def set_status(self, record: StepRecord, status: StepStatus) -> None:
        self.counts[record.status.value] -= 1
        self.counts[status.value] = self.counts.get(status.value, 0) + 1
        record.status = status

    def add(self, step: WorkflowStep) -> None:
        """A step that exists only at run time (a map's instance), pending."""
        self.steps[step.step_id] = step
        self.state.steps[step.step_id] = StepRecord()
        self.counts[StepStatus.PENDING.value] += 1

    def replace(self, sid: str, record: StepRecord) -> None:
        """A record a child workflow hands back."""
        self.set_status(self.state.steps[sid], record.status)
        self.state.steps[sid] = record
        if record.status != StepStatus.PENDING:
            self.scope.settled(sid, record.status.value, record.output)

    def running_now(self, step: WorkflowStep, record: StepRecord) -> None:
        self.set_status(record, StepStatus.RUNNING)
        record.started_at = workflow.now().isoformat()
        record.ended_at = None
        self.running.add(step.step_id)
        self.spans.start_step(step)
        self.sla.arm_step(step.step_id)
        self.on_change()

    def waiting(self, step: WorkflowStep, record: StepRecord) -> None:
        self.set_status(record, StepStatus.WAITING)
        self.running.discard(step.step_id)
        self.on_change()

    def done_waiting(self, step: WorkflowStep, record: StepRecord) -> None:
        self.set_status(record, StepStatus.RUNNING)
        self.on_change()

    def ended(self, step: WorkflowStep, record: StepRecord) -> None:
        record.ended_at = workflow.now().isoformat()
        self.running.discard(step.step_id)
        self.sla.disarm_step(step.step_id)
        self.spans.end_step(step, record)
        self.scope.settled(step.step_id, str(record.status), record.output)
        self.on_change()

    def skip(self, sid: str, reason: str) -> None:
        record = self.state.steps[sid]
        self.set_status(record, StepStatus.SKIPPED)
        record.skip_reason = reason
        self._settled_unstarted(sid, record, "skipped")

    def fail_unstarted(self, sid: str, dep: str) -> None:
        record = self.state.steps[sid]
        self.set_status(record, StepStatus.FAILED)
        record.error = ErrorInfo(
            type=ErrorType.DEPENDENCY_FAILED,
            message=f"not started: its dependency '{dep}' failed",
            step_id=sid,
            non_retryable=True,
        )
        self._settled_unstarted(sid, record, "failed")

    def cancel_unstarted(self, steps: Sequence[WorkflowStep], reason: str) -> None:
        for step in steps:
            record = self.state.steps[step.step_id]
            if record.status == StepStatus.PENDING:
                self.set_status(record, StepStatus.CANCELLED)
                record.error = ErrorInfo(
                    type=ErrorType.CANCELLED, message=reason, step_id=step.step_id
                )
                self._settled_unstarted(step.step_id, record, "cancelled")

    def _settled_unstarted(self, sid: str, record: StepRecord, status: str) -> None:
        record.started_at = record.ended_at = workflow.now().isoformat()
        self.scope.settled(sid, status, None)
        self.spans.settled_unstarted(self.steps[sid], record)
        self.on_change()

    def non_pending(self) -> dict[str, StepRecord]:
        return {sid: r for sid, r in self.state.steps.items() if r.status != StepStatus.PENDING}

    def absorbed(self, result: ChildResult) -> list[str]:
        """Take over a child's records; returns the failed ones the child tolerated (a failed
        record without an error)."""
        tolerated = []
        for sid, record in result.records.items():
            self.replace(sid, record)
            if record.status == StepStatus.FAILED and record.error is None:
                tolerated.append(sid)
        return tolerated
