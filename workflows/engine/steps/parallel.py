"""`parallel` steps: a container whose children run as a level of their own; large containers
run in batch child workflows (`CadenzaBatchRun`) so that no history grows too long."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from temporalio import workflow

from activities.contracts import ErrorType
from workflows.contracts import BatchInput, StepRecord
from workflows.dsl.models import CompletionSpec, EffectiveRetryPolicy, WorkflowStep
from workflows.dsl.plan import Plan
from workflows.engine.batches import run_batches
from workflows.engine.context import Priority, StepContext, StepHandler
from workflows.engine.failures import StepFailure
from workflows.engine.outputs import completed_count, completion_reached, container_output


class ParallelStep(StepHandler):
    async def run(
        self,
        ctx: StepContext,
        step: WorkflowStep,
        record: StepRecord,
        policy: EffectiveRetryPolicy,
        priority: Priority,
    ) -> Any:
        try:
            if step.completion is not None:
                await _until_complete(ctx, step, step.completion)
            elif len(step.parallel_steps) > ctx.options.batch_threshold:
                ctx.runs_in_batches(step)
                await _run_batches(ctx, step)
            else:
                await ctx.run_level(step.step_id, fail_fast=False)
            output = container_output(ctx.state, step.parallel_steps)
            if ctx.terminated:  # cut short: its children were cancelled or skipped
                return output
            if step.completion is not None:
                check_completion(ctx, step, step.parallel_steps, step.completion)
            elif output["success_rate"] < policy.parallel_failure_threshold:
                raise StepFailure.of(
                    step,
                    ErrorType.PARALLEL_THRESHOLD,
                    f"{output['successful_steps']} of {output['total_steps']} children "
                    f"succeeded ({output['success_rate']:.0%}); the threshold is "
                    f"{policy.parallel_failure_threshold:.0%}",
                )
        except StepFailure:
            # the container failed: undo what its children did before its error handlers run
            await ctx.compensate(ctx.members(step))
            raise
        return output


async def _until_complete(ctx: StepContext, step: WorkflowStep, spec: CompletionSpec) -> None:
    """Run the children until `min_successes` completed (or can no longer): then cancel the
    others, or (cancel_remaining: false) leave them running for the run to wait for."""
    if len(step.parallel_steps) > ctx.options.batch_threshold:
        raise StepFailure.of(
            step,
            ErrorType.STEP_FAILED,
            f"completion on a container of more than {ctx.options.batch_threshold} children is "
            "not supported: its children run in batch child workflows",
        )
    children = step.parallel_steps

    def reached() -> bool:
        return completion_reached(ctx.state, children, spec.min_successes)

    if spec.cancel_remaining:
        await ctx.run_level(step.step_id, fail_fast=False, until=reached)
        ctx.cancel_unstarted(
            ctx.members(step), f"not started: '{step.step_id}' completed without it"
        )
        return
    level = asyncio.ensure_future(ctx.run_level(step.step_id, fail_fast=False))
    await workflow.wait_condition(lambda: level.done() or reached())
    if not level.done():
        ctx.keep_running(level, step.step_id)


def check_completion(
    ctx: StepContext, step: WorkflowStep, children: Sequence[WorkflowStep], spec: CompletionSpec
) -> None:
    """A container with `completion` fails when fewer than min_successes children completed."""
    completed = completed_count(ctx.state, children)
    if completed < spec.min_successes:
        raise StepFailure.of(
            step,
            ErrorType.PARALLEL_THRESHOLD,
            f"{completed} of {len(children)} completed and no more can: completion.min_successes "
            f"is {spec.min_successes}",
        )


async def _run_batches(ctx: StepContext, step: WorkflowStep) -> None:
    """A large container's children in batch child workflows; children connected by
    dependencies stay in one batch; at most `max_parallel_steps` activities at once."""
    batches = pack(ctx.plan(step.step_id), ctx.options.batch_size)
    children = {c.step_id: c for c in step.parallel_steps}

    def request(index: int, share: int) -> tuple[BatchInput, str]:
        ids = batches[index]
        definition = ctx.definition.model_copy(
            update={
                "steps": [children[i] for i in ids],
                "max_parallel_steps": share,
                "sla_targets": None,
            }
        )
        batch = BatchInput(
            definition=definition.model_dump(mode="json", exclude_defaults=True),
            scope=ctx.snapshot(),
            options=ctx.options,
        )
        return batch, f"{step.step_id}: batch {index + 1}/{len(batches)} ({len(ids)} children)"

    await run_batches(ctx, step, len(batches), ctx.definition.max_parallel_steps, request)


def pack(plan: Plan, size: int) -> list[list[str]]:
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
