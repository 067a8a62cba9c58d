"""AdvancedWorkflowRun: the Temporal workflow that interprets an AdvancedWorkflow definition.

Deterministic code only: no I/O, clocks or randomness. Steps start as soon as their dependencies
are satisfied (event-driven, not in waves), at most `max_parallel_steps` at once; action steps
are activities whose type is the action name. On failure, timeout or cancellation the completed
steps' `rollback_actions` run in reverse completion order (saga compensation).
"""

from __future__ import annotations

import asyncio
import heapq
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey, SearchAttributeUpdate
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    TimeoutError,
)

with workflow.unsafe.imports_passed_through():
    from activities.contracts import ErrorType, StepActivityInput, StepActivityResult
    from workflows.dsl.expressions import ExpressionError, compile_expression
    from workflows.dsl.models import (
        AdvancedWorkflow,
        CompensationRecord,
        EffectiveRetryPolicy,
        ErrorInfo,
        ExecutionResult,
        RunInput,
        StepRecord,
        StepStatus,
        WorkflowState,
        WorkflowStep,
    )
    from workflows.dsl.plan import Plan, build_plan
    from workflows.dsl.validate import validate_definition

WORKFLOW_NAME = "AdvancedWorkflowRun"
TASK_QUEUE_PREFIX = "cadenza."
# Actions heartbeat every third of this (the step executor does it for them), so a lost worker
# is noticed within 10 s instead of at the end of the step timeout.
HEARTBEAT_TIMEOUT = timedelta(seconds=10)

SA_WORKFLOW_ID = SearchAttributeKey.for_keyword("CadenzaWorkflowId")
SA_VERSION = SearchAttributeKey.for_keyword("CadenzaVersion")
SA_STATE = SearchAttributeKey.for_keyword("CadenzaState")

_SATISFIED = {StepStatus.COMPLETED, StepStatus.SKIPPED, StepStatus.FAILED}


class _StepFailure(Exception):
    """A step ended in failure; carries the error and the attempts it took."""

    def __init__(self, error: ErrorInfo, attempts: int) -> None:
        super().__init__(error.message)
        self.error = error
        self.attempts = attempts


@workflow.defn(name=WORKFLOW_NAME)
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
        self._input = run.input
        self._completion_order: list[str] = []
        self._steps_view: dict[str, dict[str, Any]] = {}
        self._failure: ErrorInfo | None = None
        self._running: set[str] = set()
        # steps per status, kept as statuses change: the Web UI details must not cost O(steps)
        self._counts: dict[str, int] = {}

    @workflow.query(name="status")
    def status(self) -> ExecutionResult:
        """The whole execution state, in the shape of the execution result."""
        return self._state

    @workflow.run
    async def run(self, run: RunInput) -> ExecutionResult:
        report = validate_definition(run.definition, run.known_actions)
        if not report.ok or report.definition is None:
            summary = report.summary()
            self._state.error = ErrorInfo(
                type=ErrorType.DEFINITION_INVALID, message=summary, non_retryable=True
            )
            await self._finish(WorkflowState.FAILED)
            raise ApplicationError(
                f"invalid definition:\n{summary}",
                self._state.model_dump(mode="json"),
                type=ErrorType.DEFINITION_INVALID,
                non_retryable=True,
            )
        self._definition = definition = report.definition
        self._plan = build_plan(definition.steps)
        self._steps = {s.step_id: s for s in definition.steps}
        self._state.vars = dict(definition.global_variables)
        self._state.steps = {sid: StepRecord() for sid in self._plan.order}
        self._counts[StepStatus.PENDING.value] = len(self._state.steps)
        self._upsert_identity()
        self._refresh_details()

        scheduler = asyncio.ensure_future(self._schedule())
        # The timeout timer is left pending when the run ends first: cancelling it would add
        # history events to every run for nothing.
        deadline = asyncio.ensure_future(
            workflow.sleep(definition.timeout, summary="workflow timeout")
        )
        try:
            await workflow.wait([scheduler, deadline], return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            await self._stop(scheduler)
            self._state.error = ErrorInfo(
                type=ErrorType.CANCELLED, message="the run was cancelled", non_retryable=True
            )
            await self._compensate()
            await self._finish(WorkflowState.CANCELLED)
            raise
        if not scheduler.done():
            await self._stop(scheduler)
            self._state.error = ErrorInfo(
                type=ErrorType.WORKFLOW_TIMEOUT,
                message=f"the run exceeded its timeout of {definition.timeout:g} s",
                non_retryable=True,
            )
            return await self._fail(WorkflowState.TIMEOUT, ErrorType.WORKFLOW_TIMEOUT)
        scheduler.result()
        if self._failure is not None:
            self._state.error = self._failure
            return await self._fail(WorkflowState.FAILED, ErrorType.WORKFLOW_FAILED)
        await self._finish(WorkflowState.COMPLETED)
        return self._state

    # ------------------------------------------------------------------ scheduling

    async def _schedule(self) -> None:
        plan: Plan = self._plan
        definition: AdvancedWorkflow = self._definition
        position = {sid: i for i, sid in enumerate(plan.order)}
        waiting_on = {sid: len(deps) for sid, deps in plan.upstream.items()}
        ready: list[tuple[int, int, str]] = []

        def push(sid: str) -> None:
            priority = -plan.critical_path[sid] if definition.optimization_enabled else 0
            heapq.heappush(ready, (priority, position[sid], sid))

        for sid in plan.order:
            if waiting_on[sid] == 0:
                push(sid)
        running: dict[str, asyncio.Task[None]] = {}
        try:
            while (ready or running) and self._failure is None:
                while ready and len(running) < definition.max_parallel_steps:
                    _, _, sid = heapq.heappop(ready)
                    skip_reason = self._skip_reason(sid)
                    if skip_reason is not None:
                        self._skip(sid, skip_reason)
                        for nxt in plan.downstream[sid]:
                            waiting_on[nxt] -= 1
                            if waiting_on[nxt] == 0:
                                push(nxt)
                        continue
                    running[sid] = asyncio.ensure_future(self._run_step(self._steps[sid]))
                if not running:
                    continue
                done, _ = await workflow.wait(
                    list(running.values()), return_when=asyncio.FIRST_COMPLETED
                )
                for sid in [s for s, t in running.items() if t in done]:
                    running.pop(sid).result()
                    if self._failure is not None:
                        break
                    for nxt in plan.downstream[sid]:
                        waiting_on[nxt] -= 1
                        if waiting_on[nxt] == 0:
                            push(nxt)
        finally:
            for task in running.values():
                task.cancel()
            if running:
                await workflow.wait(list(running.values()))

    def _skip_reason(self, sid: str) -> str | None:
        deps = self._plan.upstream[sid]
        if deps and all(self._state.steps[d].status == StepStatus.SKIPPED for d in deps):
            return "all of its dependencies were skipped"
        step = self._steps[sid]
        for k, cond in enumerate(step.conditions):
            try:
                value = self._evaluate(cond.when)
            except ExpressionError:
                return None  # reported as the step's failure when it runs
            if value is not True:
                return f"guard conditions[{k}] ({cond.when}) was {value!r}"
        return None

    def _skip(self, sid: str, reason: str) -> None:
        record = self._state.steps[sid]
        self._set_status(record, StepStatus.SKIPPED)
        record.skip_reason = reason
        record.started_at = record.ended_at = workflow.now().isoformat()
        self._steps_view[sid] = {"status": "skipped", "output": None}

    async def _stop(self, scheduler: asyncio.Future[None]) -> None:
        scheduler.cancel()
        try:
            await scheduler
        except asyncio.CancelledError:
            pass

    # ------------------------------------------------------------------ one step

    async def _run_step(self, step: WorkflowStep) -> None:
        record = self._state.steps[step.step_id]
        self._set_status(record, StepStatus.RUNNING)
        record.started_at = workflow.now().isoformat()
        self._running.add(step.step_id)
        self._refresh_details()
        policy = EffectiveRetryPolicy.merge(self._definition.retry_policy, step.retry_policy)
        try:
            try:
                for cond in step.conditions:  # guards that failed to evaluate in _skip_reason
                    self._evaluate(cond.when)
                params = {k: self._evaluate(e) for k, e in step.input_mapping.items()}
            except ExpressionError as exc:
                raise _StepFailure(_expression_error(exc, step.step_id), 0) from None
            record.input = params
            try:
                result = await self._action(step, step.action or "", params, policy, "step")
                output, record.attempts = result.output, result.attempt
            except _StepFailure as failure:
                record.attempts = failure.attempts
                record.error = failure.error
                record.recovered_by, output = await self._recover(step, params, failure, policy)
            record.retry_count = max(record.attempts - 1, 0)
            try:
                updates = {
                    k: self._evaluate(e, result=output) for k, e in step.output_mapping.items()
                }
            except ExpressionError as exc:
                raise _StepFailure(_expression_error(exc, step.step_id), record.attempts) from None
            self._state.vars.update(updates)
            record.output = output
            self._set_status(record, StepStatus.COMPLETED)
            self._completion_order.append(step.step_id)
        except _StepFailure as failure:
            self._set_status(record, StepStatus.FAILED)
            record.error = failure.error
            record.attempts = max(record.attempts, failure.attempts)
            record.retry_count = max(record.attempts - 1, 0)
            if not policy.continue_on_failure and self._failure is None:
                self._failure = failure.error
        except asyncio.CancelledError:
            self._set_status(record, StepStatus.FAILED)
            record.error = ErrorInfo(
                type=ErrorType.CANCELLED,
                message="cancelled while running",
                step_id=step.step_id,
                non_retryable=True,
            )
            raise
        finally:
            record.ended_at = workflow.now().isoformat()
            self._running.discard(step.step_id)
            self._steps_view[step.step_id] = {"status": str(record.status), "output": record.output}
            self._refresh_details()

    async def _recover(
        self,
        step: WorkflowStep,
        params: dict[str, Any],
        failure: _StepFailure,
        policy: EffectiveRetryPolicy,
    ) -> tuple[str, Any]:
        """Run the step's error handlers in order; the first that succeeds recovers the step."""
        payload = {
            "step_id": step.step_id,
            "input": params,
            "error": failure.error.model_dump(mode="json"),
        }
        for handler in step.error_handlers:
            try:
                result = await self._action(step, handler, payload, policy, "error_handler")
            except _StepFailure:
                continue
            return handler, result.output
        raise failure

    async def _action(
        self,
        step: WorkflowStep,
        action: str,
        params: dict[str, Any],
        policy: EffectiveRetryPolicy,
        role: str,
    ) -> StepActivityResult:
        """Run one action as an activity whose type is the action name."""
        request = StepActivityInput(
            workflow_id=self._definition.workflow_id,
            step_id=step.step_id,
            params=params,
            input_schema=(step.input_validation or None) if role == "step" else None,
            role=role,  # type: ignore[arg-type]
        )
        timeout = timedelta(seconds=step.timeout)
        try:
            return await workflow.execute_activity(
                action,
                request,
                result_type=StepActivityResult,
                start_to_close_timeout=timeout,
                heartbeat_timeout=min(HEARTBEAT_TIMEOUT, timeout),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=policy.initial_interval),
                    backoff_coefficient=policy.backoff_coefficient,
                    maximum_interval=timedelta(seconds=policy.maximum_interval),
                    maximum_attempts=policy.max_attempts,
                    non_retryable_error_types=policy.non_retryable_errors,
                ),
                task_queue=(
                    TASK_QUEUE_PREFIX + step.agent_capability if step.agent_capability else None
                ),
                summary=step.step_id if role == "step" else f"{step.step_id}: {role} {action}",
            )
        except ActivityError as exc:
            raise _StepFailure(*_activity_error(exc, step.step_id, policy)) from None

    # ------------------------------------------------------------------ ending

    async def _compensate(self) -> None:
        """Run rollback_actions of completed steps in reverse completion order."""
        for sid in reversed(self._completion_order):
            step = self._steps[sid]
            record = self._state.steps[sid]
            policy = EffectiveRetryPolicy.merge(self._definition.retry_policy, step.retry_policy)
            for action in step.rollback_actions:
                payload = {"step_id": sid, "input": record.input, "output": record.output}
                try:
                    await self._action(step, action, payload, policy, "rollback")
                    entry = CompensationRecord(step_id=sid, action=action, status="completed")
                except _StepFailure as failure:
                    entry = CompensationRecord(
                        step_id=sid, action=action, status="failed", error=failure.error
                    )
                self._state.compensations.append(entry)
                self._refresh_details()

    async def _fail(self, state: WorkflowState, error_type: ErrorType) -> ExecutionResult:
        await self._compensate()
        await self._finish(state)
        error = self._state.error
        message = error.message if error else state.value
        if error and error.step_id:
            message = f"step {error.step_id!r} failed: {error.type}: {error.message}"
        raise ApplicationError(
            message, self._state.model_dump(mode="json"), type=error_type, non_retryable=True
        )

    async def _finish(self, state: WorkflowState) -> None:
        self._state.status = state
        self._state.ended_at = workflow.now().isoformat()
        self._refresh_details()
        workflow.upsert_search_attributes([SA_STATE.value_set(state.value)])

    # ------------------------------------------------------------------ helpers

    def _evaluate(self, source: str, **extra: Any) -> Any:
        expression = compile_expression(source)
        scope: dict[str, Any] = {}
        for name in expression.names:
            if name == "input":
                scope[name] = self._input
            elif name == "vars":
                scope[name] = self._state.vars
            elif name == "steps":
                scope[name] = self._steps_view
            elif name == "now":
                scope[name] = workflow.now()
            elif name in extra:
                scope[name] = extra[name]
        return expression.evaluate(scope)

    def _upsert_identity(self) -> None:
        present = workflow.info().typed_search_attributes
        pairs: list[SearchAttributeUpdate[Any]] = []
        if present.get(SA_WORKFLOW_ID) is None:
            pairs.append(SA_WORKFLOW_ID.value_set(self._definition.workflow_id))
        if present.get(SA_VERSION) is None:
            pairs.append(SA_VERSION.value_set(self._definition.version))
        if present.get(SA_STATE) is None:
            pairs.append(SA_STATE.value_set(WorkflowState.RUNNING.value))
        if pairs:
            workflow.upsert_search_attributes(pairs)

    def _set_status(self, record: StepRecord, status: StepStatus) -> None:
        self._counts[record.status.value] -= 1
        self._counts[status.value] = self._counts.get(status.value, 0) + 1
        record.status = status

    def _refresh_details(self) -> None:
        """Current details for the Web UI: progress counts and what runs now."""
        counts = self._counts
        total = len(self._state.steps)
        lines = [
            f"**{self._state.workflow_id}** v{self._state.version}: {self._state.status.value}",
            "",
            f"steps: {counts.get('completed', 0)}/{total} completed"
            + "".join(f", {n} {s}" for s, n in sorted(counts.items()) if n and s != "completed"),
        ]
        if self._running:
            shown = sorted(self._running)[:20]
            lines.append("running: " + ", ".join(f"`{s}`" for s in shown))
        if self._state.error is not None:
            lines.append(f"error: {self._state.error.type}: {self._state.error.message[:200]}")
        if self._state.compensations:
            lines.append(f"compensations: {len(self._state.compensations)}")
        workflow.set_current_details("\n".join(lines))


def _expression_error(exc: ExpressionError, step_id: str) -> ErrorInfo:
    return ErrorInfo(
        type=ErrorType.EXPRESSION_ERROR, message=str(exc), step_id=step_id, non_retryable=True
    )


def _activity_error(
    exc: ActivityError, step_id: str, policy: EffectiveRetryPolicy
) -> tuple[ErrorInfo, int]:
    """Classify an activity failure: error type, message and the attempts it took."""
    cause = exc.cause
    attempts = policy.max_attempts
    if isinstance(cause, ApplicationError):
        details = cause.details[0] if cause.details else None
        if isinstance(details, dict) and isinstance(details.get("attempt"), int):
            attempts = details["attempt"]
        error = ErrorInfo(
            type=cause.type or ErrorType.STEP_FAILED,
            message=cause.message,
            step_id=step_id,
            non_retryable=cause.non_retryable,
        )
    elif isinstance(cause, TimeoutError):
        error = ErrorInfo(
            type=ErrorType.TIMEOUT,
            message=f"the action timed out ({cause.type.name if cause.type else 'timeout'})",
            step_id=step_id,
        )
    elif isinstance(cause, CancelledError):
        error = ErrorInfo(
            type=ErrorType.CANCELLED, message="the action was cancelled", step_id=step_id
        )
    else:
        error = ErrorInfo(type=ErrorType.STEP_FAILED, message=str(cause or exc), step_id=step_id)
    return error, attempts
