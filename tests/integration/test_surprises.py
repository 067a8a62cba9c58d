"""Semantics that used to surprise users (issue 19): approvals without a deadline of their own,
SLA targets on waiting steps, retries visible while they happen, routed steps nobody serves."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.registry import ActionRegistry
from worker.cli.render import live_detail
from worker.client import CadenzaClient
from worker.live import LiveStepRecord
from worker.settings import Settings
from worker.wiring import running_worker
from workflows.contracts import ExecutionOptions, ExecutionResult, StepStatus, WorkflowState

DAY = 86_400


async def _until(
    cadenza: CadenzaClient, execution_id: str, check: Any, seconds: float = 20
) -> ExecutionResult:
    """Poll `status` until `check(state)` holds."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            state = await cadenza.status(execution_id, timeout=5)
            if check(state):
                return state
        except Exception:  # the first workflow task may not have run yet
            pass
        assert time.monotonic() < deadline, f"{execution_id}: condition not reached"
        await asyncio.sleep(0.1)


async def test_an_approval_without_timeout_waits_past_the_old_default_until_decided(
    skipping_env: WorkflowEnvironment, registry: ActionRegistry
) -> None:
    env = skipping_env
    definition = {
        "workflow_id": "patient-approval",
        "timeout": 10 * DAY,
        "steps": [{"step_id": "sign_off", "step_type": "approval", "approval": {}}],
    }
    queue = f"ts-{uuid.uuid4().hex[:8]}"
    async with running_worker(env.client, Settings(), registry, task_queue=queue):
        cadenza = CadenzaClient(env.client, queue)
        with env.with_time_skipping_disabled():
            handle = await cadenza.start(definition)
        await _until(cadenza, handle.id, lambda s: "sign_off" in s.pending_approvals)
        assert await env.fast_forward(handle, timedelta(days=2))
        state = await cadenza.status(handle.id)
        assert state.steps["sign_off"].status == StepStatus.WAITING
        assert not state.approvals  # no timeout was noted
        await cadenza.approve(handle.id, "sign_off", "ann", "after two days")
        result = await asyncio.wait_for(cadenza.result(handle.id), timeout=60)
    assert result.status == WorkflowState.COMPLETED, result.error
    assert result.steps["sign_off"].output["decided_by"] == ["ann"]


async def test_an_undecided_approval_without_timeout_ends_with_the_run(
    skipping_env: WorkflowEnvironment, registry: ActionRegistry
) -> None:
    definition = {
        "workflow_id": "run-bounded-approval",
        "timeout": 3 * DAY,
        "steps": [{"step_id": "sign_off", "step_type": "approval", "approval": {}}],
    }
    queue = f"ts-{uuid.uuid4().hex[:8]}"
    async with running_worker(skipping_env.client, Settings(), registry, task_queue=queue):
        cadenza = CadenzaClient(skipping_env.client, queue)
        handle = await cadenza.start(definition)
        result = await asyncio.wait_for(cadenza.result(handle.id), timeout=60)
    assert result.status == WorkflowState.TIMEOUT
    assert result.error is not None and result.error.type == "WorkflowTimeout"
    assert not [a for a in result.approvals if a.kind == "timeout"]


WAITING_STEPS: dict[str, dict[str, Any]] = {
    "approval": {"step_type": "approval", "approval": {"approvers": ["ann"]}},
    "event": {"step_type": "event", "timeout": 2 * DAY, "event": {"name": "paid"}},
    "wait": {"step_type": "wait", "timeout": 2 * DAY, "wait": {"condition": "input.go"}},
}


@pytest.mark.parametrize("kind", sorted(WAITING_STEPS))
async def test_an_sla_target_breaches_on_a_waiting_step(
    kind: str, skipping_env: WorkflowEnvironment, registry: ActionRegistry
) -> None:
    definition = {
        "workflow_id": f"sla-{kind}",
        "timeout": DAY,
        "sla_targets": {"step_max_seconds": {"held": 3600}},
        "steps": [{"step_id": "held", **WAITING_STEPS[kind]}],
    }
    queue = f"ts-{uuid.uuid4().hex[:8]}"
    async with running_worker(skipping_env.client, Settings(), registry, task_queue=queue):
        cadenza = CadenzaClient(skipping_env.client, queue)
        handle = await cadenza.start(definition, {"go": False})
        result = await asyncio.wait_for(cadenza.result(handle.id), timeout=60)
    assert result.status == WorkflowState.TIMEOUT  # it waited the whole day
    breaches = result.sla["breaches"]
    assert [(b["rule"], b["step_id"], b["target_seconds"]) for b in breaches] == [
        ("sla.step", "held", 3600)
    ]
    assert breaches[0]["alert"] == "sent"


async def test_retrying_is_visible_in_status_between_two_attempts(
    client: Client, registry: ActionRegistry, task_queue: str, worker_factory: Any
) -> None:
    definition = {
        "workflow_id": "visible-retries",
        "steps": [
            {
                "step_id": "flaky",
                "action": "std.fail",
                "input_mapping": {"until_attempt": "3", "message": "'not yet'"},
                "retry_policy": {
                    "max_attempts": 3,
                    "initial_interval": 4,
                    "backoff_coefficient": 1,
                },
            }
        ],
    }
    cadenza = CadenzaClient(client, task_queue)
    async with worker_factory():
        handle = await cadenza.start(definition)
        state = await _until(
            cadenza, handle.id, lambda s: s.steps["flaky"].status == StepStatus.RETRYING
        )
        record = state.steps["flaky"]
        assert isinstance(record, LiveStepRecord) and record.retry is not None
        assert record.attempts == 2 and record.retry.attempt == 2
        assert record.retry.max_attempts == 3 and record.retry.action == "std.fail"
        assert record.retry.last_error is not None
        assert record.retry.last_error.type == "StepFailed"
        assert "not yet (attempt 1)" in record.retry.last_error.message
        assert record.retry.next_attempt_at is not None
        detail = live_detail(record) or ""
        assert detail.startswith("attempt 2 of 3 at ") and "not yet (attempt 1)" in detail
        assert '"retry":' in state.model_dump_json(serialize_as_any=True)
        result = await asyncio.wait_for(cadenza.result(handle.id), timeout=60)
    assert result.status == WorkflowState.COMPLETED, result.error
    assert result.steps["flaky"].attempts == 3
    assert result.steps["flaky"].status == StepStatus.COMPLETED


async def test_a_step_routed_to_an_unserved_queue_fails_with_no_worker_for_capability(
    client: Client, task_queue: str, worker_factory: Any
) -> None:
    capability = f"gpu-{uuid.uuid4().hex[:6]}"
    definition = {
        "workflow_id": "routed-nowhere",
        "steps": [{"step_id": "train", "action": "std.echo", "agent_capability": capability}],
    }
    cadenza = CadenzaClient(client, task_queue)
    async with worker_factory():
        handle = await cadenza.start(
            definition, options=ExecutionOptions(schedule_to_start_seconds=4)
        )
        state = await _until(
            cadenza,
            handle.id,
            lambda s: isinstance(s.steps["train"], LiveStepRecord) and s.steps["train"].no_worker,
        )
        assert state.steps["train"].no_worker == f"cadenza.{capability}"  # type: ignore[attr-defined]
        result = await asyncio.wait_for(cadenza.result(handle.id), timeout=60)
    assert result.status == WorkflowState.FAILED
    error = result.steps["train"].error
    assert error is not None and error.type == "NoWorkerForCapability"
    assert f"'cadenza.{capability}'" in error.message
