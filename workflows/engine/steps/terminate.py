"""`terminate` steps: end the run now, `completed` (no compensation) or `failed` with an error
type (compensation runs as for any failure). Running steps are cancelled, the rest skipped."""

from __future__ import annotations

from typing import Any

from workflows.contracts import StepRecord, Termination
from workflows.dsl.models import EffectiveRetryPolicy, WorkflowStep
from workflows.engine.context import Priority, StepContext, StepHandler


class TerminateStep(StepHandler):
    async def run(
        self,
        ctx: StepContext,
        step: WorkflowStep,
        record: StepRecord,
        policy: EffectiveRetryPolicy,
        priority: Priority,
    ) -> Any:
        spec = step.terminate
        assert spec is not None  # validated
        ctx.terminate(
            Termination(
                step_id=step.step_id,
                status=spec.status,
                message=spec.message,
                error_type=spec.error_type,
            )
        )
        return {"status": spec.status, "message": spec.message}
