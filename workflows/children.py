"""Child workflows that keep histories bounded: batches of a large container, long loops.

Both interpret steps with the same `Runner` as `AdvancedWorkflowRun` and hand back a
`ChildResult` (step records, completions, vars) that the parent merges into its state. The
parent validated the whole definition; a child only rebuilds its slice of it.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.contracts import ErrorType
    from workflows.dsl.models import (
        AdvancedWorkflow,
        BatchInput,
        ChildResult,
        ExecutionResult,
        LoopInput,
        StepStatus,
    )

from workflows.failures import StepFailure
from workflows.runner import BATCH_WORKFLOW, LOOP_WORKFLOW, Runner


def _definition(data: dict[str, object]) -> AdvancedWorkflow:
    try:
        return AdvancedWorkflow.model_validate(data)
    except ValueError as exc:
        raise ApplicationError(
            f"child workflow got an invalid definition slice: {exc}",
            type=ErrorType.DEFINITION_INVALID,
            non_retryable=True,
        ) from None


def _runner(request: BatchInput | LoopInput) -> Runner:
    """A runner over the child's slice, seeing the parent's scope."""
    definition = _definition(request.definition)
    state = ExecutionResult(
        execution_id=workflow.info().workflow_id,
        workflow_id=definition.workflow_id,
        version=definition.version,
    )
    return Runner(
        definition,
        state,
        request.scope.input,
        on_change=lambda: None,
        options=request.options,
        scope=request.scope,
    )


@workflow.defn(name=BATCH_WORKFLOW)
class CadenzaBatchRun:
    """Runs some children of a large parallel container, as the container would."""

    @workflow.run
    async def run(self, request: BatchInput) -> ChildResult:
        runner = _runner(request)
        await runner.run_level(None, fail_fast=False)
        return runner.child_result()


@workflow.defn(name=LOOP_WORKFLOW)
class CadenzaLoopRun:
    """Runs the rest of a long loop; continues as new every few hundred iterations."""

    @workflow.run
    async def run(self, request: LoopInput) -> ChildResult:
        runner = _runner(request)
        step = runner.definition.steps[0]
        runner.loop_root = step.step_id
        record = runner.state.steps[step.step_id]
        runner.set_status(record, StepStatus.RUNNING)  # handed back with the other records
        record.attempts = request.progress.attempts
        policy = runner.policy(step)
        try:
            output = await runner.loop(step, record, policy, (0, 0), request.progress)
        except StepFailure as failure:
            record.attempts = max(record.attempts, failure.attempts)
            return runner.child_result(error=failure.error)
        record.attempts = request.progress.attempts
        return runner.child_result(output=output)
