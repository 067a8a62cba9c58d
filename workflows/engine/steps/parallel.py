"""`parallel` steps: a container whose children run as a level of their own; large containers
run in batch child workflows (`CadenzaBatchRun`) so that no history grows too long."""

from __future__ import annotations

import asyncio
from typing import Any

from activities.contracts import ErrorType
from workflows.contracts import BATCH_WORKFLOW, BatchInput, StepRecord
from workflows.dsl.models import EffectiveRetryPolicy, WorkflowStep
from workflows.dsl.plan import Plan
from workflows.engine.context import Priority, StepContext, StepHandler, descendants
from workflows.engine.failures import StepFailure
from workflows.engine.outputs import container_output


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
            if len(step.parallel_steps) > ctx.options.batch_threshold:
                await _run_batches(ctx, step)
            else:
                await ctx.run_level(step.step_id, fail_fast=False)
            output = container_output(ctx.state, step.parallel_steps)
            if ctx.terminated:  # cut short: its children were cancelled or skipped
                return output
            if output["success_rate"] < policy.parallel_failure_threshold:
                raise StepFailure.of(
                    step,
                    ErrorType.PARALLEL_THRESHOLD,
                    f"{output['successful_steps']} of {output['total_steps']} children "
                    f"succeeded ({output['success_rate']:.0%}); the threshold is "
                    f"{policy.parallel_failure_threshold:.0%}",
                )
        except StepFailure:
            # the container failed: undo what its children did before its error handlers run
            await ctx.compensate(descendants(step))
            raise
        return output


async def _run_batches(ctx: StepContext, step: WorkflowStep) -> None:
    """Run a large container's children in child workflows, so no history grows too long.

    Children connected by dependencies stay in one batch. At most `max_parallel_steps`
    activities run at once across all batches: K batches run at a time, each with
    `max_parallel_steps // K` slots.
    """
    batches = pack(ctx.plan(step.step_id), ctx.options.batch_size)
    limit = ctx.definition.max_parallel_steps
    concurrent = min(len(batches), limit)
    share = max(1, limit // concurrent)
    gate = asyncio.Semaphore(concurrent)
    children = {c.step_id: c for c in step.parallel_steps}

    async def run_batch(index: int, ids: list[str]) -> None:
        async with gate:
            definition = ctx.definition.model_copy(
                update={
                    "steps": [children[i] for i in ids],
                    "max_parallel_steps": share,
                    "sla_targets": None,
                }
            )
            request = BatchInput(
                definition=definition.model_dump(mode="json", exclude_defaults=True),
                scope=ctx.snapshot(),
                options=ctx.options,
            )
            summary = f"{step.step_id}: batch {index + 1}/{len(batches)} ({len(ids)} children)"
            result = await ctx.run_child(
                BATCH_WORKFLOW, request, f"{step.step_id}.batch-{index}", summary
            )
            ctx.absorb(result)

    await asyncio.gather(*(run_batch(i, ids) for i, ids in enumerate(batches)))


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
