"""The local activity that tells a starting run which task queues its steps may be routed to:
the worker's `CADENZA_QUEUES_ALLOW` (workflows/engine/queues.py enforces it)."""

from __future__ import annotations

from temporalio import activity

from workflows.engine.queues import QUEUES_ACTIVITY


class QueuePolicyActivities:
    """Serves the worker's allowed queue names and globs (empty: any queue)."""

    def __init__(self, allowed: list[str]) -> None:
        self.allowed = list(allowed)

    @activity.defn(name=QUEUES_ACTIVITY)
    async def allowed_queues(self) -> list[str]:
        return self.allowed
