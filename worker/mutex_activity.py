"""The activity that asks a mutex for a step: signal-with-start of the mutex's workflow (workflow
code cannot signal-with-start; see `workflows.engine.mutex`)."""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client

from workflows.engine.mutex import (
    MUTEX_REQUEST_ACTIVITY,
    MUTEX_WORKFLOW,
    MutexRequest,
    MutexState,
    mutex_workflow_id,
)


class MutexActivities:
    """The mutex activity, with the worker's client."""

    def __init__(self, client: Client) -> None:
        self.client = client

    @activity.defn(name=MUTEX_REQUEST_ACTIVITY)
    async def request(self, request: MutexRequest) -> None:
        """Queue `request` at its mutex, starting the mutex's workflow if none runs."""
        await self.client.start_workflow(
            MUTEX_WORKFLOW,
            MutexState(name=request.name),
            id=mutex_workflow_id(request.name),
            task_queue=activity.info().task_queue,
            start_signal="acquire",
            start_signal_args=[request],
            static_summary=f"mutex {request.name}",
        )
