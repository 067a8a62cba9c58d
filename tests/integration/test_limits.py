"""Message sizes on the real dev server: an over-long comment, name or reason is refused before
it reaches the run's history or result (issue 18, item 6), so no message can push the result
past Temporal's payload limit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError

from worker.client import CadenzaClient
from workflows.dsl.models import ExecutionResult, WorkflowState
from workflows.messages import MAX_NAME, MAX_TEXT

LONG = "x" * 100_000


async def _waiting(cadenza: CadenzaClient, run_id: str, step: str) -> ExecutionResult:
    for _ in range(200):
        state = await cadenza.status(run_id)
        if step in state.pending_approvals:
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"{step} never waited")


async def test_over_long_decisions_and_pause_reasons_never_reach_history(
    cadenza: CadenzaClient, worker_factory, client: Client
) -> None:
    definition = {
        "workflow_id": "limits",
        "steps": [{"step_id": "sign_off", "step_type": "approval", "timeout": 3600}],
    }
    async with worker_factory():
        started = await cadenza.start(definition)
        await _waiting(cadenza, started.id, "sign_off")
        handle = client.get_workflow_handle(started.id)
        refused: list[dict[str, Any]] = [
            {"step_id": "sign_off", "by": "ann", "comment": LONG},
            {"step_id": "sign_off", "by": "ann", "comment": "x" * (MAX_TEXT + 1)},
            {"step_id": "sign_off", "by": "a" * (MAX_NAME + 1)},
            {"step_id": LONG, "by": "ann"},
        ]
        for update in ("approve", "reject"):
            for payload in refused:
                with pytest.raises(WorkflowUpdateFailedError):
                    await handle.execute_update(update, payload)
        # a signal cannot be refused: the SDK drops one whose payload does not decode
        await handle.signal("pause", {"by": "ann", "reason": LONG})
        await handle.signal("approve", {"step_id": "sign_off", "by": "ann", "comment": LONG})
        state = await cadenza.status(started.id)
        assert not state.paused and "sign_off" in state.pending_approvals
        ok = {"step_id": "sign_off", "by": "ann", "comment": "x" * MAX_TEXT}
        await handle.execute_update("approve", ok)
        result = await cadenza.result(started.id)
        history = await handle.fetch_history()
    assert result.status == WorkflowState.COMPLETED, result.error
    assert result.steps["sign_off"].output["comment"] == "x" * MAX_TEXT
    # refused updates leave nothing in history: only the accepted one does
    accepted = [
        e
        for e in history.events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    assert len(accepted) == 1
    assert LONG not in result.model_dump_json()
    assert not [a for a in result.audit if a.kind == "pause"]
    # the decision signal is audited as ignored, its detail cut short
    assert [a.kind for a in result.approvals] == ["ignored", "approve"]
    assert len(result.approvals[0].detail) <= 300
