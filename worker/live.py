"""What a run's `status` query cannot know, read on the client from Temporal's descriptions:
an action between attempts (live retry state) and a routed step whose queue no worker polls.

The workflow sees an activity only when it ends, so a retry sequence leaves no trace in its
state (and none is added: no history event per attempt). `CadenzaClient.status()` merges the
run's pending activities (`describe()`) into the state it returns: a running step whose action
is on attempt 2 or later becomes `retrying` with a `retry` detail, and a routed step whose
activity waits on a `cadenza.<capability>` queue that no worker polls gets `no_worker`. Which
step an activity belongs to is in its input (`StepActivityInput.step_id`), read once per activity
from the run's history and remembered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from temporalio.api.enums.v1 import PendingActivityState, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError

from activities.contracts import TASK_QUEUE_PREFIX, StepActivityInput
from workflows.contracts import ErrorInfo, ExecutionResult, StepRecord, StepStatus, WorkflowState

_REMEMBERED = 2_000  # activities whose step is remembered (per client), then forgotten at once


class RetryDetail(BaseModel):
    """An action between attempts (or on a later attempt), as Temporal describes it."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(description="The activity type: the action's name.")
    attempt: int = Field(description="The attempt running or scheduled next (2: first retry).")
    max_attempts: int = Field(0, description="The retry policy's maximum (0: unlimited).")
    last_error: ErrorInfo | None = Field(None, description="What the previous attempt raised.")
    next_attempt_at: str | None = Field(
        None, description="When the next attempt is scheduled (ISO 8601); None once it started."
    )


class LiveStepRecord(StepRecord):
    """A step record with what only the client-side description knows (`status` only)."""

    retry: RetryDetail | None = Field(None, description="Set while the step is `retrying`.")
    no_worker: str | None = Field(
        None, description="The capability queue the step's activity waits on, polled by no worker."
    )


@dataclass(frozen=True)
class _Scheduled:
    step_id: str | None  # None: not a step's own action (an LLM call, a mutex, a reminder)
    queue: str


class LiveState:
    """Merges pending activities into live states; remembers which step each activity is."""

    def __init__(self) -> None:
        self._scheduled: dict[tuple[str, str], _Scheduled] = {}

    async def merge(
        self, client: Client, handle: WorkflowHandle[Any, Any], state: ExecutionResult
    ) -> ExecutionResult:
        """`state` with its running steps' retry state and unserved queues (changed in place).
        A description that cannot be read leaves the state as the query gave it."""
        if state.status not in (WorkflowState.RUNNING, WorkflowState.SUSPENDED):
            return state
        if not any(r.status == StepStatus.RUNNING for r in state.steps.values()):
            return state
        try:
            description = await handle.describe()
            pending = list(description.raw_description.pending_activities)
            queued = {p.activity_id for p in pending if _routed_and_queued(p)}
            interesting = [p for p in pending if p.attempt > 1 or p.activity_id in queued]
            if not interesting:
                return state
            run_id = description.run_id or ""
            await self._learn(client, handle, run_id, interesting)
            queues = {self._queue(run_id, p) for p in pending if p.activity_id in queued}
            unserved = await _unserved_queues(client, queues)
        except RPCError:
            return state
        for p in pending:
            seen = self._scheduled.get((run_id, p.activity_id))
            if seen is None or seen.step_id is None:
                continue
            record = state.steps.get(seen.step_id)
            if record is None or record.status != StepStatus.RUNNING:
                continue
            live = LiveStepRecord.model_validate(record.model_dump())
            if p.attempt > 1:
                live.status = StepStatus.RETRYING
                live.attempts = p.attempt
                live.retry = await _retry_detail(client, p)
            if p.activity_id in queued and seen.queue in unserved:
                live.no_worker = seen.queue
            state.steps[seen.step_id] = live
        return state

    def _queue(self, run_id: str, p: PendingActivityInfo) -> str:
        seen = self._scheduled.get((run_id, p.activity_id))
        return seen.queue if seen is not None and seen.step_id is not None else ""

    async def _learn(
        self,
        client: Client,
        handle: WorkflowHandle[Any, Any],
        run_id: str,
        pending: list[PendingActivityInfo],
    ) -> None:
        """Read the step ids of activities not seen before from their scheduled events."""
        wanted = {p.activity_id for p in pending} - {a for r, a in self._scheduled if r == run_id}
        if not wanted:
            return
        if len(self._scheduled) > _REMEMBERED:
            self._scheduled.clear()
        async for event in handle.fetch_history_events():
            if not event.HasField("activity_task_scheduled_event_attributes"):
                continue
            scheduled = event.activity_task_scheduled_event_attributes
            if scheduled.activity_id not in wanted:
                continue
            wanted.discard(scheduled.activity_id)
            step_id = None
            try:
                [request] = await client.data_converter.decode(
                    list(scheduled.input.payloads), [StepActivityInput]
                )
                if isinstance(request, StepActivityInput) and request.role == "step":
                    step_id = request.step_id
            except Exception:  # not a step executor's input (an LLM call, a mutex request)
                pass
            key = (run_id, scheduled.activity_id)
            self._scheduled[key] = _Scheduled(step_id, scheduled.task_queue.name)
            if not wanted:
                return


def _routed_and_queued(p: PendingActivityInfo) -> bool:
    """An activity waiting for a worker, on a capability queue (when the server says which)."""
    if p.state != PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED:
        return False
    queue = p.activity_options.task_queue.name if p.HasField("activity_options") else ""
    return not queue or queue.startswith(TASK_QUEUE_PREFIX)


async def _retry_detail(client: Client, p: PendingActivityInfo) -> RetryDetail:
    error = None
    if p.HasField("last_failure"):
        failure = await client.data_converter.decode_failure(p.last_failure)
        kind = failure.type if isinstance(failure, ApplicationError) and failure.type else None
        message = failure.message if isinstance(failure, FailureError) else str(failure)
        error = ErrorInfo(type=kind or type(failure).__name__, message=message)
    next_at = None
    if p.HasField("next_attempt_schedule_time"):
        next_at = p.next_attempt_schedule_time.ToDatetime(tzinfo=UTC).isoformat()
    return RetryDetail(
        action=p.activity_type.name,
        attempt=p.attempt,
        max_attempts=p.maximum_attempts,
        last_error=error,
        next_attempt_at=next_at,
    )


async def _unserved_queues(client: Client, queues: set[str]) -> set[str]:
    """The capability queues among `queues` that no worker polls for activities."""
    unserved = set()
    for queue in sorted(q for q in queues if q.startswith(TASK_QUEUE_PREFIX)):
        request = DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        )
        described = await client.workflow_service.describe_task_queue(request)
        if not described.pollers:
            unserved.add(queue)
    return unserved
