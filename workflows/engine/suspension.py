"""Suspension instead of failure (`retry_policy.on_exhausted: suspend`): a step that has used up
its retries, with no error handler that recovered it, makes the run wait (status `suspended`)
until an operator decides with the update `retry_step`, `skip_step` or `fail_step`.

A suspended step holds no slot and no activity; the run's `timeout` still applies. Deterministic
code only; the decisions are validated (the step must be suspended) and audited.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from temporalio import workflow

from activities.contracts import AlertInput
from workflows.contracts import (
    AuditEntry,
    ErrorInfo,
    ExecutionResult,
    FailStepInput,
    RetryStepInput,
    SkipStepInput,
    StepDecision,
    StepDecisionResult,
    StepRecord,
    StepStatus,
    SuspendedStep,
    WorkflowState,
)
from workflows.dsl.models import AdvancedWorkflow, WorkflowStep
from workflows.engine.alerts import send_alert
from workflows.engine.context import StepContext

MAX_SKIP_OUTPUT_BYTES = 262_144
KIND = {RetryStepInput: "retry", SkipStepInput: "skip", FailStepInput: "fail"}


class Suspensions:
    """The suspended steps of one run and the decisions that end their wait."""

    def __init__(self, state: ExecutionResult) -> None:
        self.state = state
        self.decisions: dict[str, StepDecision] = {}
        self._alerts: list[asyncio.Future[None]] = []

    async def suspend(
        self, ctx: StepContext, step: WorkflowStep, record: StepRecord, error: ErrorInfo
    ) -> StepDecision:
        """Wait, the step `suspended`, until an operator decides; the decision."""
        sid = step.step_id
        since = workflow.now().isoformat()
        self.state.suspended[sid] = SuspendedStep(
            step_id=sid, since=since, error=error, attempts=record.attempts
        )
        ctx.mark_waiting(step, record)  # holds nothing, counted as not running
        ctx.set_status(record, StepStatus.SUSPENDED)
        self.state.status = WorkflowState.SUSPENDED
        ctx.changed()
        self._alerts.append(asyncio.ensure_future(self._alert(sid, error, since)))
        evicted = False
        try:
            await workflow.wait_condition(lambda: sid in self.decisions)
        except GeneratorExit:  # evicted from the worker's cache: touch nothing
            evicted = True
            raise
        finally:
            if not evicted:
                self.state.suspended.pop(sid, None)
                if not self.state.suspended and self.state.status == WorkflowState.SUSPENDED:
                    self.state.status = WorkflowState.RUNNING
                ctx.done_waiting(step, record)
        return self.decisions.pop(sid)

    async def _alert(self, step_id: str, error: ErrorInfo, at: str) -> None:
        state = self.state
        alert = AlertInput(
            rule="run.suspended",
            execution_id=state.execution_id,
            workflow_id=state.workflow_id,
            step_id=step_id,
            severity="critical",
            message=f"{state.workflow_id}: step {step_id!r} is suspended after {error.type}: "
            f"{error.message[:300]} (execution {state.execution_id}); decide with "
            f"`cadenza retry-step|skip-step|fail-step {state.execution_id} {step_id} --by WHO`",
            at=at,
        )
        await send_alert(alert)  # failed sinks: the suspension is in the state and the Web UI


def refusal(
    state: ExecutionResult, definition: AdvancedWorkflow | None, request: StepDecision
) -> str | None:
    """Why `request` may not be applied now, or None (the updates' validators)."""
    sid = request.step_id
    if sid not in state.suspended:
        suspended = ", ".join(sorted(state.suspended)) or "none"
        if sid in state.steps:
            status = state.steps[sid].status.value
            return (
                f"step {sid!r} is not suspended (it is {status}): only a suspended step can be "
                f"retried, skipped or failed; suspended steps: {suspended}"
            )
        return f"no step {sid!r} in this run; suspended steps: {suspended}"
    if isinstance(request, SkipStepInput):
        return _output_refusal(definition, sid, request.output)
    return None


def decide(
    state: ExecutionResult, suspensions: Suspensions | None, request: StepDecision
) -> StepDecisionResult:
    """Record a valid decision (check `refusal` first); the waiting step takes it."""
    kind = KIND[type(request)]
    detail = f"{request.step_id}: {kind}"
    if isinstance(request, FailStepInput) and request.reason:
        detail += f": {request.reason}"
    at = workflow.now().isoformat()
    state.audit.append(
        AuditEntry(
            at=at, kind=f"{kind}_step", by=request.by, detail=detail, step_id=request.step_id
        )
    )
    if suspensions is not None:
        suspensions.decisions[request.step_id] = request
    return StepDecisionResult(step_id=request.step_id, decision=kind)  # type: ignore[arg-type]


def _output_refusal(definition: AdvancedWorkflow | None, step_id: str, output: Any) -> str | None:
    """A skip's output must be plain JSON of bounded size and hold the fields later steps (and
    the step's own output_mapping) read from it, where the expressions name them."""
    try:
        size = len(json.dumps(output, allow_nan=False))
    except (TypeError, ValueError) as exc:
        return f"the output is not plain JSON: {exc}"
    if size > MAX_SKIP_OUTPUT_BYTES:
        return f"the output is {size} bytes as JSON; the limit is {MAX_SKIP_OUTPUT_BYTES}"
    needed = sorted(_fields_read(definition, step_id)) if definition is not None else []
    missing = [f for f in needed if not (isinstance(output, dict) and f in output)]
    if missing:
        return (
            f"later expressions read {', '.join(missing)} of step {step_id!r}'s output: give "
            f"an output with {'that field' if len(missing) == 1 else 'those fields'}, e.g. "
            f"--output '{json.dumps(dict.fromkeys(needed, '...'))}'"
        )
    return None


def _fields_read(definition: AdvancedWorkflow, step_id: str) -> set[str]:
    """The top-level output fields of `step_id` that expressions of the definition name."""
    base = step_id.split("[")[0]
    other = re.compile(rf"\bsteps\.{re.escape(base)}\.output\.([A-Za-z_][A-Za-z0-9_]*)")
    own = re.compile(r"\bresult\.([A-Za-z_][A-Za-z0-9_]*)")
    found: set[str] = set()
    for step in definition.all_steps():
        texts = [
            *step.input_mapping.values(),
            *step.output_mapping.values(),
            *(c.when for c in step.conditions),
        ]
        if step.wait is not None and step.wait.condition:
            texts.append(step.wait.condition)
        for text in texts:
            found.update(other.findall(text))
        if step.step_id == base:
            for text in step.output_mapping.values():
                found.update(own.findall(text))
    return found
