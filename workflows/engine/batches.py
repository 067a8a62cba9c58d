"""Batch child workflows (`CadenzaBatchRun`) of one step, so that no history grows too long: a
large parallel container's children, a long map's instances. Deterministic code only."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from workflows.contracts import BATCH_WORKFLOW, BatchInput
from workflows.dsl.models import WorkflowStep
from workflows.engine.context import StepContext

BatchRequest = Callable[[int, int], tuple[BatchInput, str]]
"""(batch index, slots it may use) -> the batch's input and its summary in the Web UI."""


async def run_batches(
    ctx: StepContext, step: WorkflowStep, count: int, limit: int, request: BatchRequest
) -> None:
    """Run `count` batches of `step` and absorb what each did. At most `limit` activities run
    at once across them: K = min(count, limit) batches at a time, each with `limit // K`
    slots; a batch's input is built when it starts (it sees what earlier batches did)."""
    concurrent = min(count, limit)
    share = max(1, limit // concurrent)
    gate = asyncio.Semaphore(concurrent)

    async def run_batch(index: int) -> None:
        async with gate:
            batch, summary = request(index, share)
            result = await ctx.run_child(
                BATCH_WORKFLOW, batch, f"{step.step_id}.batch-{index}", summary
            )
            ctx.absorb(result)

    await asyncio.gather(*(run_batch(i) for i in range(count)))
