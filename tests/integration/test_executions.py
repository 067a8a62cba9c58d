"""Short steps run as local activities by default (the action declares it), and measured step
durations order the steps waiting for a slot; both learned once at start, replayed from history."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from activities.registry import ActionContext, ActionRegistry, action
from tests.support.flows import run, sleep, wf
from worker.client import CadenzaClient
from worker.observability.setup import observability
from worker.settings import Settings
from worker.wiring import WORKFLOWS, running_worker, sandbox_runner
from workflows.contracts import WorkflowState
from workflows.engine.facts import FACTS_ACTIVITY


@action("test.quick", execution="local")
async def quick(params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
    """A short idempotent action: declared local."""
    return {"quick": ctx.step_id}


def activity_types(history: WorkflowHistory) -> tuple[list[str], list[str]]:
    """(activity types scheduled as activities, activity types run as local activities)."""
    remote, local = [], []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            remote.append(event.activity_task_scheduled_event_attributes.activity_type.name)
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            attributes = event.marker_recorded_event_attributes
            if attributes.marker_name == "core_local_activity":
                data = attributes.details["data"].payloads[0].data.decode()
                local.append(data.split('"activity_type":"')[1].split('"')[0])
    return remote, local


async def test_steps_run_as_their_action_declares_unless_the_step_or_definition_says(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        {"step_id": "echo", "action": "std.echo"},
        {"step_id": "quick", "action": "test.quick", "dependencies": ["echo"]},
        {"step_id": "pinned", "action": "test.quick", "execution": "activity"},
        sleep("nap", 0.01),
    )
    async with worker_factory():
        handle = await cadenza.start(definition)
        result = await cadenza.result(handle.id)
        history = await handle.fetch_history()
    assert result.status == WorkflowState.COMPLETED
    assert result.steps["quick"].output == {"quick": "quick"}
    remote, local = activity_types(history)
    assert sorted(remote) == ["std.sleep", "test.quick"]  # nap, pinned
    assert sorted(local) == [FACTS_ACTIVITY, "std.echo", "test.quick"]  # asked once

    # the definition's default beats the action's declaration
    everything_remote = {**definition, "default_execution": "activity"}
    async with worker_factory():
        handle = await cadenza.start(everything_remote)
        assert (await cadenza.result(handle.id)).status == WorkflowState.COMPLETED
        remote, local = activity_types(await handle.fetch_history())
    assert sorted(remote) == ["std.echo", "std.sleep", "test.quick", "test.quick"]
    assert local == []  # nothing to ask: every step's execution is settled by the definition


async def test_a_failing_local_step_fails_the_step_with_its_error_type(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        {
            "step_id": "check",
            "action": "std.echo",
            "input_mapping": {"amount": "-5"},
            "input_validation": {"type": "object", "properties": {"amount": {"minimum": 0}}},
        }
    )
    async with worker_factory():
        result = await run(cadenza, definition)
    assert result.status == WorkflowState.FAILED
    error = result.steps["check"].error
    assert error is not None and error.type == "InputValidationError"
    assert result.steps["check"].attempts == 1


async def test_measured_durations_start_the_longest_work_first_and_replay_without_the_worker(
    client: Client, registry: ActionRegistry, task_queue: str
) -> None:
    # by step counts the chain c0 -> c1 -> c2 goes first; measured, `long` is the longest work
    workflow_id = f"measured-{uuid.uuid4().hex[:6]}"
    seconds = {"m1": 0.5, "m2": 0.5, "long": 1.0, "c0": 0.05, "c1": 0.05, "c2": 0.05}
    definition = wf(
        sleep("m1", seconds["m1"]),
        sleep("m2", seconds["m2"]),
        sleep("long", seconds["long"]),
        sleep("c0", seconds["c0"]),
        sleep("c1", seconds["c1"], "c0"),
        sleep("c2", seconds["c2"], "c1"),
        workflow_id=workflow_id,
        max_parallel_steps=2,
    )
    settings = Settings()
    cadenza = CadenzaClient(client, task_queue)
    async with (
        httpx.AsyncClient() as http,
        observability(client, settings, http) as seen,
        running_worker(client, settings, registry, task_queue=task_queue, observed=seen),
    ):
        counted = await run(cadenza, definition)
        for step_id, took in seconds.items():
            for _ in range(3):  # what the monitor records of finished runs
                seen.monitor.baselines.add((workflow_id, step_id), took)
        handle = await cadenza.start(definition)
        measured = await cadenza.result(handle.id)
        history = await handle.fetch_history()
    assert counted.status == measured.status == WorkflowState.COMPLETED
    first = {s: r.started_at for s, r in counted.steps.items()}
    assert first["c0"] == first["m1"] < first["long"]  # counts: the chain, then definition order
    then = {s: r.started_at for s, r in measured.steps.items()}
    assert then["long"] == then["m1"] < then["m2"] < then["c0"]  # measured: longest work first
    # what the worker measured is in the history: a replay never asks for it again
    await Replayer(workflows=WORKFLOWS, workflow_runner=sandbox_runner()).replay_workflow(history)
