"""AdvancedWorkflowRun: the Temporal workflow that interprets an AdvancedWorkflow definition.

Deterministic code only. The step interpreter lives in `workflows.engine.interpreter`; this
module owns the run's lifecycle: validation inside the workflow, the durable timeout,
cancellation, saga compensation, the `status` query, `pause`/`resume` signals and what the Web
UI shows.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ApplicationError

from activities.contracts import ErrorType
from workflows.contracts import (
    RUN_WORKFLOW,
    SA_STATE,
    SA_VERSION,
    SA_WORKFLOW_ID,
    AuditEntry,
    CancelStepInput,
    CancelStepResult,
    DecisionInput,
    DecisionResult,
    ErrorInfo,
    EventInput,
    EventResult,
    ExecutionResult,
    FailStepInput,
    PauseInput,
    RetryStepInput,
    RunInput,
    SkipStepInput,
    StepDecision,
    StepDecisionResult,
    WorkflowState,
    parse_signal,
)
from workflows.dsl.models import AdvancedWorkflow
from workflows.dsl.validate import ValidationReport, input_diagnostics, validate_cached
from workflows.engine import approvals, events, suspension
from workflows.engine.interpreter import Interpreter
from workflows.engine.payload import fit_payload
from workflows.engine.progress import markdown_table, progress_rows, sla_summary
from workflows.engine.reruns import Reuse
from workflows.engine.telemetry import RunSpans

DETAIL_ROWS = 20  # rows of the progress table in the Web UI's current details


@workflow.defn(name=RUN_WORKFLOW)
class AdvancedWorkflowRun:
    """Runs one definition durably. Query `status` for the live execution state."""

    @workflow.init
    def __init__(self, run: RunInput) -> None:
        definition = run.definition if isinstance(run.definition, dict) else {}
        self._state = ExecutionResult(
            execution_id=workflow.info().workflow_id,
            workflow_id=str(definition.get("workflow_id", "")),
            version=str(definition.get("version", "1.0")),
            started_at=workflow.now().isoformat(),
        )
        self._interpreter: Interpreter | None = None
        self._spans = RunSpans(self._state.execution_id, self._state.workflow_id)
        self._listed_as = WorkflowState.RUNNING.value
        self._state_listed = False
        self._pending_pause: bool | None = None
        self._details_due = False
        self._run_input = run
        self._events: events.Catalog | None = None

    @workflow.query(name="status")
    def status(self) -> ExecutionResult:
        """The whole execution state, in the shape of the execution result."""
        return self._state

    @workflow.update(name="approve")
    def approve(self, request: DecisionInput) -> DecisionResult:
        """Approve a waiting approval step (validated: see `approvals.refusal`)."""
        return approvals.apply(self._state, request, "approve", workflow.now().isoformat())

    @approve.validator
    def _check_approve(self, request: DecisionInput) -> None:
        why = approvals.refusal(self._state, request, "approve")
        if why is not None:
            raise ValueError(why)

    @workflow.update(name="reject")
    def reject(self, request: DecisionInput) -> DecisionResult:
        """Reject a waiting approval step: one rejection rejects it."""
        return approvals.apply(self._state, request, "reject", workflow.now().isoformat())

    @reject.validator
    def _check_reject(self, request: DecisionInput) -> None:
        why = approvals.refusal(self._state, request, "reject")
        if why is not None:
            raise ValueError(why)

    @workflow.signal(name="approve")
    def approve_signal(self, payload: Any) -> None:
        """The same decision as a signal (Web UI, `temporal workflow signal`): an invalid one is
        recorded in the audit trail and ignored."""
        approvals.from_signal(self._state, payload, "approve", workflow.now().isoformat())
        self._refresh_details()

    @workflow.signal(name="reject")
    def reject_signal(self, payload: Any) -> None:
        """`reject` as a signal; an invalid one is audited and ignored."""
        approvals.from_signal(self._state, payload, "reject", workflow.now().isoformat())
        self._refresh_details()

    @workflow.update(name="cancel_step")
    def cancel_step(self, request: CancelStepInput) -> CancelStepResult:
        """Cancel one step, or a container with everything in it: it ends `cancelled`
        (StepCancelled) and its failure handling applies; one not started is skipped."""
        return self._cancel(request)

    @cancel_step.validator
    def _check_cancel_step(self, request: CancelStepInput) -> None:
        if self._interpreter is None:
            raise ValueError("the run has not started its steps yet: try again in a moment")
        why = self._interpreter.cancel_refusal(request)
        if why is not None:
            raise ValueError(why)

    @workflow.signal(name="cancel_step")
    def cancel_step_signal(self, payload: Any) -> None:
        """`cancel_step` as a signal (the Web UI): an invalid one is audited and ignored."""
        request, why = parse_signal(CancelStepInput, payload, "cancel_step")
        if request is not None:
            try:
                self._check_cancel_step(request)
            except ValueError as exc:
                why = f"cancel_step signal ignored: {exc}"
        if request is None or why:
            who = payload.get("by", "") if isinstance(payload, dict) else ""
            self._audit("ignored", str(who), why[:300])
            return
        self._cancel(request)

    @workflow.update(name="event")
    def event(self, request: EventInput) -> EventResult:
        """Deliver a named event: to the event step that has waited longest for it, or kept
        until one waits (refused before it reaches the history: see `events.refusal`)."""
        return self._deliver(request)

    @event.validator
    def _check_event(self, request: EventInput) -> None:
        why = events.refusal(self._state, self._event_catalog(), request)
        if why is not None:
            raise ValueError(why)

    @workflow.signal(name="event")
    def event_signal(self, payload: Any) -> None:
        """`event` as a signal (the Web UI, services without updates): an invalid one is
        audited and ignored."""
        request, why = parse_signal(EventInput, payload, "event")
        if request is not None:
            refused = events.refusal(self._state, self._event_catalog(), request)
            why = f"event signal ignored: {refused}" if refused else ""
        if request is None or why:
            events.ignored(self._state, payload, why, workflow.now().isoformat())
            self._refresh_details()
            return
        self._deliver(request)

    def _deliver(self, request: EventInput) -> EventResult:
        result = events.deliver(self._state, request, workflow.now().isoformat())
        self._refresh_details()
        return result

    @workflow.update(name="retry_step")
    def retry_step(self, request: RetryStepInput) -> StepDecisionResult:
        """Run a suspended step again with a fresh retry budget."""
        return self._decide_step(request)

    @retry_step.validator
    def _check_retry_step(self, request: RetryStepInput) -> None:
        self._check_step_decision(request)

    @workflow.update(name="skip_step")
    def skip_step(self, request: SkipStepInput) -> StepDecisionResult:
        """Treat a suspended step as completed with `output` (checked against the fields later
        expressions read from it)."""
        return self._decide_step(request)

    @skip_step.validator
    def _check_skip_step(self, request: SkipStepInput) -> None:
        self._check_step_decision(request)

    @workflow.update(name="fail_step")
    def fail_step(self, request: FailStepInput) -> StepDecisionResult:
        """Fail a suspended step as it would have failed (its failure handling applies)."""
        return self._decide_step(request)

    @fail_step.validator
    def _check_fail_step(self, request: FailStepInput) -> None:
        self._check_step_decision(request)

    def _check_step_decision(self, request: StepDecision) -> None:
        why = suspension.refusal(self._state, self._definition(), request)
        if why is not None:
            raise ValueError(why)

    def _decide_step(self, request: StepDecision) -> StepDecisionResult:
        interpreter = self._interpreter
        result = suspension.decide(
            self._state, interpreter.suspensions if interpreter else None, request
        )
        self._refresh_details()
        return result

    def _definition(self) -> AdvancedWorkflow | None:
        """The validated definition (validated once per process: an update may arrive before
        `run()` has started)."""
        run = self._run_input
        report = validate_cached(run.definition, run.known_actions)
        return report.definition if report.ok else None

    def _event_catalog(self) -> events.Catalog:
        """The run's event steps by name (from the definition, validated once per process:
        an update may arrive before `run()` has started)."""
        if self._events is None:
            definition = self._definition()
            self._events = events.catalog(definition) if definition is not None else {}
        return self._events

    def _cancel(self, request: CancelStepInput) -> CancelStepResult:
        assert self._interpreter is not None  # the validator refuses before the steps exist
        self._audit("cancel_step", request.by, f"{request.step_id}: {request.reason}")
        was = self._interpreter.cancel_step(request)
        return CancelStepResult(step_id=request.step_id, was=was)

    def _audit(self, kind: str, by: str, detail: str) -> None:
        entry = AuditEntry(at=workflow.now().isoformat(), kind=kind, by=by, detail=detail)
        self._state.audit.append(entry)
        self._refresh_details()

    @workflow.signal(name="pause")
    def pause(self, request: PauseInput) -> None:
        """Start no new steps until `resume`; running steps finish."""
        self._set_paused(True, request)

    @workflow.signal(name="resume")
    def resume(self, request: PauseInput) -> None:
        """Start steps again after `pause`."""
        self._set_paused(False, request)

    @workflow.run
    async def run(self, run: RunInput) -> ExecutionResult:
        self._spans.start_run(self._state.version)
        definition = self._validated(run)
        interpreter = self._interpreter = Interpreter(
            definition,
            self._state,
            run.input,
            self._changed,
            options=run.options,
            spans=self._spans,
        )
        if run.reuse:  # a rerun: the original's completed steps are taken over, not run
            interpreter.reuse = Reuse(run.reuse)
        self._state.rerun_of = run.rerun_of
        if self._pending_pause is not None:  # a signal that arrived with the first task
            interpreter.paused = self._state.paused = self._pending_pause
        self._upsert_identity()
        interpreter.sla.arm_run()
        self._refresh_details()

        scheduler = asyncio.ensure_future(interpreter.run_to_end(fail_fast=True))
        # The timeout timer is left pending when the run ends first: cancelling it would add
        # history events to every run for nothing.
        deadline = asyncio.ensure_future(
            workflow.sleep(definition.timeout, summary="workflow timeout")
        )
        try:
            await workflow.wait([scheduler, deadline], return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            await _stop(scheduler)
            self._state.error = ErrorInfo(
                type=ErrorType.CANCELLED, message="the run was cancelled", non_retryable=True
            )
            await interpreter.compensate()
            self._finish(WorkflowState.CANCELLED)
            raise
        if not scheduler.done():
            await _stop(scheduler)
            self._state.error = ErrorInfo(
                type=ErrorType.WORKFLOW_TIMEOUT,
                message=f"the run exceeded its timeout of {definition.timeout:g} s",
                non_retryable=True,
            )
            return await self._fail(WorkflowState.TIMEOUT, ErrorType.WORKFLOW_TIMEOUT)
        scheduler.result()
        interpreter.skip_unstarted()
        if interpreter.failure is not None:
            self._state.error = interpreter.failure
            return await self._fail(WorkflowState.FAILED, ErrorType.WORKFLOW_FAILED)
        self._finish(WorkflowState.COMPLETED)
        return fit_payload(self._state)

    def _validated(self, run: RunInput) -> AdvancedWorkflow:
        """The definition, checked again inside the workflow by the client's validator: an
        invalid definition or input fails the run (never its workflow task)."""
        report = validate_cached(run.definition, run.known_actions)
        refused = input_diagnostics(run.input)
        if report.ok and report.definition is not None and not refused:
            return report.definition
        if refused:  # a client that skipped CadenzaClient.start's checks
            report = ValidationReport(None, refused)
        summary = report.summary()
        error_type = ErrorType.INPUT_VALIDATION if refused else ErrorType.DEFINITION_INVALID
        self._state.error = ErrorInfo(type=error_type, message=summary, non_retryable=True)
        self._finish(WorkflowState.FAILED)
        raise ApplicationError(
            f"invalid {'run input' if refused else 'definition'}:\n{summary}",
            self._state.model_dump(mode="json"),
            type=error_type,
            non_retryable=True,
        )

    # ------------------------------------------------------------------ ending

    async def _fail(self, state: WorkflowState, error_type: ErrorType) -> ExecutionResult:
        assert self._interpreter is not None
        await self._interpreter.compensate()
        self._finish(state)
        error = self._state.error
        message = error.message if error else state.value
        if error and error.step_id:
            message = f"step {error.step_id!r} failed: {error.type}: {error.message}"
        raise ApplicationError(
            message,
            fit_payload(self._state).model_dump(mode="json"),
            type=error_type,
            non_retryable=True,
        )

    def _finish(self, state: WorkflowState) -> None:
        self._state.status = state
        self._state.ended_at = workflow.now().isoformat()
        self._spans.end_run(state, self._state.error.type if self._state.error else None)
        self._refresh_details()
        # CadenzaState says what Temporal's ExecutionStatus cannot: a run that never waited and
        # completed needs no upsert (one history event and one visibility write saved per run).
        if state != WorkflowState.COMPLETED or self._state_listed:
            workflow.upsert_search_attributes([SA_STATE.value_set(state.value)])

    # ------------------------------------------------------------------ visibility

    def _set_paused(self, paused: bool, request: PauseInput) -> None:
        entry = AuditEntry(
            at=workflow.now().isoformat(),
            kind="pause" if paused else "resume",
            by=request.by,
            detail=request.reason,
        )
        if self._interpreter is None:
            self._pending_pause = paused
            self._state.paused = paused
            self._state.audit.append(entry)
        else:
            self._interpreter.set_paused(paused, entry)

    def _upsert_identity(self) -> None:
        present = workflow.info().typed_search_attributes
        pairs: list[SearchAttributeUpdate[Any]] = []
        if present.get(SA_WORKFLOW_ID) is None:
            pairs.append(SA_WORKFLOW_ID.value_set(self._state.workflow_id))
        if present.get(SA_VERSION) is None:
            pairs.append(SA_VERSION.value_set(self._state.version))
        if pairs:
            workflow.upsert_search_attributes(pairs)

    def _refresh_details(self) -> None:
        """Current details for the Web UI and the waiting search attribute, now."""
        self._write_details()
        self._list_waiting()

    def _changed(self) -> None:
        """A step changed: the search attribute now (it is a command: its place in the history
        must not move), the details string once per activation (a container of 1,000 steps
        changes 2,000 times; the string is only read when someone looks)."""
        self._list_waiting()
        if not self._details_due:
            self._details_due = True
            asyncio.get_running_loop().call_soon(self._details_now)

    def _details_now(self) -> None:
        self._details_due = False
        self._write_details()

    def _write_details(self) -> None:
        """Current details for the Web UI: progress counts and what runs now."""
        state = self._state
        interpreter = self._interpreter
        lines = [f"**{state.workflow_id}** v{state.version}: {state.status.value}"]
        if state.paused:
            lines[0] += " (PAUSED: no new steps start; send the `resume` signal)"
        if state.rerun_of:
            lines[0] += f" (a rerun of `{state.rerun_of}`)"
        if interpreter is not None:
            counts = interpreter.records.counts
            lines += [
                "",
                f"steps: {counts.get('completed', 0)}/{len(state.steps)} completed"
                + "".join(
                    f", {n} {s}" for s, n in sorted(counts.items()) if n and s != "completed"
                ),
            ]
            shown = sorted(interpreter.records.running)[:DETAIL_ROWS]
            if shown:
                # the same rows as `cadenza status --watch`: running and waiting steps
                lines += ["", *markdown_table(progress_rows(state, workflow.now(), shown))]
                if len(interpreter.records.running) > len(shown):
                    lines.append(
                        f"... and {len(interpreter.records.running) - len(shown)} more running"
                    )
        if state.sla:
            lines += ["", sla_summary(state)]
        lines += _waiting_lines(state)
        if state.error is not None:
            lines.append(f"error: {state.error.type}: {state.error.message[:200]}")
        if state.compensations:
            lines.append(f"compensations: {len(state.compensations)}")
        workflow.set_current_details("\n".join(lines))

    def _list_waiting(self) -> None:
        state = self._state
        if state.status not in (WorkflowState.RUNNING, WorkflowState.SUSPENDED):
            return
        value = WorkflowState.RUNNING.value
        if state.suspended:
            value = WorkflowState.SUSPENDED.value
        elif state.pending_approvals or state.pending_events:
            value = "waiting"
        if value != self._listed_as:
            # `cadenza pending` finds runs through this attribute
            self._listed_as = value
            self._state_listed = True
            workflow.upsert_search_attributes([SA_STATE.value_set(value)])


def _waiting_lines(state: ExecutionResult) -> list[str]:
    """The Web UI's lines for what waits for people or systems, with the exact commands."""
    lines: list[str] = []
    for pending in state.pending_approvals.values():
        cli, signal = approvals.commands(state.execution_id, pending)
        who = ", ".join(pending.approvers) or "anyone"
        lines += [
            "",
            f"**`{pending.step_id}` waits for approval** by {who} "
            f"({pending.approvals} of {pending.required}, since {pending.since}"
            + (", escalated" if pending.escalated else "")
            + ")",
            f"- `{cli}`",
            f"- `{signal}`",
        ]
    for sid, suspended in state.suspended.items():
        lines += [
            "",
            f"**`{sid}` is SUSPENDED** since {suspended.since} after {suspended.attempts} "
            f"attempt(s): {suspended.error.type}: {suspended.error.message[:200]}",
            *(f"- `{c}`" for c in suspension.commands(state.execution_id, sid)),
        ]
    for waiting in state.pending_events.values():
        cli, update = events.commands(state.execution_id, waiting)
        lines += [
            "",
            f"**`{waiting.step_id}` waits for the event `{waiting.name}`** (since {waiting.since})",
            f"- `{cli}`",
            f"- `{update}`",
        ]
    if state.buffered_events:
        lines += ["", f"events kept for later steps: {len(state.buffered_events)}"]
    return lines


async def _stop(task: asyncio.Future[None]) -> None:
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
