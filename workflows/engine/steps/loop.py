"""`loop` steps: iterate an action or a body of child steps while `loop_condition` holds; long
loops move to a `CadenzaLoopRun` child workflow chain that continues as new."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from activities.contracts import ErrorType
from workflows.contracts import LOOP_WORKFLOW, LoopInput, LoopProgress, StepRecord
from workflows.dsl.expressions import ExpressionError
from workflows.dsl.models import EffectiveRetryPolicy, WorkflowStep
from workflows.engine.context import Priority, StepContext, StepHandler
from workflows.engine.failures import StepFailure, expression_failure
from workflows.engine.outputs import LoopOutput, container_output


class LoopStep(StepHandler):
    async def run(
        self,
        ctx: StepContext,
        step: WorkflowStep,
        record: StepRecord,
        policy: EffectiveRetryPolicy,
        priority: Priority,
    ) -> Any:
        return await run_loop(ctx, step, record, policy, priority)

    def output_scope(self, output: Any) -> dict[str, Any]:
        # a loop's output_mapping sees the last iteration, and how many there were
        return {"result": output["last"], "iteration": output["iterations"]}


async def run_loop(
    ctx: StepContext,
    step: WorkflowStep,
    record: StepRecord,
    policy: EffectiveRetryPolicy,
    prio: Priority,
    progress: LoopProgress | None = None,
) -> LoopOutput:
    """Iterate until loop_condition is false; long loops move to a child workflow chain."""
    progress = progress or LoopProgress()
    condition = step.loop_condition or "false"
    started_at = progress.iterations
    while True:
        done_here = progress.iterations - started_at
        if ctx.loop_root == step.step_id:
            if done_here >= ctx.options.continue_as_new_every or (
                done_here and workflow.info().is_continue_as_new_suggested()
            ):
                continue_loop(ctx, step, progress)
        elif done_here >= ctx.options.loop_inline_iterations:
            return await _loop_child(ctx, step, record, progress)
        result = await _iteration(ctx, step, record, policy, prio, progress)
        progress.iterations += 1
        progress.last = result
        progress.results.append(result)
        overflow = len(progress.results) - ctx.options.max_kept_results
        if overflow > 0:
            del progress.results[:overflow]
            progress.results_offset += overflow
        try:
            again = ctx.evaluate(condition, result=result, iteration=progress.iterations)
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
    ctx: StepContext,
    step: WorkflowStep,
    record: StepRecord,
    policy: EffectiveRetryPolicy,
    prio: Priority,
    progress: LoopProgress,
) -> Any:
    iteration = progress.iterations
    if step.parallel_steps:
        for child in ctx.members(step):
            ctx.reset(child.step_id)
        await ctx.run_level(step.step_id, fail_fast=False)
        body = container_output(ctx.state, step.parallel_steps)
        # what the body's containers left running (cancel_remaining: false) ends first: the
        # next iteration reuses its steps (a blocking discriminator, a blocking partial join)
        await ctx.finish_kept([step, *ctx.members(step)])
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
    params = ctx.step_params(step, iteration=iteration, result=progress.last)
    record.input = params
    try:
        activity = await ctx.run_action(step, step.action or "", params, policy, "step", prio)
    except StepFailure as failure:
        failure.attempts += progress.attempts
        raise
    progress.attempts += activity.attempt
    record.attempts = progress.attempts
    return activity.output


async def _loop_child(
    ctx: StepContext, step: WorkflowStep, record: StepRecord, progress: LoopProgress
) -> LoopOutput:
    """Hand a long loop over to a `CadenzaLoopRun` chain (it continues as new)."""
    request = _loop_input(ctx, step, progress)
    summary = f"{step.step_id}: loop from iteration {progress.iterations}"
    result = await ctx.run_child(LOOP_WORKFLOW, request, f"{step.step_id}.loop", summary)
    own = result.records.pop(step.step_id, None)
    ctx.absorb(result)
    if own is not None:
        record.attempts = own.attempts
    if result.error is not None:
        raise StepFailure(result.error, record.attempts)
    output: LoopOutput = result.output
    return output


def continue_loop(ctx: StepContext, step: WorkflowStep, progress: LoopProgress) -> None:
    """In a loop child: continue as new, carrying the loop's progress and the scope."""
    workflow.continue_as_new(_loop_input(ctx, step, progress))


def _loop_input(ctx: StepContext, step: WorkflowStep, progress: LoopProgress) -> LoopInput:
    """The rest of a loop as a `CadenzaLoopRun`'s input: the loop step alone (its SLA targets
    stay with the parent run, which keeps their timers), the scope, the progress."""
    definition = ctx.definition.model_copy(update={"steps": [step], "sla_targets": None})
    return LoopInput(
        definition=definition.model_dump(mode="json", exclude_defaults=True),
        scope=ctx.snapshot(),
        progress=progress,
        options=ctx.options,
    )


def loop_output(progress: LoopProgress) -> LoopOutput:
    """A loop step's output: iteration count, the last result and the kept results."""
    return {
        "iterations": progress.iterations,
        "last": progress.last,
        "results": progress.results,
        "results_offset": progress.results_offset,
    }
