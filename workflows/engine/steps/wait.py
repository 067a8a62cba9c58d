"""`wait` steps: a durable timer for a number of seconds or until a timestamp."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

from activities.contracts import ErrorType
from workflows.contracts import StepRecord
from workflows.dsl.expressions import ExpressionError
from workflows.dsl.models import EffectiveRetryPolicy, WorkflowStep
from workflows.engine.context import Priority, StepContext, StepHandler
from workflows.engine.failures import StepFailure


class WaitStep(StepHandler):
    async def run(
        self,
        ctx: StepContext,
        step: WorkflowStep,
        record: StepRecord,
        policy: EffectiveRetryPolicy,
        priority: Priority,
    ) -> Any:
        spec = step.wait
        assert spec is not None  # validated
        now = workflow.now()
        if spec.until is not None:
            try:
                value = ctx.evaluate(spec.until)
                until = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
                seconds = (until - now).total_seconds()
            except (ExpressionError, ValueError, TypeError) as exc:
                raise StepFailure.of(
                    step, ErrorType.EXPRESSION_ERROR, f"wait.until must give a timestamp: {exc}"
                ) from None
        else:
            seconds = spec.seconds or 0.0
        if seconds > 0:
            await workflow.sleep(seconds, summary=f"{step.step_id}: wait")
        return {
            "waited_seconds": max(seconds, 0.0),
            "until": (now + timedelta(seconds=max(seconds, 0.0))).isoformat(),
        }
