"""`workflow` steps: run a named definition of the document as a Temporal child workflow (an
`AdvancedWorkflowRun` of its own, with the usual search attributes; the Web UI links parent and
child both ways)."""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError, ChildWorkflowError

from activities.contracts import ErrorType
from workflows.contracts import RUN_WORKFLOW, ExecutionResult, RunInput, StepRecord
from workflows.dsl.models import EffectiveRetryPolicy, WorkflowStep
from workflows.dsl.subworkflows import DEFAULT_MAX_DEPTH, child_definition
from workflows.engine.context import Priority, StepContext, StepHandler
from workflows.engine.failures import StepFailure


class SubWorkflowStep(StepHandler):
    async def run(
        self,
        ctx: StepContext,
        step: WorkflowStep,
        record: StepRecord,
        policy: EffectiveRetryPolicy,
        priority: Priority,
    ) -> Any:
        spec = step.workflow
        assert spec is not None and spec.name is not None  # validated, files inlined
        depth = ctx.options.depth + 1
        limit = step.max_depth or DEFAULT_MAX_DEPTH
        if depth > limit:
            raise StepFailure.of(
                step,
                ErrorType.RECURSION_LIMIT_EXCEEDED,
                f"starting {spec.name!r} would nest sub-workflows {depth} deep; max_depth is "
                f"{limit} (a recursion that does not end? raise max_depth on the step if not)",
            )
        names = ctx.definition.definitions
        run = RunInput(
            definition=child_definition(spec.name, names[spec.name], names),
            input=ctx.step_params(step),
            # durations are per definition: the child asks its workers for its own
            options=ctx.options.model_copy(update={"depth": depth, "step_seconds": {}}),
        )
        suffix = f"{workflow.random().randrange(16**6):06x}"  # a step may start many children
        child_id = f"{workflow.info().workflow_id}.{step.step_id}.{suffix}"
        close = (
            workflow.ParentClosePolicy.REQUEST_CANCEL
            if spec.wait
            else workflow.ParentClosePolicy.ABANDON
        )
        handle = await workflow.start_child_workflow(
            RUN_WORKFLOW,
            run,
            id=child_id,
            result_type=ExecutionResult,
            parent_close_policy=close,
            static_summary=f"{step.step_id}: sub-workflow {spec.name}",
        )
        record.output = {"execution_id": child_id}  # visible in `status` while it runs
        if not spec.wait:
            return {"execution_id": child_id}
        try:
            result: ExecutionResult = await handle
        except ChildWorkflowError as exc:
            raise _child_failure(step, child_id, exc) from None
        return result.model_dump(mode="json")


def _child_failure(step: WorkflowStep, child_id: str, exc: ChildWorkflowError) -> StepFailure:
    """The step's failure: the child's own error type and message (StepFailed, ApprovalRejected,
    RecursionLimitExceeded ...), not the wrapper's."""
    cause = exc.cause
    error_type, message = ErrorType.WORKFLOW_FAILED.value, str(cause or exc)
    if isinstance(cause, ApplicationError):
        state = cause.details[0] if cause.details else None
        error = state.get("error") if isinstance(state, dict) else None
        if isinstance(error, dict) and error.get("type"):
            error_type = str(error["type"])
            where = f" at step {error['step_id']!r}" if error.get("step_id") else ""
            message = f"{error.get('message', '')}{where}"
    elif cause is not None:
        error_type = type(cause).__name__.removesuffix("Error") or error_type
    return StepFailure.of(step, error_type, f"sub-workflow {child_id} failed: {message}"[:2000])
