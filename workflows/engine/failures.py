"""How a step fails: the StepFailure the interpreter raises, and the classification of
expression and activity errors into the ErrorInfo a step record keeps. Deterministic code only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    TimeoutError,
    TimeoutType,
)

from cadenza.errors import CadenzaError

if TYPE_CHECKING:
    from workflows.engine.context import StepContext

with workflow.unsafe.imports_passed_through():
    from activities.contracts import ErrorType
    from workflows.contracts import (
        RUN_WORKFLOW,
        ErrorInfo,
        RetryStepInput,
        SkipStepInput,
        StepRecord,
    )
    from workflows.dsl.expressions import ExpressionError
    from workflows.dsl.models import EffectiveRetryPolicy, WorkflowStep


class StepFailure(CadenzaError):
    """A step ended in failure; carries the error and the attempts it took.

    Internal to the workflow: the run records it as the step's error (`error.type`,
    `error.message`), which retry policies and error handlers match on.
    """

    def __init__(self, error: ErrorInfo, attempts: int = 0) -> None:
        super().__init__(error.message)
        self.error = error
        self.attempts = attempts

    @classmethod
    def of(
        cls,
        step: WorkflowStep,
        error_type: str,
        message: str,
        *,
        non_retryable: bool = True,
        attempts: int = 0,
    ) -> StepFailure:
        """A failure of `step` raised by the engine itself (not by an activity)."""
        error = ErrorInfo(
            type=error_type, message=message, step_id=step.step_id, non_retryable=non_retryable
        )
        return cls(error, attempts)


def expression_failure(exc: ExpressionError, step_id: str) -> ErrorInfo:
    return ErrorInfo(
        type=ErrorType.EXPRESSION_ERROR, message=str(exc), step_id=step_id, non_retryable=True
    )


def activity_failure(
    exc: ActivityError, step_id: str, policy: EffectiveRetryPolicy, queue: str | None = None
) -> tuple[ErrorInfo, int]:
    """Classify an activity failure: error type, message and the attempts it took (`queue`:
    the capability queue a routed step's activity went to)."""
    return failure_of(exc.cause, step_id, policy, queue)


def failure_of(
    cause: BaseException | None,
    step_id: str,
    policy: EffectiveRetryPolicy,
    queue: str | None = None,
) -> tuple[ErrorInfo, int]:
    """Classify what failed an activity (a local activity's failure arrives as this cause,
    not wrapped in an ActivityError)."""
    attempts = policy.max_attempts
    if (
        queue is not None
        and isinstance(cause, TimeoutError)
        and cause.type == TimeoutType.SCHEDULE_TO_START
    ):
        # no worker took the attempt: Temporal does not retry a schedule-to-start timeout
        error = ErrorInfo(
            type=ErrorType.NO_WORKER_FOR_CAPABILITY,
            message=f"no worker polls the task queue {queue!r}: start one with "
            f"`cadenza worker --task-queue {queue}` (the step waited schedule_to_start_seconds)",
            step_id=step_id,
            non_retryable=True,
        )
        return error, 1
    if isinstance(cause, ApplicationError):
        details = cause.details[0] if cause.details else None
        if isinstance(details, dict) and isinstance(details.get("attempt"), int):
            attempts = details["attempt"]
        error = ErrorInfo(
            type=cause.type or ErrorType.STEP_FAILED,
            message=cause.message,
            step_id=step_id,
            non_retryable=cause.non_retryable,
        )
    elif isinstance(cause, TimeoutError):
        error = ErrorInfo(
            type=ErrorType.TIMEOUT,
            message=f"the action timed out ({cause.type.name if cause.type else 'timeout'})",
            step_id=step_id,
        )
    elif isinstance(cause, CancelledError):
        # cancelled during an attempt; the SDK does not say which one (failed attempts before it
        # are not counted): one, not the policy's maximum
        attempts = 1
        error = ErrorInfo(
            type=ErrorType.CANCELLED, message="the action was cancelled", step_id=step_id
        )
    else:
        message = str(cause) if cause is not None else "the activity failed"
        error = ErrorInfo(type=ErrorType.STEP_FAILED, message=message, step_id=step_id)
    return error, attempts


async def recover(
    ctx: StepContext,
    step: WorkflowStep,
    record: StepRecord,
    failure: StepFailure,
    policy: EffectiveRetryPolicy,
) -> tuple[str, Any]:
    """Run the step's error handlers in order with the error: the first that succeeds recovers
    the step (its name and output); none does: `failure` again."""
    payload = {
        "step_id": step.step_id,
        "input": record.input,
        "error": failure.error.model_dump(mode="json"),
    }
    for handler in step.error_handlers:
        try:
            result = await ctx.run_action(step, handler, payload, policy, "error_handler", (0, 0))
        except StepFailure:
            continue
        return handler, result.output
    if policy.on_exhausted != "suspend" or failure.error.type == ErrorType.STEP_CANCELLED:
        raise failure
    decision = await ctx.suspensions.suspend(ctx, step, record, failure.error)
    if isinstance(decision, RetryStepInput):
        raise RetryStep
    if isinstance(decision, SkipStepInput):
        return f"skip_step by {decision.by}", decision.output
    why = f" (failed by {decision.by}" + (f": {decision.reason})" if decision.reason else ")")
    raise StepFailure(failure.error.model_copy(update={"message": failure.error.message + why}))


class RetryStep(CadenzaError):
    """An operator's `retry_step`: run the suspended step again with a fresh retry budget."""


def unreachable(step: WorkflowStep, waits_for: str) -> StepFailure | None:
    """The failure of a step that waits for a message (`waits_for`: decisions, events) while
    it runs in a batch or continued-loop child workflow, where messages sent to the run never
    arrive (it would wait until its timeout, and an approval's `on_timeout: approve` would then
    approve it unseen); None in the run itself."""
    if workflow.info().workflow_type == RUN_WORKFLOW:
        return None
    return StepFailure.of(
        step,
        ErrorType.STEP_FAILED,
        f"{step.step_type} steps cannot wait inside a batch of a large container or map, or a "
        f"loop past its inline iterations ({waits_for} are sent to the run, which cannot "
        "reach them): move the step out of it, or make that part a sub-workflow "
        "(step_type: workflow, whose runs accept messages)",
    )
