"""The step interpreter used by cadenza's workflows: levels, step types, slots, compensation.

Deterministic code only. A *level* is a list of sibling steps (the top level of a definition, a
parallel container's children, a loop's body); each level is scheduled event-driven from its
plan. Every activity (action, error handler, rollback) takes one of `max_parallel_steps` slots;
waiting steps get slots by priority (longest remaining critical path first when
`optimization_enabled`, else definition order).

Step types that wait for people or time live in `workflows.human_steps` (approval, wait), those a
model may decide in `workflows.model_steps` (conditional, agent); how steps fail in
`workflows.failures`.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        TASK_QUEUE_PREFIX,
        ErrorType,
        StepActivityInput,
        StepActivityResult,
    )
    from workflows.dsl.expressions import LOOP_NAMES, ExpressionError, compile_expression
    from workflows.dsl.models import (
        AdvancedWorkflow,
        AuditEntry,
        BatchInput,
        ChildResult,
        CompensationRecord,
        EffectiveRetryPolicy,
        ErrorInfo,
        ExecutionOptions,
        ExecutionResult,
        LoopInput,
        LoopProgress,
        ScopeSnapshot,
        StepRecord,
        StepStatus,
        StepType,
        WorkflowStep,
    )
    from workflows.dsl.plan import Plan, build_plan
    from workflows.retry import temporal_retry_policy
    from workflows.sla import SlaWatch
    from workflows.telemetry import RunSpans

from workflows import human_steps, model_steps
from workflows.failures import StepFailure, activity_failure, expression_failure

BATCH_WORKFLOW = "CadenzaBatchRun"
LOOP_WORKFLOW = "CadenzaLoopRun"
# Actions heartbeat every third of this (the step executor does it for them), so a lost worker
# is noticed within 10 s instead of at the end of the step timeout.
HEARTBEAT_TIMEOUT = timedelta(seconds=10)

Priority = tuple[int, int]


class Slots:
    """A semaphore whose waiters are served by priority (lowest tuple first), deterministically."""

    def __init__(self, size: int) -> None:
        self.free = size
        self._waiters: list[tuple[Priority, int, asyncio.Future[None]]] = []
        self._seq = 0

    async def acquire(self, priority: Priority) -> None:
        while self._waiters and self._waiters[0][2].done():  # waiters cancelled meanwhile
            heapq.heappop(self._waiters)
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._waiters, (priority, self._seq, future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed over just as we were cancelled
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)
                return
        self.free += 1


class Runner:
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
        """In a loop child workflow: the loop step that continues as new instead of handing off."""
        self._children = 0
        self._policies: dict[str, EffectiveRetryPolicy] = {}
        self._guard_errors: dict[str, ExpressionError] = {}
        self.steps: dict[str, WorkflowStep] = {s.step_id: s for s in definition.all_steps()}
        self.plans: dict[str | None, Plan] = {None: build_plan(definition.steps)}
        for step in self.steps.values():
            if step.parallel_steps:
                self.plans[step.step_id] = build_plan(step.parallel_steps)
        self.slots = Slots(definition.max_parallel_steps)
        self.failure: ErrorInfo | None = None
        self.completion_order: list[str] = []
        self.running: set[str] = set()
        self.paused = False
        self.counts: dict[str, int] = {StepStatus.PENDING.value: len(self.steps)}
        self.steps_view: dict[str, dict[str, Any]] = {}
        self.branch_skips: dict[str, str] = {}
        self._tolerated: set[str] = set()
        self._loop_members: set[str] = set()
        for step in self.steps.values():
            if step.step_type == StepType.LOOP:
                self._loop_members.update(s.step_id for s in _descendants(step))
        state.vars = dict(definition.global_variables)
        state.steps = {sid: StepRecord() for sid in self.steps}
        self.spans = spans or RunSpans(state.execution_id, definition.workflow_id)
        self.sla = SlaWatch(definition.sla_targets, state, on_change)
        if scope is not None:
            state.vars = dict(scope.vars)
            self.steps_view = dict(scope.steps)

    # ------------------------------------------------------------------ levels

    async def run_level(self, key: str | None, fail_fast: bool) -> None:
        """Run the steps of one level (None: the top level) until all are settled.

        With `fail_fast` (the top level), the first untolerated failure stops the level: running
        steps are cancelled and no new step starts. Otherwise (containers) siblings go on and
        dependents of a failed step fail with DependencyFailed.
        """
        plan = self.plans[key]
        position = {sid: i for i, sid in enumerate(plan.order)}
        waiting_on = {sid: len(deps) for sid, deps in plan.upstream.items()}
        ready: list[tuple[Priority, str]] = []

        def push(sid: str) -> None:
            heapq.heappush(ready, (self._priority(plan, position, sid), sid))

        def settle(sid: str) -> None:
            for nxt in plan.downstream[sid]:
                waiting_on[nxt] -= 1
                if waiting_on[nxt] == 0:
                    push(nxt)

        for sid in plan.order:
            if waiting_on[sid] == 0:
                push(sid)
        running: dict[str, asyncio.Task[None]] = {}
        # Completed steps are reported by done-callbacks: waiting on every running task at each
        # wake-up (asyncio.wait) would cost O(running) callbacks per completion, quadratic in a
        # large container.
        finished: list[str] = []
        wake = asyncio.Event()

        def on_done(sid: str) -> None:
            finished.append(sid)
            wake.set()

        try:
            while ready or running:
                if fail_fast and self.failure is not None:
                    break
                while ready:
                    priority, sid = heapq.heappop(ready)
                    blocked = self._blocked_by(plan, sid)
                    if blocked is not None:
                        self._fail_unstarted(sid, blocked)
                        settle(sid)
                        continue
                    reason = self._skip_reason(plan, sid)
                    if reason is not None:
                        self._skip(sid, reason)
                        settle(sid)
                        continue
                    task = asyncio.ensure_future(self.run_step(self.steps[sid], priority))
                    task.add_done_callback(lambda _, sid=sid: on_done(sid))  # type: ignore[misc]
                    running[sid] = task
                if not running:
                    continue
                if not finished:
                    wake.clear()
                    await wake.wait()
                settled, finished[:] = list(finished), []
                for sid in settled:
                    running.pop(sid).result()
                    settle(sid)
        except GeneratorExit:  # the worker evicted the run from its cache: touch nothing
            running.clear()
            raise
        finally:
            for task in running.values():
                task.cancel()
            if running:
                await workflow.wait(list(running.values()))

    def _priority(self, plan: Plan, position: dict[str, int], sid: str) -> Priority:
        critical = plan.critical_path[sid] if self.definition.optimization_enabled else 0
        return (-critical, position[sid])

    def _blocked_by(self, plan: Plan, sid: str) -> str | None:
        for dep in plan.upstream[sid]:
            record = self.state.steps[dep]
            if record.status == StepStatus.FAILED and dep not in self._tolerated:
                return dep
        return None

    def _skip_reason(self, plan: Plan, sid: str) -> str | None:
        if sid in self.branch_skips:
            return self.branch_skips[sid]
        deps = plan.upstream[sid]
        if deps and all(self.state.steps[d].status == StepStatus.SKIPPED for d in deps):
            return "all of its dependencies were skipped"
        step = self.steps[sid]
        if step.step_type == StepType.CONDITIONAL:
            return None  # its conditions choose a branch; they are not guards
        for k, cond in enumerate(step.conditions):
            try:
                value = self.evaluate(cond.when)
            except ExpressionError as exc:
                self._guard_errors[sid] = exc  # reported as the step's failure when it runs
                return None
            if value is not True:
                return f"guard conditions[{k}] ({cond.when}) was {value!r}"
        return None

    def _skip(self, sid: str, reason: str) -> None:
        record = self.state.steps[sid]
        self.set_status(record, StepStatus.SKIPPED)
        record.skip_reason = reason
        record.started_at = record.ended_at = workflow.now().isoformat()
        self.steps_view[sid] = {"status": "skipped", "output": None}
        self.spans.settled_unstarted(self.steps[sid], record)
        self.on_change()

    def _fail_unstarted(self, sid: str, dep: str) -> None:
        record = self.state.steps[sid]
        self.set_status(record, StepStatus.FAILED)
        record.error = ErrorInfo(
            type=ErrorType.DEPENDENCY_FAILED,
            message=f"not started: its dependency '{dep}' failed",
            step_id=sid,
            non_retryable=True,
        )
        record.started_at = record.ended_at = workflow.now().isoformat()
        self.steps_view[sid] = {"status": "failed", "output": None}
        self.spans.settled_unstarted(self.steps[sid], record)
        self.on_change()

    # ------------------------------------------------------------------ one step

    async def run_step(self, step: WorkflowStep, priority: Priority) -> None:
        """Run one step of any type; record its outcome. Never raises but on cancellation."""
        if self.paused:
            await workflow.wait_condition(lambda: not self.paused)
        record = self.state.steps[step.step_id]
        if step.step_type != StepType.ACTION:  # an action step starts when it gets a slot
            self._mark_running(step, record)
        policy = self.policy(step)
        evicted = False
        try:
            try:
                guard_error = self._guard_errors.pop(step.step_id, None)
                if guard_error is not None:
                    raise StepFailure(expression_failure(guard_error, step.step_id))
                output = await self._execute(step, record, policy, priority)
            except StepFailure as failure:
                record.attempts = max(record.attempts, failure.attempts)
                record.error = failure.error
                if step.step_type == StepType.PARALLEL:
                    await self.compensate(_descendants(step))
                record.recovered_by, output = await self._recover(step, record, failure, policy)
            record.retry_count = max(record.attempts - 1, 0)
            try:
                scope: dict[str, Any] = {"result": output}
                if step.step_type == StepType.LOOP and not record.recovered_by:
                    # a loop's output_mapping sees the last iteration, and how many there were
                    scope = {"result": output["last"], "iteration": output["iterations"]}
                updates = {k: self.evaluate(e, **scope) for k, e in step.output_mapping.items()}
            except ExpressionError as exc:
                raise StepFailure(expression_failure(exc, step.step_id), record.attempts) from None
            self.state.vars.update(updates)
            record.output = output
            self.set_status(record, StepStatus.COMPLETED)
            if step.step_id not in self._loop_members:
                self.completion_order.append(step.step_id)
        except StepFailure as failure:
            self.set_status(record, StepStatus.FAILED)
            record.error = failure.error
            record.attempts = max(record.attempts, failure.attempts)
            record.retry_count = max(record.attempts - 1, 0)
            if policy.continue_on_failure:
                self._tolerated.add(step.step_id)
            elif self.failure is None and step.step_id in self.plans[None].critical_path:
                self.failure = failure.error
        except asyncio.CancelledError:
            if record.status == StepStatus.PENDING:  # cancelled while waiting for a slot
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
                record.ended_at = workflow.now().isoformat()
                self.running.discard(step.step_id)
                self.sla.disarm_step(step.step_id)
                self.spans.end_step(step, record)
                self.steps_view[step.step_id] = {
                    "status": str(record.status),
                    "output": record.output,
                }
                self.on_change()

    async def _execute(
        self, step: WorkflowStep, record: StepRecord, policy: EffectiveRetryPolicy, prio: Priority
    ) -> Any:
        kind = step.step_type
        if kind == StepType.ACTION:
            await self.slot_for_step(prio)
            try:
                self._mark_running(step, record)
                params = self.step_params(step)
                record.input = params
                result = await self._activity(step, step.action or "", params, policy, "step")
            finally:
                self.slots.release()
            record.attempts = result.attempt
            return result.output
        if kind == StepType.PARALLEL:
            return await self._parallel(step, policy)
        if kind == StepType.CONDITIONAL:
            return await model_steps.conditional(self, step, policy)
        if kind == StepType.WAIT:
            return await human_steps.wait(self, step)
        if kind == StepType.LOOP:
            return await self.loop(step, record, policy, prio)
        if kind == StepType.APPROVAL:
            return await human_steps.approval(self, step, record, policy)
        if kind == StepType.AGENT:
            return await model_steps.agent(self, step, record, policy, prio)
        raise StepFailure.of(
            step, ErrorType.STEP_FAILED, f"step type '{kind}' is not supported by this worker"
        )

    async def slot_for_step(self, priority: Priority) -> None:
        """A slot to start a step's action; while the run is paused, none is taken."""
        while True:
            if self.paused:
                await workflow.wait_condition(lambda: not self.paused)
            await self.slots.acquire(priority)
            if not self.paused:
                return
            self.slots.release()  # paused while waiting for the slot

    def _mark_running(self, step: WorkflowStep, record: StepRecord) -> None:
        self.set_status(record, StepStatus.RUNNING)
        record.started_at = workflow.now().isoformat()
        record.ended_at = None
        self.running.add(step.step_id)
        self.spans.start_step(step)
        self.sla.arm_step(step.step_id)
        self.on_change()

    def step_params(self, step: WorkflowStep, **extra: Any) -> dict[str, Any]:
        try:
            return {k: self.evaluate(e, **extra) for k, e in step.input_mapping.items()}
        except ExpressionError as exc:
            raise StepFailure(expression_failure(exc, step.step_id)) from None

    # ------------------------------------------------------------------ step types

    async def _parallel(self, step: WorkflowStep, policy: EffectiveRetryPolicy) -> dict[str, Any]:
        if len(step.parallel_steps) > self.options.batch_threshold:
            await self._run_batches(step)
        else:
            await self.run_level(step.step_id, fail_fast=False)
        output = self.container_output(step.parallel_steps)
        if output["success_rate"] < policy.parallel_failure_threshold:
            raise StepFailure.of(
                step,
                ErrorType.PARALLEL_THRESHOLD,
                f"{output['successful_steps']} of {output['total_steps']} children succeeded "
                f"({output['success_rate']:.0%}); the threshold is "
                f"{policy.parallel_failure_threshold:.0%}",
            )
        return output

    async def _run_batches(self, step: WorkflowStep) -> None:
        """Run a large container's children in child workflows, so no history grows too long.

        Children connected by dependencies stay in one batch. At most `max_parallel_steps`
        activities run at once across all batches: K batches run at a time, each with
        `max_parallel_steps // K` slots.
        """
        batches = _pack(self.plans[step.step_id], self.options.batch_size)
        concurrent = min(len(batches), self.definition.max_parallel_steps)
        share = max(1, self.definition.max_parallel_steps // concurrent)
        gate = asyncio.Semaphore(concurrent)
        children = {c.step_id: c for c in step.parallel_steps}

        async def run_batch(index: int, ids: list[str]) -> None:
            async with gate:
                definition = self.definition.model_copy(
                    update={
                        "steps": [children[i] for i in ids],
                        "max_parallel_steps": share,
                        "sla_targets": None,
                    }
                )
                result: ChildResult = await workflow.execute_child_workflow(
                    BATCH_WORKFLOW,
                    BatchInput(
                        definition=definition.model_dump(mode="json", exclude_defaults=True),
                        scope=self.snapshot(),
                        options=self.options,
                    ),
                    id=self._child_id(f"{step.step_id}.batch-{index}"),
                    result_type=ChildResult,
                    static_summary=f"{step.step_id}: batch {index + 1}/{len(batches)} "
                    f"({len(ids)} children)",
                )
                self.absorb(result)

        await asyncio.gather(*(run_batch(i, ids) for i, ids in enumerate(batches)))

    def snapshot(self) -> ScopeSnapshot:
        """What a child workflow's expressions may read."""
        return ScopeSnapshot(input=self.input, vars=self.state.vars, steps=self.steps_view)

    def absorb(self, result: ChildResult) -> None:
        """Merge what a child workflow did into this run's state."""
        for sid, record in result.records.items():
            current = self.state.steps[sid]
            self.counts[current.status.value] -= 1
            self.counts[record.status.value] = self.counts.get(record.status.value, 0) + 1
            self.state.steps[sid] = record
            if record.status != StepStatus.PENDING:
                self.steps_view[sid] = {"status": record.status.value, "output": record.output}
            if record.status == StepStatus.FAILED and record.error is None:
                self._tolerated.add(sid)
        self.completion_order.extend(
            s for s in result.completion_order if s not in self._loop_members
        )
        self.state.vars.update(result.vars)
        self.on_change()

    def child_result(self, output: Any = None, error: ErrorInfo | None = None) -> ChildResult:
        """This run's state as a child workflow's result."""
        return ChildResult(
            records={
                sid: r for sid, r in self.state.steps.items() if r.status != StepStatus.PENDING
            },
            completion_order=self.completion_order,
            vars=self.state.vars,
            output=output,
            error=error,
        )

    def _child_id(self, suffix: str) -> str:
        self._children += 1
        return f"{workflow.info().workflow_id}.{suffix}.{self._children}"

    def container_output(self, children: Sequence[WorkflowStep]) -> dict[str, Any]:
        """The seed's parallel result shape over a container's children."""
        results: dict[str, Any] = {}
        failures: list[dict[str, Any]] = []
        for child in children:
            record = self.state.steps[child.step_id]
            if record.status == StepStatus.FAILED:
                error = record.error
                failures.append(
                    {
                        "step_id": child.step_id,
                        "error": error.model_dump(mode="json") if error else None,
                    }
                )
            else:
                results[child.step_id] = record.output
        total = len(children)
        return {
            "total_steps": total,
            "successful_steps": total - len(failures),
            "failed_steps": len(failures),
            "success_rate": (total - len(failures)) / total if total else 1.0,
            "results": results,
            "failures": failures,
        }

    async def loop(
        self,
        step: WorkflowStep,
        record: StepRecord,
        policy: EffectiveRetryPolicy,
        prio: Priority,
        progress: LoopProgress | None = None,
    ) -> dict[str, Any]:
        """Iterate until loop_condition is false; long loops move to a child workflow chain."""
        progress = progress or LoopProgress()
        condition = step.loop_condition or "false"
        started_at = progress.iterations
        while True:
            done_here = progress.iterations - started_at
            if self.loop_root == step.step_id:
                if done_here >= self.options.continue_as_new_every or (
                    done_here and workflow.info().is_continue_as_new_suggested()
                ):
                    self.continue_loop(step, progress)
            elif done_here >= self.options.loop_inline_iterations:
                return await self._loop_child(step, record, progress)
            result = await self._iteration(step, record, policy, prio, progress)
            progress.iterations += 1
            progress.last = result
            progress.results.append(result)
            overflow = len(progress.results) - self.options.max_kept_results
            if overflow > 0:
                del progress.results[:overflow]
                progress.results_offset += overflow
            try:
                again = self.evaluate(condition, result=result, iteration=progress.iterations)
            except ExpressionError as exc:
                raise StepFailure(expression_failure(exc, step.step_id)) from None
            if again is not True:
                return loop_output(progress)
            if progress.iterations >= step.loop_max_iterations:
                raise StepFailure.of(
                    step,
                    ErrorType.LOOP_LIMIT_EXCEEDED,
                    f"loop_condition still held after loop_max_iterations="
                    f"{step.loop_max_iterations} iterations",
                    attempts=progress.attempts,
                )

    async def _iteration(
        self,
        step: WorkflowStep,
        record: StepRecord,
        policy: EffectiveRetryPolicy,
        prio: Priority,
        progress: LoopProgress,
    ) -> Any:
        iteration = progress.iterations
        if step.parallel_steps:
            for child in _descendants(step):
                self._reset(child.step_id)
            await self.run_level(step.step_id, fail_fast=False)
            body = self.container_output(step.parallel_steps)
            if body["failed_steps"]:
                first = body["failures"][0]
                raise StepFailure.of(
                    step,
                    ErrorType.STEP_FAILED,
                    f"iteration {iteration}: child '{first['step_id']}' failed: "
                    f"{(first['error'] or {}).get('message', '')}",
                    non_retryable=False,
                    attempts=progress.attempts,
                )
            return body
        params = self.step_params(step, iteration=iteration, result=progress.last)
        record.input = params
        try:
            activity = await self.action(step, step.action or "", params, policy, "step", prio)
        except StepFailure as failure:
            failure.attempts += progress.attempts
            raise
        progress.attempts += activity.attempt
        record.attempts = progress.attempts
        return activity.output

    async def _loop_child(
        self, step: WorkflowStep, record: StepRecord, progress: LoopProgress
    ) -> dict[str, Any]:
        """Hand a long loop over to a `CadenzaLoopRun` chain (it continues as new)."""
        definition = self.definition.model_copy(update={"steps": [step], "sla_targets": None})
        result: ChildResult = await workflow.execute_child_workflow(
            LOOP_WORKFLOW,
            LoopInput(
                definition=definition.model_dump(mode="json", exclude_defaults=True),
                scope=self.snapshot(),
                progress=progress,
                options=self.options,
            ),
            id=self._child_id(f"{step.step_id}.loop"),
            result_type=ChildResult,
            static_summary=f"{step.step_id}: loop from iteration {progress.iterations}",
        )
        own = result.records.pop(step.step_id, None)
        self.absorb(result)
        if own is not None:
            record.attempts = own.attempts
        if result.error is not None:
            raise StepFailure(result.error, record.attempts)
        output: dict[str, Any] = result.output
        return output

    def continue_loop(self, step: WorkflowStep, progress: LoopProgress) -> None:
        """In a loop child: continue as new, carrying the loop's progress and the scope."""
        definition = self.definition.model_copy(update={"steps": [step]})
        workflow.continue_as_new(
            LoopInput(
                definition=definition.model_dump(mode="json", exclude_defaults=True),
                scope=self.snapshot(),
                progress=progress,
                options=self.options,
            )
        )

    def _reset(self, sid: str) -> None:
        record = self.state.steps[sid]
        if record.status != StepStatus.PENDING:
            self.set_status(record, StepStatus.PENDING)
        self.branch_skips.pop(sid, None)
        self._tolerated.discard(sid)

    # ------------------------------------------------------------------ activities

    async def _recover(
        self,
        step: WorkflowStep,
        record: StepRecord,
        failure: StepFailure,
        policy: EffectiveRetryPolicy,
    ) -> tuple[str, Any]:
        """Run the step's error handlers in order; the first that succeeds recovers the step."""
        payload = {
            "step_id": step.step_id,
            "input": record.input,
            "error": failure.error.model_dump(mode="json"),
        }
        for handler in step.error_handlers:
            try:
                result = await self.action(step, handler, payload, policy, "error_handler", (0, 0))
            except StepFailure:
                continue
            return handler, result.output
        raise failure

    async def action(
        self,
        step: WorkflowStep,
        action: str,
        params: dict[str, Any],
        policy: EffectiveRetryPolicy,
        role: str,
        priority: Priority,
    ) -> StepActivityResult:
        """Run one action as an activity whose type is the action name, holding a slot."""
        if role == "step":  # a loop iteration: a paused run starts none
            await self.slot_for_step(priority)
        else:  # handlers, rollbacks, reminders finish what was started
            await self.slots.acquire(priority)
        try:
            return await self._activity(step, action, params, policy, role)
        finally:
            self.slots.release()

    async def _activity(
        self,
        step: WorkflowStep,
        action: str,
        params: dict[str, Any],
        policy: EffectiveRetryPolicy,
        role: str,
    ) -> StepActivityResult:
        request = StepActivityInput(
            workflow_id=self.definition.workflow_id,
            step_id=step.step_id,
            params=params,
            input_schema=(step.input_validation or None) if role == "step" else None,
            role=role,  # type: ignore[arg-type]
        )
        timeout = timedelta(seconds=step.timeout)
        retry = temporal_retry_policy(policy)
        # A summary labels the activity in the Web UI; each is one more payload the SDK converts
        # through the sandbox (0.2-0.3 ms of worker CPU per step): opt-in (ExecutionOptions).
        summary = None
        if self.options.activity_summaries:
            summary = step.step_id if role == "step" else f"{step.step_id}: {role} {action}"
        try:
            if step.execution == "local":
                return await workflow.execute_local_activity(
                    action,
                    request,
                    result_type=StepActivityResult,
                    start_to_close_timeout=timeout,
                    retry_policy=retry,
                    summary=summary,
                )
            return await workflow.execute_activity(
                action,
                request,
                result_type=StepActivityResult,
                start_to_close_timeout=timeout,
                heartbeat_timeout=min(HEARTBEAT_TIMEOUT, timeout),
                retry_policy=retry,
                summary=summary,
                task_queue=(
                    TASK_QUEUE_PREFIX + step.agent_capability if step.agent_capability else None
                ),
            )
        except ActivityError as exc:
            raise StepFailure(*activity_failure(exc, step.step_id, policy)) from None

    async def compensate(self, only: Sequence[WorkflowStep] | None = None) -> None:
        """Run rollback_actions of completed steps in reverse completion order.

        Args:
            only: restrict to these steps (a failed container's children); they are then taken
                out of the saga so that they are not compensated twice.
        """
        subset = None if only is None else {s.step_id for s in only}
        for sid in reversed(self.completion_order):
            if subset is not None and sid not in subset:
                continue
            step = self.steps[sid]
            record = self.state.steps[sid]
            for action in step.rollback_actions:
                payload = {"step_id": sid, "input": record.input, "output": record.output}
                try:
                    await self.action(step, action, payload, self.policy(step), "rollback", (0, 0))
                    entry = CompensationRecord(step_id=sid, action=action, status="completed")
                except StepFailure as failure:
                    entry = CompensationRecord(
                        step_id=sid, action=action, status="failed", error=failure.error
                    )
                self.state.compensations.append(entry)
                self.on_change()
        if subset is not None:
            self.completion_order = [s for s in self.completion_order if s not in subset]

    # ------------------------------------------------------------------ helpers

    def policy(self, step: WorkflowStep) -> EffectiveRetryPolicy:
        policy = self._policies.get(step.step_id)
        if policy is None:
            policy = EffectiveRetryPolicy.merge(self.definition.retry_policy, step.retry_policy)
            self._policies[step.step_id] = policy
        return policy

    def set_status(self, record: StepRecord, status: StepStatus) -> None:
        self.counts[record.status.value] -= 1
        self.counts[status.value] = self.counts.get(status.value, 0) + 1
        record.status = status

    def set_paused(self, paused: bool, entry: AuditEntry) -> None:
        self.paused = paused
        self.state.paused = paused
        self.state.audit.append(entry)
        self.on_change()

    def evaluate(self, source: str, **extra: Any) -> Any:
        expression = compile_expression(source)
        scope: dict[str, Any] = {}
        for name in expression.names:
            if name == "input":
                scope[name] = self.input
            elif name == "vars":
                scope[name] = self.state.vars
            elif name == "steps":
                if expression.steps_dynamic:
                    scope[name] = self.steps_view
                else:  # only what it reads: converting every step's output costs O(steps)
                    view = self.steps_view
                    scope[name] = {s: view[s] for s in expression.step_references if s in view}
            elif name == "now":
                scope[name] = workflow.now()
            elif name in extra and name in LOOP_NAMES:
                scope[name] = extra[name]
        return expression.evaluate(scope)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def loop_output(progress: LoopProgress) -> dict[str, Any]:
    """A loop step's output: iteration count, the last result and the kept results."""
    return {
        "iterations": progress.iterations,
        "last": progress.last,
        "results": progress.results,
        "results_offset": progress.results_offset,
    }


def _pack(plan: Plan, size: int) -> list[list[str]]:
    """Group a level's steps into batches of about `size`, keeping connected steps together."""
    parent = {sid: sid for sid in plan.order}

    def find(sid: str) -> str:
        while parent[sid] != sid:
            parent[sid] = parent[parent[sid]]
            sid = parent[sid]
        return sid

    for sid, deps in plan.upstream.items():
        for dep in deps:
            parent[find(sid)] = find(dep)
    components: dict[str, list[str]] = {}
    for sid in plan.order:
        components.setdefault(find(sid), []).append(sid)
    batches: list[list[str]] = [[]]
    for members in components.values():
        if batches[-1] and len(batches[-1]) + len(members) > size:
            batches.append([])
        batches[-1].extend(members)
    return batches


def _descendants(step: WorkflowStep) -> list[WorkflowStep]:
    out: list[WorkflowStep] = []
    stack = list(step.parallel_steps)
    while stack:
        child = stack.pop()
        out.append(child)
        stack.extend(child.parallel_steps)
    return out
