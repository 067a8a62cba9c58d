"""`mutex` on the real server: steps of different runs holding one name never overlap and go
first come first served, the waiter sees the holder, and the mutex is released whatever way
the holder ends (terminated, its worker SIGKILLed)."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowExecutionStatus

from tests.support.flows import FAST, sleep, status_when
from tests.support.processes import spawn_worker
from worker.client import CadenzaClient
from workflows.contracts import (
    ExecutionOptions,
    ExecutionResult,
    StepRecord,
    StepStatus,
    WorkflowState,
)
from workflows.engine.mutex import mutex_workflow_id


def deploy(seconds: float) -> dict[str, Any]:
    return {
        "workflow_id": "deploy",
        "retry_policy": FAST,
        "steps": [
            {"step_id": "build", "action": "std.echo"},
            sleep("rollout", seconds, "build", mutex='"deploy-" + input.env'),
            {"step_id": "notify", "action": "std.echo", "dependencies": ["rollout"]},
        ],
    }


def waits_for_mutex(state: ExecutionResult) -> bool:
    record = state.steps["rollout"]
    return record.status == StepStatus.WAITING and record.mutex_holder is not None


def disjoint(first: StepRecord, second: StepRecord) -> bool:
    assert first.ended_at is not None and second.started_at is not None
    return second.started_at >= first.ended_at


async def test_steps_holding_one_mutex_never_overlap_and_go_in_arrival_order(
    cadenza: CadenzaClient, worker_factory
) -> None:
    env = f"prod-{uuid.uuid4().hex[:6]}"
    async with worker_factory():
        first = await cadenza.start(deploy(1.5), {"env": env})
        await status_when(
            cadenza, first.id, lambda s: s.steps["rollout"].status == StepStatus.RUNNING, "holds"
        )
        second = await cadenza.start(deploy(0.5), {"env": env})
        other = await cadenza.start(deploy(0.5), {"env": f"dev-{env}"})  # another name: no wait
        waiting = await status_when(cadenza, second.id, waits_for_mutex, "second waits")
        assert waiting.steps["rollout"].mutex_holder == first.id
        assert waiting.steps["rollout"].mutex == f"deploy-{env}"
        a, b, c = [await cadenza.result(h.id) for h in (first, second, other)]
    assert {a.status, b.status, c.status} == {WorkflowState.COMPLETED}
    ra, rb, rc = (r.steps["rollout"] for r in (a, b, c))
    assert disjoint(ra, rb)
    assert rb.mutex_wait_seconds is not None and rb.mutex_wait_seconds >= 0.5
    assert ra.mutex_wait_seconds is not None and ra.mutex_wait_seconds < 5
    assert rc.started_at is not None and ra.ended_at is not None and rc.started_at < ra.ended_at
    assert rb.output == {"slept": 0.5} and b.steps["notify"].status == StepStatus.COMPLETED


async def test_a_terminated_holder_releases_the_mutex(
    cadenza: CadenzaClient, worker_factory
) -> None:
    env = f"term-{uuid.uuid4().hex[:6]}"
    options = ExecutionOptions(mutex_check_seconds=1)
    async with worker_factory():
        holder = await cadenza.start(deploy(120), {"env": env}, options=options)
        await status_when(
            cadenza, holder.id, lambda s: s.steps["rollout"].status == StepStatus.RUNNING, "holds"
        )
        waiter = await cadenza.start(deploy(0.2), {"env": env}, options=options)
        await status_when(cadenza, waiter.id, waits_for_mutex, "waiter waits")
        await holder.terminate("operator terminated the stuck deploy")
        result = await asyncio.wait_for(cadenza.result(waiter.id), timeout=60)
    assert result.status == WorkflowState.COMPLETED
    assert result.steps["rollout"].mutex_wait_seconds is not None
    # the mutex workflow ended once nobody held or waited
    lock = cadenza.client.get_workflow_handle(mutex_workflow_id(f"deploy-{env}"))
    for _ in range(200):
        if (await lock.describe()).status != WorkflowExecutionStatus.RUNNING:
            break
        await asyncio.sleep(0.05)
    assert (await lock.describe()).status == WorkflowExecutionStatus.COMPLETED


async def test_a_holder_whose_worker_is_sigkilled_still_releases_the_mutex(
    cadenza: CadenzaClient, tmp_path: Path
) -> None:
    env = f"kill-{uuid.uuid4().hex[:6]}"
    log = tmp_path / "worker.log"
    worker = spawn_worker(cadenza.task_queue, log)
    try:
        holder = await cadenza.start(deploy(2), {"env": env})
        await status_when(
            cadenza,
            holder.id,
            lambda s: s.steps["rollout"].status == StepStatus.RUNNING,
            "holds",
            within=60,
        )
        waiter = await cadenza.start(deploy(0.2), {"env": env})
        await status_when(cadenza, waiter.id, waits_for_mutex, "waiter waits", within=60)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        worker = spawn_worker(cadenza.task_queue, log)
        first = await asyncio.wait_for(cadenza.result(holder.id), timeout=90)
        second = await asyncio.wait_for(cadenza.result(waiter.id), timeout=90)
    finally:
        worker.kill()
        worker.wait()
    assert first.status == WorkflowState.COMPLETED, log.read_text()[-3000:]
    assert second.status == WorkflowState.COMPLETED
    assert disjoint(first.steps["rollout"], second.steps["rollout"])
