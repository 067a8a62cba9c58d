"""The operator's allow-list of capability queues (`CADENZA_QUEUES_ALLOW` on the workers): a run
that routes a step to a task queue outside it fails before it schedules anything, with error type
`Forbidden` naming the step, the queue and the setting.

The workflow cannot read the environment: a run with routed steps takes the workers' list into
its history through a local activity at start (never read again on replay), behind
`workflow.patched(QUEUES_PATCH)`; a run without routed steps asks nothing (no new command).
Deterministic code only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from fnmatch import fnmatchcase

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from activities.contracts import TASK_QUEUE_PREFIX, ErrorType
from workflows.contracts import ErrorInfo, ExecutionResult, WorkflowState
from workflows.dsl.models import AdvancedWorkflow
from workflows.engine import versions

QUEUES_ACTIVITY = "cadenza.queues.allowed"
"""The local activity that gives a starting run the workers' CADENZA_QUEUES_ALLOW (a list)."""
QUEUES_PATCH = "queue-allow-list"


def routed(definition: AdvancedWorkflow) -> dict[str, str]:
    """Step id -> the task queue its activities go to, for the steps routed off the default."""
    return {
        step.step_id: TASK_QUEUE_PREFIX + step.agent_capability
        for step in definition.all_steps()
        if step.agent_capability
    }


def refusal(routes: dict[str, str], allowed: list[str], steps: bool = True) -> ErrorInfo | None:
    """The error of the first route (`routes`: step id -> queue, or with `steps` false a task's
    capability -> queue) to a queue no pattern of `allowed` matches (an empty list allows every
    queue)."""
    if not allowed:
        return None
    for name, queue in routes.items():
        if not any(fnmatchcase(queue, pattern) for pattern in allowed):
            return ErrorInfo(
                type=ErrorType.FORBIDDEN,
                message=f"{'step' if steps else 'capability'} {name!r} is routed to task queue "
                f"{queue!r}, which the workers do not allow: CADENZA_QUEUES_ALLOW is "
                f"{','.join(allowed)!r}; add the queue there (names or globs) or route to an "
                "allowed capability",
                step_id=name if steps else None,
                non_retryable=True,
            )
    return None


async def allowed_queues() -> list[str]:
    """The workers' CADENZA_QUEUES_ALLOW, taken into the history (a local activity)."""
    allowed: list[str] = await workflow.execute_local_activity(
        QUEUES_ACTIVITY,
        result_type=list,
        start_to_close_timeout=timedelta(seconds=10),
        summary="allowed task queues",
    )
    return allowed


async def check(
    definition: AdvancedWorkflow,
    state: ExecutionResult,
    finish: Callable[[WorkflowState], None],
) -> None:
    """Fail the run (`state.error`, `finish(FAILED)`, a non-retryable ApplicationError) when a
    step is routed to a queue the workers' policy refuses."""
    routes = routed(definition)
    if not routes or not versions.patched(QUEUES_PATCH):
        return
    error = refusal(routes, await allowed_queues())
    if error is None:
        return
    state.error = error
    finish(WorkflowState.FAILED)
    raise ApplicationError(
        error.message, state.model_dump(mode="json"), type=error.type, non_retryable=True
    )
