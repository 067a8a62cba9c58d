"""The language, second edition, on the real server: milestones (`wait: {condition}`), explicit
termination (`terminate`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from worker.client import CadenzaClient
from workflows.contracts import ExecutionResult, StepStatus, WorkflowState

FAST = {"initial_interval": 0.1, "maximum_interval": 0.2}


def wf(*steps: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"workflow_id": "patterns", "retry_policy": FAST, "steps": list(steps), **fields}


def sleep(sid: str, seconds: float, *deps: str, **extra: Any) -> dict[str, Any]:
    return {
        "step_id": sid,
        "action": "std.sleep",
        "dependencies": list(deps),
        "input_mapping": {"seconds": str(seconds)},
        **extra,
    }


async def run(cadenza: CadenzaClient, definition: dict[str, Any], run_input: Any = None):  # type: ignore[no-untyped-def]
    return await cadenza.result((await cadenza.start(definition, run_input or {})).id)


async def status_when(
    cadenza: CadenzaClient, execution_id: str, check: Any, what: str, within: float = 30
) -> ExecutionResult:
    """Poll the `status` query until `check(state)` holds (fails after `within` seconds)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        state = await cadenza.status(execution_id)
        if check(state):
            return state
        assert asyncio.get_running_loop().time() < deadline, f"never: {what}; last: {state}"
        await asyncio.sleep(0.05)


async def test_a_milestone_waits_until_its_condition_holds(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        sleep("slow", 1.5, output_mapping={"ready": "true"}),
        {
            "step_id": "milestone",
            "step_type": "wait",
            "wait": {"condition": "has(vars.ready) && vars.ready"},
        },
        {"step_id": "after", "action": "std.echo", "dependencies": ["milestone"]},
    )
    async with worker_factory():
        handle = await cadenza.start(definition)
        waiting = await status_when(
            cadenza,
            handle.id,
            lambda s: s.steps["milestone"].status == StepStatus.WAITING,
            "the milestone waiting",
        )
        assert waiting.steps["slow"].status == StepStatus.RUNNING
        result = await cadenza.result(handle.id)
    assert result.status == WorkflowState.COMPLETED
    milestone, slow = result.steps["milestone"], result.steps["slow"]
    assert milestone.output["waited_seconds"] >= 1.0
    assert milestone.ended_at is not None and slow.ended_at is not None
    assert milestone.ended_at >= slow.ended_at
    assert result.steps["after"].status == StepStatus.COMPLETED


async def test_a_milestone_that_never_comes_fails_with_wait_timeout(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        {
            "step_id": "never",
            "step_type": "wait",
            "timeout": 1,
            "wait": {"condition": "input.flag == 'set'"},
        }
    )
    async with worker_factory():
        result = await run(cadenza, definition, {"flag": "unset"})
    assert result.status == WorkflowState.FAILED
    error = result.steps["never"].error
    assert error is not None and error.type == "WaitTimeout"
    assert "input.flag == 'set'" in error.message


async def test_terminate_completed_cancels_running_steps_and_skips_the_rest(
    cadenza: CadenzaClient, worker_factory, tmp_path: Path
) -> None:
    definition = wf(
        {"step_id": "check", "action": "std.echo", "input_mapping": {"dup": "input.dup"}},
        sleep("slow", 30),
        {
            "step_id": "duplicate",
            "step_type": "terminate",
            "dependencies": ["check"],
            "conditions": [{"when": "steps.check.output.dup"}],
            "terminate": {"status": "completed", "message": "duplicate of an earlier order"},
        },
        {"step_id": "ship", "action": "std.echo", "dependencies": ["duplicate", "slow"]},
        {
            "step_id": "charge",
            "action": "std.echo",
            "dependencies": ["check"],
            "rollback_actions": ["std.log"],
        },
    )
    async with worker_factory():
        result = await run(cadenza, definition, {"dup": True})
    assert result.status == WorkflowState.COMPLETED, result.error
    assert result.steps["duplicate"].status == StepStatus.COMPLETED
    assert result.steps["duplicate"].output == {
        "status": "completed",
        "message": "duplicate of an earlier order",
    }
    slow = result.steps["slow"]
    assert slow.status == StepStatus.FAILED and slow.error is not None
    assert slow.error.type == "Cancelled"
    ship = result.steps["ship"]
    assert ship.status == StepStatus.SKIPPED
    assert ship.skip_reason is not None and "duplicate" in ship.skip_reason
    assert result.compensations == []  # a completed termination compensates nothing


async def test_terminate_failed_fails_the_run_with_its_error_type_and_compensates(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        {"step_id": "charge", "action": "std.echo", "rollback_actions": ["std.log"]},
        {
            "step_id": "fraud",
            "step_type": "terminate",
            "dependencies": ["charge"],
            "terminate": {"status": "failed", "error_type": "FraudSuspected", "message": "score"},
        },
        {"step_id": "ship", "action": "std.echo", "dependencies": ["fraud"]},
    )
    async with worker_factory():
        result = await run(cadenza, definition)
    assert result.status == WorkflowState.FAILED
    assert result.error is not None and result.error.type == "FraudSuspected"
    assert result.error.step_id == "fraud" and result.error.message == "score"
    assert [c.step_id for c in result.compensations] == ["charge"]
    assert result.steps["ship"].status == StepStatus.SKIPPED


async def test_a_terminate_step_whose_guard_is_false_is_skipped(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        {
            "step_id": "stop",
            "step_type": "terminate",
            "conditions": [{"when": "input.stop"}],
            "terminate": {"status": "failed"},
        },
        {"step_id": "go", "action": "std.echo"},
    )
    async with worker_factory():
        result = await run(cadenza, definition, {"stop": False})
    assert result.status == WorkflowState.COMPLETED
    assert result.steps["stop"].status == StepStatus.SKIPPED
    assert result.steps["go"].status == StepStatus.COMPLETED
