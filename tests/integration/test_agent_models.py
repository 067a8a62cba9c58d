"""Model calls on a real dev server: a non-retryable ModelError is attempted once and the step
records one attempt (issue 19, item 8); a model outside the worker's CADENZA_MODELS_ALLOW is
refused with Forbidden (issue 18, item 8)."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client

from activities.registry import ActionRegistry
from tests.support.definitions import agent
from worker.client import CadenzaClient
from worker.settings import Settings
from worker.wiring import running_worker
from workflows.dsl.models import WorkflowState


async def chat_attempts(handle) -> list[int]:  # type: ignore[no-untyped-def]
    """The attempt number of every started `cadenza.llm.chat` activity."""
    history = await handle.fetch_history()
    scheduled = {
        e.event_id
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == "cadenza.llm.chat"
    }
    return [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
        and e.activity_task_started_event_attributes.scheduled_event_id in scheduled
    ]


async def test_a_missing_script_fails_the_step_after_one_attempt(
    client: Client, registry: ActionRegistry, task_queue: str, tmp_path: Path
) -> None:
    settings = Settings(llm_scripts=tmp_path)
    async with running_worker(client, settings, registry, task_queue=task_queue):
        cadenza = CadenzaClient(client, task_queue)
        handle = await cadenza.start(agent("missing", []), {"question": "why?"})
        result = await cadenza.result(handle.id)
    assert result.status == WorkflowState.FAILED
    record = result.steps["think"]
    assert record.error is not None and record.error.type == "ModelError"
    assert "cannot read" in record.error.message and record.error.non_retryable
    assert await chat_attempts(handle) == [1]
    assert record.attempts == 1


async def test_a_model_outside_the_workers_allow_list_fails_the_step_with_forbidden(
    client: Client, registry: ActionRegistry, task_queue: str, tmp_path: Path
) -> None:
    (tmp_path / "paid.yaml").write_text("- content: expensive answer\n")
    settings = Settings(llm_scripts=tmp_path, models_allow="scripted:cheap*,openai:gpt-4o-mini")
    async with running_worker(client, settings, registry, task_queue=task_queue):
        cadenza = CadenzaClient(client, task_queue)
        handle = await cadenza.start(agent("paid", []), {"question": "why?"})
        result = await cadenza.result(handle.id)
    assert result.status == WorkflowState.FAILED
    record = result.steps["think"]
    assert record.error is not None and record.error.type == "Forbidden"
    assert "'scripted:paid' is not allowed" in record.error.message
    assert "CADENZA_MODELS_ALLOW" in record.error.message and record.error.non_retryable
    assert await chat_attempts(handle) == [1] and record.attempts == 1
