"""The interpreter of cadenza's workflows: schedules steps level by level and runs each one
through its step type's handler (`workflows.engine.steps.HANDLERS`).

Deterministic code only. A *level* is a list of sibling steps (the top level of a definition, a
parallel container's children, a loop's body); each level is scheduled event-driven from its
plan. Every activity (action, error handler, rollback) takes one of `max_parallel_steps` slots;
waiting steps get slots by priority (longest remaining critical path first when
`optimization_enabled`, else definition order). The interpreter is the `StepContext` its
handlers see (`workflows.engine.context`); it owns the run's state, the handlers own what a
step type does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from temporalio import workflow

from activities.contracts import ErrorType, StepActivityResult
from workflows.contracts import (
    AuditEntry,
    CancelStepInput,
    ChildResult,
    ErrorInfo,
    ExecutionOptions,
    ExecutionResult,
    ScopeSnapshot,
    StepRecord,
    StepStatus,
    Termination,
)
from workflows.dsl.expressions import ExpressionError
from workflows.dsl.models import AdvancedWorkflow, EffectiveRetryPolicy, WorkflowStep
from workflows.dsl.plan import Plan, build_plan
from workflows.engine import scheduler
from workflows.engine.activity import execute_action
from workflows.engine.cancellation import Cancellation, unneeded_error
from workflows.engine.context import Priority, descendants
from workflows.engine.facts import execution_of
from workflows.engine.failures import RetryStep, StepFailure, expression_failure, recover
from workflows.engine.mutex import Mutexes
from workflows.engine.readiness import Readiness
from workflows.engine.records import Records
from workflows.engine.reruns import Reuse
from workflows.engine.saga import Saga
from workflows.engine.scope import Scope
from workflows.engine.sla import SlaWatch
from workflows.engine.slots import Slots
from workflows.engine.steps import HANDLERS
from workflows.engine.suspension import Suspensions
from workflows.engine.telemetry import RunSpans


class Interpreter:
    """Interprets one validated definition inside a workflow; owns the execution state."""

    def __init__(
        self,
        definition: AdvancedWorkflow,
        state: ExecutionResult,
        run_input: dict[str, Any],
        on_change: Callable[[], None],
        options: ExecutionOptions | None = None,
        scope: ScopeSnapshot | None = None,
        spans: RunSpans | None = None,
    ) -> None:
        self.definition = definition
        self.state = state
        self.input = run_input
        self.on_change = on_change
        self.options = options or ExecutionOptions()
        self.loop_root: str | None = None
        self._children = 0
        self._policies: dict[str, EffectiveRetryPolicy] = {}
        self.steps: dict[str, WorkflowStep] = {s.step_id: s for s in definition.all_steps()}
        self._plans: dict[str | None, Plan] = {}
        self._build_plans()
        self.slots = Slots(definition.max_parallel_steps)
        self.failure: ErrorInfo | None = None
        """The first untolerated failure on the critical path: it fails the run."""
        self.termination: Termination | None = None
        """The terminate step that ended the run, if one did."""
        self.cancellation = Cancellation()
        self.mutexes = Mutexes()
        self.suspensions = Suspensions(state)
        self._background: list[asyncio.Future[Any]] = []
        self._kept: dict[str, list[asyncio.Future[Any]]] = {}  # by the container that left it
        self.paused = False
        self.saga = Saga.of(self.steps.values())
        self.reuse: Reuse | None = None  # a rerun: records of the original's completed steps
        state.vars = dict(definition.global_variables)
        self.spans = spans or RunSpans(state.execution_id, definition.workflow_id)
        self.sla = SlaWatch(definition.sla_targets, state, on_change)
        if scope is not None:
            state.vars = dict(scope.vars)
        self.scope = Scope(run_input, state, scope)
        self._bodies = {s.map.step.step_id for s in self.steps.values() if s.map is not None}
        """Map bodies: templates of instances `<id>[i]`, not steps of the run (no record)."""
        self.records = Records(
            state, self.steps, self.spans, self.sla, self.scope, on_change, self._bodies
        )
        self.readiness = Readiness(state, self.steps, self.records, self.scope)

    def _build_plans(self) -> None:
        seconds = self.options.step_seconds
        self._plans[None] = build_plan(self.definition.steps, seconds)
        for step in self.steps.values():
            if step.parallel_steps:
                self._plans[step.step_id] = build_plan(step.parallel_steps, seconds)

    def learned(self, options: ExecutionOptions) -> None:
        """What the run's workers told it at start (`workflows.engine.facts.learn`): how
        actions run, and measured durations that order steps waiting for a slot."""
        self.options = options
        if options.step_seconds:
            self._build_plans()

    # ------------------------------------------------------------------ levels

    def plan(self, key: str | None) -> Plan:
        return self._plans[key]

    async def run_level(
        self, key: str | None, fail_fast: bool, until: Callable[[], bool] | None = None
    ) -> None:
        """Run the steps of one level (None: the top level) until all are settled or `until()`
        holds (`workflows.engine.scheduler.run_level`)."""
        optimize = self.definition.optimization_enabled
        await scheduler.run_level(self._plans[key], self, fail_fast, optimize, until)

    async def run_to_end(self, fail_fast: bool) -> None:
        """The top level, then what containers left running (`cancel_remaining: false`); those
        are cancelled if the top level stops first."""
        await scheduler.then_drain(self.run_level(None, fail_fast), self._background)

    # -- the scheduler's Decisions

    def stop(self, fail_fast: bool) -> bool:
        return self.termination is not None or (fail_fast and self.failure is not None)

    def start(self, sid: str, priority: Priority) -> Awaitable[None]:
        task = asyncio.ensure_future(self.run_step(self.steps[sid], priority))
        self.cancellation.tasks[sid] = task  # cancel_step cancels it
        return task

    def cancelling(self, sid: str) -> None:
        self.cancellation.unneeded.add(sid)

    def settle_unstarted(self, plan: Plan, sid: str) -> bool:
        """Settle a ready step that must not start: completed in the run a rerun reuses, blocked
        by a failed dependency, or skipped (a branch not taken, all dependencies skipped, a
        guard condition not true)."""
        if self.reuse is not None and self.reuse.settle(self, sid):
            return True
        return self.readiness.settle(plan, sid)

    # ------------------------------------------------------------------ one step

    async def run_step(self, step: WorkflowStep, priority: Priority) -> None:
        """Run one step of any type; record its outcome. Never raises but on cancellation."""
        if self.paused:
            await workflow.wait_condition(lambda: not self.paused)
        record = self.state.steps[step.step_id]
        handler = HANDLERS[step.step_type]
        if not handler.marks_running_itself:
            self.mark_running(step, record)
        policy = self.policy(step)
        evicted = False
        try:
            output = await self._outcome(step, record, policy, priority)
            try:
                scope = {"result": output}
                if not record.recovered_by:
                    scope = handler.output_scope(output)
                scope = {**self.scope.bound.get(step.step_id, {}), **scope}
                updates = {k: self.evaluate(e, **scope) for k, e in step.output_mapping.items()}
            except ExpressionError as exc:
                raise StepFailure(expression_failure(exc, step.step_id), record.attempts) from None
            self.state.vars.update(updates)
            record.output = output
            self.set_status(record, StepStatus.COMPLETED)
            self.saga.completed([step.step_id])
        except StepFailure as failure:
            self._failed(step, record, failure, policy)
        except asyncio.CancelledError:
            if record.status == StepStatus.PENDING:  # cancelled while waiting for a slot
                raise
            if step.step_id in self.cancellation.unneeded:  # its container completed
                self.set_status(record, StepStatus.CANCELLED)
                record.error = unneeded_error(step)
                raise
            self.set_status(record, StepStatus.FAILED)
            record.error = ErrorInfo(
                type=ErrorType.CANCELLED,
                message="cancelled while running",
                step_id=step.step_id,
                non_retryable=True,
            )
            raise
        except GeneratorExit:  # evicted from the worker's cache: the run replays elsewhere
            evicted = True
            raise
        finally:
            if not evicted:
                self.cancellation.tasks.pop(step.step_id, None)
                self.records.ended(step, record)

    async def _outcome(
        self, step: WorkflowStep, record: StepRecord, policy: EffectiveRetryPolicy, prio: Priority
    ) -> Any:
        """The step's output from its handler, from the error handler that recovered it, or from
        an operator's decision on the suspended step (`retry_step` runs it again)."""
        while True:
            try:
                guard_error = self.readiness.guard_errors.pop(step.step_id, None)
                if guard_error is not None:
                    raise StepFailure(expression_failure(guard_error, step.step_id))
                output = await self._handled(step, record, policy, prio)
            except StepFailure as failure:
                record.attempts = max(record.attempts, failure.attempts)
                record.error = failure.error
                if self.termination is not None or step.step_id in self.cancellation.unneeded:
                    raise  # cut short by a terminate step or its container's completion
                try:
                    record.recovered_by, output = await recover(self, step, record, failure, policy)
                except RetryStep:
                    continue
            record.retry_count = max(record.attempts - 1, 0)
            return output

    async def _handled(
        self, step: WorkflowStep, record: StepRecord, policy: EffectiveRetryPolicy, prio: Priority
    ) -> Any:
        """The handler's output; a `cancel_step` of this step is its failure (StepCancelled)."""
        try:
            async with self.mutexes.held(self, step, record):  # a step's `mutex`, if it has one
                return await HANDLERS[step.step_type].run(self, step, record, policy, prio)
        except (asyncio.CancelledError, StepFailure):
            # the cancellation reaches the step as CancelledError, or through its activity
            # (which saw it) as a failure of type Cancelled
            reason = self.cancellation.operator_failure(step)
            if reason is None:
                raise
        self.records.cancel_unstarted(self.members(step), f"not started: {reason}")
        raise StepFailure.of(step, ErrorType.STEP_CANCELLED, reason)

    def _failed(
        self,
        step: WorkflowStep,
        record: StepRecord,
        failure: StepFailure,
        policy: EffectiveRetryPolicy,
    ) -> None:
        record.attempts = max(record.attempts, failure.attempts)
        record.retry_count = max(record.attempts - 1, 0)
        if step.step_id in self.cancellation.unneeded:  # its activity saw it and ended
            self.set_status(record, StepStatus.CANCELLED)
            record.error = unneeded_error(step)
            return
        cancelled = failure.error.type == ErrorType.STEP_CANCELLED
        self.set_status(record, StepStatus.CANCELLED if cancelled else StepStatus.FAILED)
        record.error = failure.error
        if policy.continue_on_failure:
            self.readiness.tolerated.add(step.step_id)
        elif self.failure is None and self.termination is None and self._critical(step):
            self.failure = failure.error

    def _critical(self, step: WorkflowStep) -> bool:
        return step.step_id in self._plans[None].critical_path

    # ------------------------------------------------------------------ the StepContext

    def mark_running(self, step: WorkflowStep, record: StepRecord) -> None:
        self.records.running_now(step, record)

    def mark_waiting(self, step: WorkflowStep, record: StepRecord) -> None:
        self.records.waiting(step, record)

    def done_waiting(self, step: WorkflowStep, record: StepRecord) -> None:
        self.records.done_waiting(step, record)

    def changed(self) -> None:
        self.on_change()

    def skip_later(self, step_id: str, reason: str) -> None:
        self.readiness.branch_skips[step_id] = reason

    def cancel_refusal(self, request: CancelStepInput) -> str | None:
        """Why `request` may not cancel its step now, or None (the update's validator)."""
        skipping = request.step_id in self.readiness.branch_skips
        return self.cancellation.refusal(self.state, self.steps, request, skipping)

    def cancel_step(self, request: CancelStepInput) -> str:
        """Cancel a step (checked by `cancel_refusal`): one that has not started is skipped,
        a running or waiting one (a container with everything in it) is cancelled and its
        failure handling applies. Returns the status it had."""
        step = self.steps[request.step_id]
        was = self.state.steps[step.step_id].status.value
        inside = [s.step_id for s in self.members(step)]
        if not self.cancellation.request(step, request, inside):
            why = request.reason or "no reason given"
            self.readiness.branch_skips[step.step_id] = (
                f"cancelled by {request.by} before it started: {why}"
            )
        return was

    def members(self, step: WorkflowStep) -> list[WorkflowStep]:
        """The steps inside `step` at any depth, a map's instances in place of its body."""
        out: list[WorkflowStep] = []
        for inner in descendants(step):
            if inner.step_id in self._bodies:
                prefix = f"{inner.step_id}["
                out += [s for sid, s in self.steps.items() if sid.startswith(prefix)]
            else:
                out.append(inner)
        return out

    def add_instances(self, body: WorkflowStep, indexes: range) -> list[WorkflowStep]:
        out = []
        for i in indexes:
            iid = f"{body.step_id}[{i}]"
            if iid not in self.steps:
                self.records.add(body.model_copy(update={"step_id": iid}))
            out.append(self.steps[iid])
        return out

    async def run_instance(
        self, instance: WorkflowStep, bindings: dict[str, Any], priority: Priority
    ) -> None:
        """Run one instance of a map's body with its item and index bound (or skip it when its
        guard conditions do not hold)."""
        self.scope.bind(instance.step_id, bindings)
        current = asyncio.current_task()
        if current is not None:
            self.cancellation.tasks[instance.step_id] = current
        reason = self.readiness.guard_reason(instance)
        if reason is not None:
            self.records.skip(instance.step_id, reason)
            return
        await self.run_step(instance, priority)

    def terminate(self, termination: Termination) -> None:
        if self.termination is not None:  # the first terminate step wins
            return
        self.termination = termination
        if termination.status == "failed" and self.failure is None:
            self.failure = ErrorInfo(
                type=termination.error_type,
                message=termination.message or f"terminated by '{termination.step_id}'",
                step_id=termination.step_id,
                non_retryable=True,
            )
        self.on_change()

    @property
    def terminated(self) -> bool:
        return self.termination is not None

    def cancel_unstarted(self, steps: Sequence[WorkflowStep], reason: str) -> None:
        self.records.cancel_unstarted(steps, reason)

    def runs_in_batches(self, step: WorkflowStep) -> None:
        if step.step_id not in self.cancellation.batched:
            self.cancellation.batched.append(step.step_id)

    def keep_running(self, work: asyncio.Future[Any], owner: str) -> None:
        self._background.append(work)
        self._kept.setdefault(owner, []).append(work)

    async def finish_kept(self, owners: Sequence[WorkflowStep]) -> None:
        await scheduler.finish([w for o in owners for w in self._kept.pop(o.step_id, [])])

    def skip_unstarted(self) -> None:
        """After a termination: every step that never started is skipped, naming why."""
        if self.termination is None:
            return
        reason = f"the run was terminated by '{self.termination.step_id}'"
        for sid, record in self.state.steps.items():
            if record.status == StepStatus.PENDING:
                self.records.skip(sid, reason)

    def reset(self, step_id: str) -> None:
        record = self.state.steps[step_id]
        if record.status != StepStatus.PENDING:
            self.set_status(record, StepStatus.PENDING)
        self.readiness.reset(step_id)

    def slot(self, priority: Priority) -> AbstractAsyncContextManager[None]:
        return self.slots.for_step(priority, lambda: self.paused)

    async def call_activity(
        self,
        step: WorkflowStep,
        action: str,
        params: dict[str, Any],
        policy: EffectiveRetryPolicy,
        role: str,
    ) -> StepActivityResult:
        wid = self.definition.workflow_id
        execution = execution_of(self.definition, step, action, self.options)
        return await execute_action(
            wid, step, action, params, policy, role, self.options, execution
        )

    async def run_action(
        self,
        step: WorkflowStep,
        action: str,
        params: dict[str, Any],
        policy: EffectiveRetryPolicy,
        role: str,
        priority: Priority,
    ) -> StepActivityResult:
        """Run one action as an activity whose type is the action name, holding a slot."""
        # a loop iteration waits while the run is paused; handlers, rollbacks and reminders not
        slot = self.slot(priority) if role == "step" else self.slots.held(priority)
        async with slot:
            return await self.call_activity(step, action, params, policy, role)

    def snapshot(self) -> ScopeSnapshot:
        return self.scope.snapshot()

    async def run_child(
        self, workflow_type: str, request: Any, suffix: str, summary: str
    ) -> ChildResult:
        self._children += 1
        result: ChildResult = await workflow.execute_child_workflow(
            workflow_type,
            request,
            id=f"{workflow.info().workflow_id}.{suffix}.{self._children}",
            result_type=ChildResult,
            static_summary=summary,
        )
        return result

    def absorb(self, result: ChildResult) -> None:
        self.readiness.tolerated.update(self.records.absorbed(result))
        self.saga.completed(result.completion_order)
        if result.termination is not None:
            self.terminate(result.termination)
        self.state.vars.update(result.vars)
        self.on_change()

    def child_result(self, output: Any = None, error: ErrorInfo | None = None) -> ChildResult:
        """This run's state as a child workflow's result."""
        return ChildResult(
            records=self.records.non_pending(),
            completion_order=self.saga.order,
            vars=self.state.vars,
            output=output,
            error=error,
            termination=self.termination,
        )

    async def compensate(self, only: Sequence[WorkflowStep] | None = None) -> None:
        await self.saga.compensate(
            self.state, self.steps, self.policy, self.run_action, self.on_change, only
        )

    # ------------------------------------------------------------------ state

    def policy(self, step: WorkflowStep) -> EffectiveRetryPolicy:
        """The step's retry policy merged with the definition's (computed once per step)."""
        policy = self._policies.get(step.step_id)
        if policy is None:
            policy = EffectiveRetryPolicy.merge(self.definition.retry_policy, step.retry_policy)
            self._policies[step.step_id] = policy
        return policy

    def set_status(self, record: StepRecord, status: StepStatus) -> None:
        self.records.set_status(record, status)

    def set_paused(self, paused: bool, entry: AuditEntry) -> None:
        self.paused = paused
        self.state.paused = paused
        self.state.audit.append(entry)
        self.on_change()

    def step_params(self, step: WorkflowStep, **extra: Any) -> dict[str, Any]:
        return self.scope.step_params(step, **extra)

    def evaluate(self, source: str, **extra: Any) -> Any:
        return self.scope.evaluate(source, **extra)
