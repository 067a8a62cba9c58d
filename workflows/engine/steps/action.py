"""`action` steps: one registered action run as a Temporal activity whose type is its name."""

from __future__ import annotations

from typing import Any

from workflows.contracts import StepRecord
from workflows.dsl.models import EffectiveRetryPolicy, WorkflowStep
from workflows.engine.context import Priority, StepContext, StepHandler


class ActionStep(StepHandler):
    # queued for a slot, the step is still pending: `cadenza status` shows what really runs
    marks_running_itself = True

    async def run(
        self,
        ctx: StepContext,
        step: WorkflowStep,
        record: StepRecord,
        policy: EffectiveRetryPolicy,
        priority: Priority,
    ) -> Any:
        async with ctx.slot(priority):
            ctx.mark_running(step, record)
            params = ctx.step_params(step)
            record.input = params
            result = await ctx.call_activity(step, step.action or "", params, policy, "step")
        record.attempts = result.attempt
        return result.output
