"""Child workflows that keep histories bounded: batches of a large container or a long map,
long loops.

Both interpret steps with the same `Interpreter` as `AdvancedWorkflowRun` and hand back a
`ChildResult` (step records, completions, vars) that the parent merges into its state. The
parent validated the whole definition; a child only rebuilds its slice of it.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from activities.contracts import ErrorType
from workflows.contracts import (
    BATCH_WORKFLOW,
    LOOP_WORKFLOW,
    BatchInput,
    ChildResult,
    ExecutionResult,
    LoopInput,
    StepStatus,
)
from workflows.dsl.models import AdvancedWorkflow
from workflows.engine import versions
from workflows.engine.failures import StepFailure
from workflows.engine.interpreter import Interpreter
from workflows.engine.steps.loop import run_loop
from workflows.engine.steps.map import run_instances


def _definition(data: dict[str, object]) -> AdvancedWorkflow:
    try:
        return AdvancedWorkflow.model_validate(data)
    except ValueError as exc:
        raise ApplicationError(
            f"child workflow got an invalid definition slice: {exc}",
            type=ErrorType.DEFINITION_INVALID,
            non_retryable=True,
        ) from None


def _interpreter(request: BatchInput | LoopInput) -> Interpreter:
    """An interpreter over the child's slice, seeing the parent's scope."""
    definition = _definition(request.definition)
    state = ExecutionResult(
        execution_id=workflow.info().workflow_id,
        workflow_id=definition.workflow_id,
        version=definition.version,
    )
    return Interpreter(
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
        versions.begin()
        interpreter = _interpreter(request)
        if request.map_items is None:
            await interpreter.run_to_end(fail_fast=False)
            return interpreter.child_result()
        # a map's batch: instances map_offset... of the map step's body
        spec = interpreter.definition.steps[0].map
        assert spec is not None
        first, items = request.map_offset, request.map_items
        instances = interpreter.add_instances(spec.step, range(first, first + len(items)))
        limit = interpreter.definition.max_parallel_steps
        await run_instances(interpreter, spec, instances, items, first, limit, (0, 0))
        return interpreter.child_result()


@workflow.defn(name=LOOP_WORKFLOW)
class CadenzaLoopRun:
    """Runs the rest of a long loop; continues as new every few hundred iterations."""

    @workflow.run
    async def run(self, request: LoopInput) -> ChildResult:
        versions.begin()
        interpreter = _interpreter(request)
        step = interpreter.definition.steps[0]
        interpreter.loop_root = step.step_id
        record = interpreter.state.steps[step.step_id]
        interpreter.set_status(record, StepStatus.RUNNING)  # handed back with the other records
        record.attempts = request.progress.attempts
        policy = interpreter.policy(step)
        try:
            output = await run_loop(interpreter, step, record, policy, (0, 0), request.progress)
        except StepFailure as failure:
            record.attempts = max(record.attempts, failure.attempts)
            return interpreter.child_result(error=failure.error)
        record.attempts = request.progress.attempts
        return interpreter.child_result(output=output)
