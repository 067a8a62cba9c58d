"""How a step's action becomes a Temporal activity: its type is the action name, its timeout
and retry policy the step's, and its queue the step's `agent_capability` queue if any."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, FailureError

from activities.contracts import (
    TASK_QUEUE_PREFIX,
    Execution,
    StepActivityInput,
    StepActivityResult,
)
from workflows.contracts import ExecutionOptions
from workflows.dsl.models import EffectiveRetryPolicy, WorkflowStep
from workflows.engine.failures import StepFailure, activity_failure, failure_of
from workflows.retry import temporal_retry_policy

# Actions heartbeat every third of this (the step executor does it for them), so a lost worker
# is noticed within 10 s instead of at the end of the step timeout.
HEARTBEAT_TIMEOUT = timedelta(seconds=10)


async def execute_action(
    workflow_id: str,
    step: WorkflowStep,
    action: str,
    params: dict[str, Any],
    policy: EffectiveRetryPolicy,
    role: str,
    options: ExecutionOptions,
    execution: Execution = "activity",
) -> StepActivityResult:
    """Run `action` for `step` (role: step, error_handler, rollback, reminder, escalation), as
    a local activity or an activity (`workflows.engine.facts.execution_of`); a failure after
    the retries raises StepFailure with the classified error."""
    request = StepActivityInput(
        workflow_id=workflow_id,
        step_id=step.step_id,
        params=params,
        input_schema=(step.input_validation or None) if role == "step" else None,
        role=role,  # type: ignore[arg-type]
        custom_metrics=step.custom_metrics,
        metrics_enabled=step.metrics_enabled,
    )
    timeout = timedelta(seconds=step.timeout)
    retry = temporal_retry_policy(policy)
    # A summary labels the activity in the Web UI; each is one more payload the SDK converts
    # through the sandbox (0.2-0.3 ms of worker CPU per step): opt-in (ExecutionOptions).
    summary = None
    if options.activity_summaries:
        summary = step.step_id if role == "step" else f"{step.step_id}: {role} {action}"
    queue = TASK_QUEUE_PREFIX + step.agent_capability if step.agent_capability else None
    try:
        if execution == "local":
            return await workflow.execute_local_activity(
                action,
                request,
                result_type=StepActivityResult,
                start_to_close_timeout=timeout,
                retry_policy=retry,
                summary=summary,
            )
        return await workflow.execute_activity(
            action,
            request,
            result_type=StepActivityResult,
            start_to_close_timeout=timeout,
            heartbeat_timeout=min(HEARTBEAT_TIMEOUT, timeout),
            retry_policy=retry,
            summary=summary,
            task_queue=queue,
            schedule_to_start_timeout=(
                timedelta(seconds=options.schedule_to_start_seconds) if queue else None
            ),
        )
    except ActivityError as exc:
        raise StepFailure(*activity_failure(exc, step.step_id, policy, queue)) from None
    except FailureError as exc:
        if execution != "local":
            raise
        # a local activity's failure arrives unwrapped: the action's error, its timeout
        raise StepFailure(*failure_of(exc, step.step_id, policy)) from None
