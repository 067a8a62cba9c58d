"""The operator's allow-list of capability queues on the real server: with CADENZA_QUEUES_ALLOW
on the workers, a run routing a step elsewhere fails before it schedules anything (Forbidden,
naming the step, the queue and the setting); an allowed queue runs; a run without routed steps
asks the workers nothing; an agentic task with a capability outside the list fails the same way."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.registry import ActionRegistry
from tests.support.tasks import analysis, echo, script
from worker.client import CadenzaClient
from worker.settings import Settings
from worker.wiring import running_worker
from workflows.contracts import WorkflowState
from workflows.orchestrator import TaskInput


def routed(capability: str) -> dict[str, Any]:
    return {
        "workflow_id": "routed",
        "steps": [
            {"step_id": "prepare", "action": "std.echo"},
            {
                "step_id": "train",
                "action": "std.echo",
                "agent_capability": capability,
                "dependencies": ["prepare"],
            },
        ],
    }


async def event_types(client: Client, execution_id: str) -> list[int]:
    history = await client.get_workflow_handle(execution_id).fetch_history()
    return [event.event_type for event in history.events]


async def test_a_step_routed_outside_the_allow_list_fails_before_scheduling(
    client: Client, registry: ActionRegistry, task_queue: str
) -> None:
    capability = f"gpu-{uuid.uuid4().hex[:6]}"
    settings = Settings(queues_allow="cadenza.cpu-*, cadenza.io")
    cadenza = CadenzaClient(client, task_queue)
    async with running_worker(client, settings, registry, task_queue=task_queue):
        handle = await cadenza.start(routed(capability))
        result = await asyncio.wait_for(cadenza.result(handle.id), timeout=60)
    assert result.status == WorkflowState.FAILED
    assert result.error is not None and result.error.type == "Forbidden"
    assert result.error.step_id == "train"
    message = result.error.message
    assert f"'cadenza.{capability}'" in message and "CADENZA_QUEUES_ALLOW" in message
    # nothing was scheduled, not even the unrouted first step
    events = await event_types(client, handle.id)
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in events


async def test_an_allowed_queue_runs_and_an_unrouted_run_asks_nothing(
    client: Client, registry: ActionRegistry, task_queue: str
) -> None:
    capability = f"cpu-{uuid.uuid4().hex[:6]}"
    settings = Settings(queues_allow="cadenza.cpu-*")
    cadenza = CadenzaClient(client, task_queue)
    async with (
        running_worker(client, settings, registry, task_queue=task_queue),
        running_worker(client, settings, registry, task_queue=f"cadenza.{capability}"),
    ):
        handle = await cadenza.start(routed(capability))
        result = await asyncio.wait_for(cadenza.result(handle.id), timeout=60)
        assert result.status == WorkflowState.COMPLETED, result.error
        plain = await cadenza.start({"workflow_id": "plain", "steps": [routed("x")["steps"][0]]})
        assert (await cadenza.result(plain.id)).status == WorkflowState.COMPLETED
    # the patch and the local activity in the routed run's history; nothing in the other's
    assert await asked(client, handle.id) and not await asked(client, plain.id)


async def asked(client: Client, execution_id: str) -> bool:
    """Whether the run's history holds the queue-policy patch or local activity markers."""
    history = await client.get_workflow_handle(execution_id).fetch_history()
    for event in history.events:
        if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
            continue
        details = event.marker_recorded_event_attributes.details
        data = b"".join(p.data for payloads in details.values() for p in payloads.payloads)
        if b"queue-allow-list" in data or b"cadenza.queues.allowed" in data:
            return True
    return False


async def test_an_agentic_task_routed_outside_the_allow_list_fails_before_any_call(
    client: Client, registry: ActionRegistry, task_queue: str, tmp_path: Path
) -> None:
    model = script(tmp_path, "never", [analysis(subtasks=[echo(n=1)])])
    request = TaskInput(task="Train it", tools=["std.echo"], model=model, capabilities=["gpu"])
    settings = Settings(queues_allow="cadenza.cpu-*", llm_scripts=tmp_path)
    cadenza = CadenzaClient(client, task_queue)
    async with running_worker(client, settings, registry, task_queue=task_queue):
        handle = await cadenza.start_task(request)
        result = await asyncio.wait_for(cadenza.task_result(handle.id), timeout=60)
    assert result.status == "failed"
    assert result.error is not None and result.error.type == "Forbidden"
    assert "capability 'gpu'" in result.error.message
    assert (
        "'cadenza.gpu'" in result.error.message and "CADENZA_QUEUES_ALLOW" in result.error.message
    )
    # refused before the model was asked anything
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in await event_types(client, handle.id)
