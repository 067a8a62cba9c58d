"""Helpers of the integration tests of the language's patterns: definitions written short, and
waiting for a run's state (polling the `status` query, never a fixed sleep)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from worker.client import CadenzaClient
from workflows.contracts import ExecutionResult, StepStatus

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
    cadenza: CadenzaClient,
    execution_id: str,
    check: Callable[[ExecutionResult], bool],
    what: str,
    within: float = 30,
) -> ExecutionResult:
    """Poll the `status` query until `check(state)` holds (fails after `within` seconds)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        state = await cadenza.status(execution_id)
        if check(state):
            return state
        assert asyncio.get_running_loop().time() < deadline, f"never: {what}; last: {state}"
        await asyncio.sleep(0.05)


async def start_until_running(
    cadenza: CadenzaClient, definition: dict[str, Any], step_id: str
) -> Any:
    """Start a run and wait until `step_id` runs; its handle."""
    handle = await cadenza.start(definition)
    await status_when(
        cadenza,
        handle.id,
        lambda s: s.steps[step_id].status == StepStatus.RUNNING,
        f"{step_id} running",
    )
    return handle
