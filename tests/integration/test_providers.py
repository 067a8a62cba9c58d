"""Hosted model providers through their real client libraries (`langchain-openai`,
`langchain-ollama`) against a scripted model server: tool calls, usage, the key from the
worker's settings only, Temporal (not the library) retrying a 429, a 401 failing at once."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client

from activities.registry import ActionRegistry
from tests.support.definitions import agent as agent_step
from tests.support.model_servers import model_server
from worker.client import CadenzaClient
from worker.settings import Settings
from worker.wiring import running_worker
from workflows.dsl.models import StepStatus, WorkflowState

SECRET = "sk-test-f00dfeed"


def agent(model: str) -> dict[str, Any]:
    definition = agent_step("unused", ["std.echo"])
    definition["steps"][0]["agent"]["model"] = model
    definition["retry_policy"]["max_attempts"] = 4
    return definition


async def run(client: Client, registry: ActionRegistry, queue: str, settings: Settings, model: str):  # type: ignore[no-untyped-def]
    async with running_worker(client, settings, registry, task_queue=queue):
        cadenza = CadenzaClient(client, queue)
        handle = await cadenza.start(agent(model), {"question": "what is 2+2?"})
        return await cadenza.result(handle.id), handle


async def test_an_openai_compatible_server_answers_with_tools_and_temporal_retries_a_429(
    client: Client, registry: ActionRegistry, task_queue: str
) -> None:
    replies = [
        (200, {"content": "", "tool_calls": [{"name": "std.echo", "args": {"sum": 4}}]}),
        (429, "slow down"),
        (200, {"content": "It is 4."}),
    ]
    with model_server(replies) as server:
        settings = Settings(openai_base_url=f"{server.url}/v1", openai_api_key=SECRET)
        result, handle = await run(client, registry, task_queue, settings, "openai:test-model")
    assert result.status == WorkflowState.COMPLETED, result.error
    output = result.steps["think"].output
    assert output["answer"] == "It is 4."
    assert output["tool_calls"] == [
        {"tool": "std.echo", "args": {"sum": 4}, "output": {"sum": 4}, "attempts": 1}
    ]
    assert output["usage"]["input_tokens"] == 84 and output["usage"]["output_tokens"] == 14
    # three HTTP requests: the library did not retry the 429 itself, Temporal did (attempt 2)
    assert len(server.requests) == 3
    assert all(h.get("authorization") == f"Bearer {SECRET}" for h in server.headers)
    first, last = server.requests[0], server.requests[2]
    assert first["model"] == "test-model"
    assert [t["function"]["name"] for t in first["tools"]] == ["std.echo"]
    assert first["messages"][0] == {"role": "system", "content": "Be brief."}
    assert (
        last["messages"][-1]["role"] == "tool" and last["messages"][-1]["content"] == '{"sum": 4}'
    )
    history = await handle.fetch_history()
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert attempts == [1, 1, 2]  # chat, std.echo, chat (retried once)
    assert SECRET not in history.to_json()  # the key never enters history


async def test_a_refused_call_fails_the_step_at_once_with_model_error(
    client: Client, registry: ActionRegistry, task_queue: str
) -> None:
    with model_server([(401, "invalid api key"), (200, {"content": "never"})]) as server:
        settings = Settings(openai_base_url=f"{server.url}/v1", openai_api_key="sk-wrong")
        result, _ = await run(client, registry, task_queue, settings, "openai:test-model")
    assert result.status == WorkflowState.FAILED
    step = result.steps["think"]
    assert step.status == StepStatus.FAILED and step.error is not None
    assert step.error.type == "ModelError"
    assert "refused the call (HTTP 401)" in step.error.message
    assert len(server.requests) == 1  # non-retryable: max_attempts 4 did not apply


async def test_an_ollama_server_answers_with_tools(
    client: Client, registry: ActionRegistry, task_queue: str
) -> None:
    replies = [
        (200, {"content": "", "tool_calls": [{"name": "std.echo", "args": {"n": 2}}]}),
        (200, {"content": "Two."}),
    ]
    with model_server(replies) as server:
        settings = Settings(ollama_url=server.url)
        result, _ = await run(client, registry, task_queue, settings, "ollama:llama3.1")
    assert result.status == WorkflowState.COMPLETED, result.error
    output = result.steps["think"].output
    assert output["answer"] == "Two."
    assert output["tool_calls"][0]["output"] == {"n": 2}
    assert output["usage"]["input_tokens"] == 84
    assert [r["model"] for r in server.requests] == ["llama3.1", "llama3.1"]
    assert server.requests[1]["messages"][-1]["role"] == "tool"
