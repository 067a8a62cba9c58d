"""AdvancedWorkflowRun: the Temporal workflow that interprets an AdvancedWorkflow definition.

Deterministic code only. The step interpreter lives in `workflows.engine.interpreter`; this
module owns the run's lifecycle: validation inside the workflow, the durable timeout,
cancellation, saga compensation, the `status` query, `pause`/`resume` signals and what the Web
UI shows.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from activities.contracts import ErrorType
from workflows.contracts import (
    RESOLVE_ACTIVITY,
    RUN_WORKFLOW,
    SA_TAGS,
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
from workflows.dsl.models import AdvancedWorkflow, StepType
from workflows.dsl.validate import ValidationReport, input_diagnostics, validate_cached
from workflows.engine import approvals, events, queues, signatures, suspension, versions
from workflows.engine.alerts import ENDED_ALERTS, ended_alert, send_alert
from workflows.engine.facts import learn
from workflows.engine.interpreter import Interpreter
from workflows.engine.payload import fit_payload
from workflows.engine.reruns import Reuse
from workflows.engine.signatures import Signing
from workflows.engine.telemetry import RunSpans
from workflows.engine.visibility import Visibility


@workflow.defn(name=RUN_WORKFLOW)
class AdvancedWorkflowRun:
    """Runs one definition durably. Query `status` for the live execution state."""

    @workflow.init
    def __init__(self, run: RunInput) -> None:
        definition = run.definition if isinstance(run.definition, dict) else {}
        self._state = ExecutionResult(
            execution_id=workflow.info().workflow_id,
            workflow_id=str(definition.get("workflow_id", run.workflow or "")),
            version=str(definition.get("version", run.version or "1.0")),
            started_at=workflow.now().isoformat(),
        )
        self._interpreter: Interpreter | None = None
        self._spans = RunSpans(self._state.execution_id, self._state.workflow_id)
        self._ui = Visibility(self._state)
        self._pending_pause: bool | None = None
        self._run_input = run
        self._signing: Signing | None = None
        self._events: events.Catalog | None = None

    @workflow.query(name="status")
    def status(self) -> ExecutionResult:
        """The whole execution state, in the shape of the execution result."""
        return self._state

    def current_details(self) -> str:
        """The Web UI's current details, rendered when read (`visibility.DetailsInterceptor`)."""
        return self._ui.details()

    @workflow.update(name="approve")
    def approve(self, request: DecisionInput) -> DecisionResult:
        """Approve a waiting approval step (validated: see `approvals.refusal`)."""
        at = workflow.now().isoformat()
        return approvals.apply(self._state, request, "approve", at, self._signing)

    @approve.validator
    def _check_approve(self, request: DecisionInput) -> None:
        why = approvals.refusal(self._state, request, "approve", self._signing)
        if why is not None:
            raise ValueError(why)

    @workflow.update(name="reject")
    def reject(self, request: DecisionInput) -> DecisionResult:
        """Reject a waiting approval step: one rejection rejects it."""
        at = workflow.now().isoformat()
        return approvals.apply(self._state, request, "reject", at, self._signing)

    @reject.validator
    def _check_reject(self, request: DecisionInput) -> None:
        why = approvals.refusal(self._state, request, "reject", self._signing)
        if why is not None:
            raise ValueError(why)

    @workflow.signal(name="approve")
    def approve_signal(self, payload: Any) -> None:
        """The same decision as a signal (Web UI, `temporal workflow signal`): an invalid one is
        recorded in the audit trail and ignored."""
        at = workflow.now().isoformat()
        approvals.from_signal(self._state, payload, "approve", at, self._signing)
        self._ui.changed()

    @workflow.signal(name="reject")
    def reject_signal(self, payload: Any) -> None:
        """`reject` as a signal; an invalid one is audited and ignored."""
        at = workflow.now().isoformat()
        approvals.from_signal(self._state, payload, "reject", at, self._signing)
        self._ui.changed()

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
            self._ui.changed()
            return
        self._deliver(request)

    def _deliver(self, request: EventInput) -> EventResult:
        result = events.deliver(self._state, request, workflow.now().isoformat())
        self._ui.changed()
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
        self._ui.changed()
        return result

    def _definition(self) -> AdvancedWorkflow | None:
        """The validated definition (validated once per process: an update may arrive before
        `run()` has started); None before a run started by name has its definition."""
        run = self._run_input
        if not run.definition:
            return None
        report = validate_cached(run.definition, run.known_actions)
        return report.definition if report.ok else None

    def _event_catalog(self) -> events.Catalog:
        """The run's event steps by name (from the definition, validated once per process:
        an update may arrive before `run()` has started)."""
        if self._events is None:
            definition = self._definition()
            if definition is None:
                return {}  # not known yet (started by name), or invalid: nothing waits
            self._events = events.catalog(definition)
        return self._events

    def _cancel(self, request: CancelStepInput) -> CancelStepResult:
        assert self._interpreter is not None  # the validator refuses before the steps exist
        self._audit("cancel_step", request.by, f"{request.step_id}: {request.reason}")
        was = self._interpreter.cancel_step(request)
        return CancelStepResult(step_id=request.step_id, was=was)

    def _audit(self, kind: str, by: str, detail: str) -> None:
        entry = AuditEntry(at=workflow.now().isoformat(), kind=kind, by=by, detail=detail)
        self._state.audit.append(entry)
        self._ui.changed()

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
        versions.begin()  # before anything that waits (workflows/engine/versions.py)
        definition, interpreter = await self._prepared(await self._resolved(run))

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

    async def _prepared(self, run: RunInput) -> tuple[AdvancedWorkflow, Interpreter]:
        """Validate the definition, build the interpreter, learn what the workers know, and show
        the run (identity, tags, SLA timers) before its first step."""
        self._spans.start_run(self._state.version)
        definition = self._validated(run)
        interpreter = self._interpreter = Interpreter(
            definition,
            self._state,
            run.input,
            self._ui.changed,
            options=run.options,
            spans=self._spans,
        )
        # the status query shows every step pending while the run asks its workers
        await queues.check(definition, self._state, self._finish)
        await self._trust_keys(definition)
        interpreter.learned(await learn(definition, run.options))
        self._ui.records, self._ui.definition = interpreter.records, definition
        if run.reuse:  # a rerun: the original's completed steps are taken over, not run
            interpreter.reuse = Reuse(run.reuse)
        self._state.rerun_of = run.rerun_of
        if self._pending_pause is not None:  # a signal that arrived with the first task
            interpreter.paused = self._state.paused = self._pending_pause
        self._ui.identity()
        if definition.tags:  # on the spans, and searchable (one more command: patched)
            self._spans.tag(definition.tags)
            if versions.patched("tags-search-attribute"):
                workflow.upsert_search_attributes([SA_TAGS.value_set(definition.tags)])
        interpreter.sla.arm_run()
        self._ui.changed()
        return definition, interpreter

    async def _trust_keys(self, definition: AdvancedWorkflow) -> None:
        """A run with approval steps takes the workers' trusted approval keys into its history
        (a local activity, never read again on replay): with keys, decisions must be signed."""
        has_approvals = any(s.step_type == StepType.APPROVAL for s in definition.all_steps())
        if not has_approvals or not versions.patched("signed-decisions"):
            return
        self._signing = await signatures.trusted()

    async def _resolved(self, run: RunInput) -> RunInput:
        """A run started by name (`{workflow, version, input}`) gets its definition from the
        workers' library through a local activity: the history keeps it, a replay never reads
        the library again. An unknown name fails the run at once, naming the served ones."""
        if run.workflow is None or run.definition:
            return run
        request = {"workflow": run.workflow, "version": run.version}
        try:
            data = await workflow.execute_local_activity(
                RESOLVE_ACTIVITY,
                request,
                result_type=dict,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=3),
                summary=f"definition {run.workflow} {run.version or '(highest)'}",
            )
        except (ActivityError, ApplicationError) as exc:
            cause = exc.cause if isinstance(exc, ActivityError) else exc
            why = cause.message if isinstance(cause, ApplicationError) else str(exc)
            self._state.error = ErrorInfo(
                type=ErrorType.DEFINITION_INVALID, message=why, non_retryable=True
            )
            self._finish(WorkflowState.FAILED)
            raise ApplicationError(
                why,
                self._state.model_dump(mode="json"),
                type=ErrorType.DEFINITION_INVALID,
                non_retryable=True,
            ) from None
        self._run_input = run = run.model_copy(update={"definition": data})
        self._state.workflow_id = str(data.get("workflow_id", run.workflow))
        self._state.version = str(data.get("version", "1.0"))
        self._spans = RunSpans(self._state.execution_id, self._state.workflow_id)
        return run

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
        if versions.patched(ENDED_ALERTS):  # critical: someone should look (and rerun)
            await send_alert(ended_alert(self._state, state))
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
        self._ui.ended(state)

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


async def _stop(task: asyncio.Future[None]) -> None:
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
