"""Approval timeouts measured in days, on a dev server with per-workflow time skipping."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from temporalio.testing import WorkflowEnvironment

from activities.registry import ActionRegistry
from worker.client import CadenzaClient
from worker.settings import Settings
from worker.wiring import running_worker
from workflows.dsl.models import WorkflowState

DAY = 86_400


def approval(**spec: Any) -> dict[str, Any]:
    return {
        "workflow_id": "slow-approvals",
        "timeout": 10 * DAY,
        "steps": [
            {"step_id": "sign_off", "step_type": "approval", "timeout": 3 * DAY, "approval": spec}
        ],
    }


async def run_skipping(
    env: WorkflowEnvironment, registry: ActionRegistry, definition: dict[str, Any]
):  # type: ignore[no-untyped-def]
    queue = f"ts-{uuid.uuid4().hex[:8]}"
    async with running_worker(env.client, Settings(), registry, task_queue=queue):
        cadenza = CadenzaClient(env.client, queue)
        handle = await cadenza.start(definition)
        return await asyncio.wait_for(cadenza.result(handle.id), timeout=60)


async def test_three_day_approval_times_out_and_rejects(
    skipping_env: WorkflowEnvironment, registry: ActionRegistry
) -> None:
    result = await run_skipping(skipping_env, registry, approval(approvers=["ann"]))
    assert result.status == WorkflowState.FAILED
    error = result.steps["sign_off"].error
    assert error is not None and error.type == "ApprovalTimeout"
    assert [a.kind for a in result.approvals] == ["timeout"]
    started, ended = result.steps["sign_off"].started_at, result.steps["sign_off"].ended_at
    from datetime import datetime

    waited = datetime.fromisoformat(ended) - datetime.fromisoformat(started)  # type: ignore[arg-type]
    assert timedelta(days=3) <= waited < timedelta(days=3, minutes=5)


async def test_reminders_every_twelve_hours_are_counted(
    skipping_env: WorkflowEnvironment, registry: ActionRegistry
) -> None:
    result = await run_skipping(
        skipping_env, registry, approval(approvers=["ann"], reminder_every=12 * 3600)
    )
    reminders = [a for a in result.approvals if a.kind == "reminder"]
    # at 12, 24, 36, 48 and 60 hours; at 72 hours the step times out instead
    assert len(reminders) == 5
    assert "waits for ann" in reminders[0].detail
    assert result.approvals[-1].kind == "timeout"


async def test_escalation_is_approved_by_the_escalation_approver(
    skipping_env: WorkflowEnvironment, registry: ActionRegistry
) -> None:
    env = skipping_env
    definition = approval(
        approvers=["ann"], on_timeout="escalate", escalate_to=["boss"], escalation_timeout=DAY
    )
    queue = f"ts-{uuid.uuid4().hex[:8]}"
    async with running_worker(env.client, Settings(), registry, task_queue=queue):
        cadenza = CadenzaClient(env.client, queue)
        with env.with_time_skipping_disabled():
            handle = await cadenza.start(definition)
        for _ in range(100):
            if (await cadenza.status(handle.id)).pending_approvals:
                break
            await asyncio.sleep(0.05)
        assert await env.fast_forward(handle, timedelta(days=3, hours=1))
        state = await cadenza.status(handle.id)
        assert state.pending_approvals["sign_off"].escalated
        assert state.pending_approvals["sign_off"].approvers == ["boss"]
        decision = await cadenza.approve(handle.id, "sign_off", "boss", "fine by me")
        assert decision.outcome == "approved"
        result = await asyncio.wait_for(cadenza.result(handle.id), timeout=60)
    assert result.status == WorkflowState.COMPLETED, result.error
    output = result.steps["sign_off"].output
    assert output["decided_by"] == ["boss"] and output["escalated"] is True
    assert [(a.kind, a.by) for a in result.approvals] == [("escalation", ""), ("approve", "boss")]
