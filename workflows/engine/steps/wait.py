"""`wait` steps: a durable timer for a number of seconds or until a timestamp, or a milestone:
until a CEL condition over the run's state holds."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

from activities.contracts import ErrorType
from workflows.contracts import StepRecord
from workflows.dsl.expressions import ExpressionError
from workflows.dsl.models import EffectiveRetryPolicy, WorkflowStep
from workflows.engine.context import Priority, StepContext, StepHandler
from workflows.engine.failures import StepFailure, expression_failure


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
        if spec.condition is not None:
            return await _until_condition(ctx, step, record, spec.condition)
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


async def _until_condition(
    ctx: StepContext, step: WorkflowStep, record: StepRecord, condition: str
) -> dict[str, Any]:
    """Wait until `condition` is true. Temporal evaluates it again after every activation of
    the run, i.e. whenever its state may have changed (a step ended, a decision, an event)."""
    started = workflow.now()
    failure: list[ExpressionError] = []

    def holds() -> bool:
        try:
            return ctx.evaluate(condition) is True
        except ExpressionError as exc:  # ends the wait: reported as the step's failure
            failure.append(exc)
            return True

    if not holds():
        ctx.mark_waiting(step, record)
        try:
            await workflow.wait_condition(
                holds, timeout=step.timeout, timeout_summary=f"{step.step_id}: condition"
            )
        except TimeoutError:
            raise StepFailure.of(
                step,
                ErrorType.WAIT_TIMEOUT,
                f"wait.condition ({condition}) was still not true after {step.timeout:g} s",
            ) from None
        finally:
            ctx.done_waiting(step, record)
    if failure:
        raise StepFailure(expression_failure(failure[0], step.step_id))
    waited = (workflow.now() - started).total_seconds()
    return {"condition": condition, "waited_seconds": waited, "until": workflow.now().isoformat()}
