"""Agent steps on a real dev server with scripted models: a LangGraph ReAct loop through
temporalio-langgraph, every model call and tool call an activity."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import yaml
from temporalio.client import Client

from activities.registry import ActionRegistry
from tests.support.definitions import agent
from worker.client import CadenzaClient
from worker.settings import Settings
from worker.wiring import running_worker
from workflows.dsl.loader import parse_document
from workflows.dsl.models import StepStatus, WorkflowState

ROOT = Path(__file__).resolve().parents[2]


async def run(
    client: Client, registry: ActionRegistry, queue: str, scripts: Path, definition: dict[str, Any]
):  # type: ignore[no-untyped-def]
    async with running_worker(client, Settings(llm_scripts=scripts), registry, task_queue=queue):
        cadenza = CadenzaClient(client, queue)
        handle = await cadenza.start(definition, {"question": "why?"})
        return await cadenza.result(handle.id), handle


async def test_the_research_example_calls_two_tools_and_answers(
    client: Client, registry: ActionRegistry, task_queue: str
) -> None:
    definition = parse_document((ROOT / "examples/research_agent.yaml").read_bytes(), "r.yaml")
    result, handle = await run(client, registry, task_queue, ROOT / "examples/scripts", definition)
    assert result.status == WorkflowState.COMPLETED, result.error
    output = result.steps["research"].output
    assert output["answer"].startswith("Durable execution means")
    assert output["iterations"] == 2
    assert [c["tool"] for c in output["tool_calls"]] == ["std.echo", "std.log"]
    assert output["tool_calls"][0]["output"]["query"] == "durable execution"
    assert output["usage"]["input_tokens"] > 0 and output["usage"]["output_tokens"] > 0
    calls = output["model_calls"]  # token usage per model call
    assert [c["purpose"] for c in calls] == ["turn", "turn"]
    assert all(c["model"] == "scripted:research" for c in calls)
    assert sum(c["usage"]["input_tokens"] for c in calls) == output["usage"]["input_tokens"]
    assert result.vars["answer"] == output["answer"]
    # each model call and each tool call is its own activity in the history
    history = await handle.fetch_history()
    types = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert types == ["cadenza.llm.chat", "std.echo", "std.log", "cadenza.llm.chat"]
    # the `record` step after it runs std.log as std.log declares: a local activity
    assert types.count("std.log") == 1 and result.steps["record"].status == StepStatus.COMPLETED


async def test_a_tool_that_fails_twice_succeeds_on_retry(
    client: Client, registry: ActionRegistry, task_queue: str, tmp_path: Path
) -> None:
    (tmp_path / "flaky.yaml").write_text(
        yaml.safe_dump(
            [
                {"content": "", "tool_calls": [{"name": "std.fail", "args": {"until_attempt": 3}}]},
                {"content": "done after the retries"},
            ]
        )
    )
    result, _ = await run(client, registry, task_queue, tmp_path, agent("flaky", ["std.fail"]))
    assert result.status == WorkflowState.COMPLETED, result.error
    [call] = result.steps["think"].output["tool_calls"]
    assert call["tool"] == "std.fail" and call["attempts"] == 3 and call["output"] == {"attempt": 3}
    assert result.steps["think"].output["answer"] == "done after the retries"


async def test_the_iteration_limit_fails_the_step(
    client: Client, registry: ActionRegistry, task_queue: str, tmp_path: Path
) -> None:
    turn = {"content": "again", "tool_calls": [{"name": "std.echo", "args": {"n": 1}}]}
    (tmp_path / "loop.yaml").write_text(yaml.safe_dump([turn] * 10))
    result, _ = await run(
        client, registry, task_queue, tmp_path, agent("loop", ["std.echo"], max_iterations=3)
    )
    assert result.status == WorkflowState.FAILED
    record = result.steps["think"]
    assert record.status == StepStatus.FAILED
    assert record.error is not None and record.error.type == "AgentLimitExceeded"
    assert "max_iterations=3" in record.error.message


async def test_an_unknown_model_or_exhausted_script_fails_clearly(
    client: Client, registry: ActionRegistry, task_queue: str, tmp_path: Path
) -> None:
    (tmp_path / "short.yaml").write_text(
        yaml.safe_dump([{"content": "", "tool_calls": [{"name": "std.echo", "args": {}}]}])
    )
    result, _ = await run(client, registry, task_queue, tmp_path, agent("short", ["std.echo"]))
    assert result.status == WorkflowState.FAILED
    error = result.steps["think"].error
    assert error is not None and error.type == "ModelError"
    assert "has 1 turns; the conversation asked for turn 2" in error.message


def routed(script: str, adaptive: bool = True) -> dict[str, Any]:
    echo = {"action": "std.echo"}
    return {
        "workflow_id": "routing",
        "adaptive_routing": adaptive,
        "steps": [
            {
                "step_id": "triage",
                "step_type": "conditional",
                "router": {"instructions": "Pick the queue.", "model": f"scripted:{script}"},
                "conditions": [
                    {"when": "input.risk > 0.5", "next_steps": ["review"]},
                    {"when": "input.risk > 0.2", "next_steps": ["sample"]},
                ],
                "next_steps": ["publish"],
            },
            {"step_id": "review", **echo},
            {"step_id": "sample", **echo},
            {"step_id": "publish", **echo},
        ],
    }


async def route_with(
    client: Client, registry: ActionRegistry, queue: str, scripts: Path, definition: dict[str, Any]
):  # type: ignore[no-untyped-def]
    async with running_worker(client, Settings(llm_scripts=scripts), registry, task_queue=queue):
        cadenza = CadenzaClient(client, queue)
        handle = await cadenza.start(definition, {"risk": 0.9})
        return await cadenza.result(handle.id)


async def test_a_model_routes_a_conditional_step_within_its_declared_branches(
    client: Client, registry: ActionRegistry, task_queue: str, tmp_path: Path
) -> None:
    (tmp_path / "pick.yaml").write_text(yaml.safe_dump([{"content": '{"branch": 1}'}]))
    (tmp_path / "rogue.yaml").write_text(yaml.safe_dump([{"content": "send it to the moon"}]))
    (tmp_path / "none.yaml").write_text(yaml.safe_dump([{"content": '{"branch": "default"}'}]))

    def taken(result: Any) -> list[str]:
        return sorted(
            s for s in ("review", "sample", "publish") if result.steps[s].status == "completed"
        )

    # the model picks branch 1 although conditions[0] holds
    result = await route_with(client, registry, task_queue, tmp_path, routed("pick"))
    output = result.steps["triage"].output
    assert (output["branch"], output["router"]["routed_by"]) == (1, "model")
    assert taken(result) == ["sample"]
    # the default branch, by the model
    result = await route_with(client, registry, task_queue, tmp_path, routed("none"))
    assert result.steps["triage"].output["branch"] == "default" and taken(result) == ["publish"]
    # an answer outside the branches: the CEL conditions decide (risk 0.9 -> review)
    result = await route_with(client, registry, task_queue, tmp_path, routed("rogue"))
    output = result.steps["triage"].output
    assert output["router"]["routed_by"] == "conditions"
    assert output["router"]["answer"] == "send it to the moon"
    assert output["branch"] == 0 and taken(result) == ["review"]
    # a branch number past any int (1e999 parses as infinity): the conditions decide too, where
    # int() used to raise OverflowError in workflow code and fail the workflow task forever
    (tmp_path / "huge.yaml").write_text(yaml.safe_dump([{"content": '{"branch": 1e999}'}]))
    result = await asyncio.wait_for(
        route_with(client, registry, task_queue, tmp_path, routed("huge")), 60
    )
    output = result.steps["triage"].output
    assert output["router"]["routed_by"] == "conditions" and taken(result) == ["review"]
    # adaptive_routing off: no model call at all
    result = await route_with(
        client, registry, task_queue, tmp_path, routed("pick", adaptive=False)
    )
    output = result.steps["triage"].output
    assert "router" not in output and output["branch"] == 0 and taken(result) == ["review"]


async def test_a_long_conversation_sends_a_bounded_window_and_keeps_its_turn(
    client: Client, registry: ActionRegistry, task_queue: str, tmp_path: Path
) -> None:
    turns = [
        {
            "content": f"step {i}: " + "words " * 60,
            "tool_calls": [{"name": "std.echo", "args": {"i": i}}],
        }
        for i in range(11)
    ]
    (tmp_path / "long.yaml").write_text(yaml.safe_dump([*turns, {"content": "finished"}]))
    definition = agent("long", ["std.echo"], max_iterations=12)
    definition["steps"][0]["agent"]["max_context_bytes"] = 2_000
    result, handle = await run(client, registry, task_queue, tmp_path, definition)
    assert result.status == WorkflowState.COMPLETED, result.error
    assert result.steps["think"].output["answer"] == "finished"  # turn 12 of the script
    history = await handle.fetch_history()
    requests = [
        json.loads(e.activity_task_scheduled_event_attributes.input.payloads[0].data)
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == "cadenza.llm.chat"
    ]
    last = requests[-1]
    assert last["turn"] == 11
    assert [m["role"] for m in last["messages"][:3]] == ["system", "user", "user"]
    assert "earlier messages of this conversation are omitted" in last["messages"][2]["content"]
    assert len(json.dumps(last["messages"])) < 2_600
    assert max(len(json.dumps(r["messages"])) for r in requests) < 2_600


async def test_agent_capability_sends_model_and_tool_calls_to_a_specialised_worker(
    client: Client, registry: ActionRegistry, task_queue: str
) -> None:
    capability = f"gpu{uuid.uuid4().hex[:6]}"
    definition = parse_document((ROOT / "examples/research_agent.yaml").read_bytes(), "r.yaml")
    definition["steps"][0]["agent_capability"] = capability
    definition["steps"][1]["execution"] = "activity"  # to see which worker's queue it went to
    settings = Settings(llm_scripts=ROOT / "examples/scripts")
    async with (
        running_worker(client, settings, registry, task_queue=task_queue, identity="general"),
        running_worker(
            client, settings, registry, task_queue=f"cadenza.{capability}", identity="specialist"
        ),
    ):
        cadenza = CadenzaClient(client, task_queue)
        handle = await cadenza.start(definition, {"question": "why?"})
        result = await cadenza.result(handle.id)
    assert result.status == WorkflowState.COMPLETED, result.error
    history = await handle.fetch_history()
    special, general = f"cadenza.{capability}", task_queue
    scheduled = [
        (
            e.activity_task_scheduled_event_attributes.activity_type.name,
            e.activity_task_scheduled_event_attributes.task_queue.name,
        )
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    # the agent step's model and tool calls on the capability's queue; the next step's not
    assert scheduled == [
        ("cadenza.llm.chat", special),
        ("std.echo", special),
        ("std.log", special),
        ("cadenza.llm.chat", special),
        ("std.log", general),
    ]
    workers = [
        e.activity_task_started_event_attributes.identity
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert workers == ["specialist"] * 4 + ["general"]
