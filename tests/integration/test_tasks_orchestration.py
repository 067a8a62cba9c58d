"""Agentic tasks on a real dev server (issue 19, item 5): an exception in an orchestrator node
goes to error_recovery (and a failing recovery ends the task clearly) instead of failing the
workflow task forever; parallel_executor honours max_parallel_steps and the retry policy's
parallel_failure_threshold; the analysis' capabilities route subtasks to capability queues."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from activities.registry import ActionRegistry
from tests.support.tasks import FAST, analysis, echo, run_task, script
from worker.settings import Settings
from worker.wiring import running_worker
from workflows.orchestrator import TaskInput

FAIL = {"tool": "std.fail", "args": {"message": "upstream down", "non_retryable": True}}


def boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("injected bug")


async def test_an_exception_in_a_node_goes_to_error_recovery(
    client: Client,
    registry: ActionRegistry,
    task_queue: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the react node fails with a plain exception (a bug): before, the workflow task failed
    # and was retried forever; now recovery tries the parallel route, which finishes the task
    monkeypatch.setattr("workflows.orchestrator.graph._react_prompt", boom)
    model = script(tmp_path, "bug", [analysis(dependencies="sequential", subtasks=[echo(n=1)])])
    request = TaskInput(task="Do it", tools=["std.echo"], model=model, retry=FAST)
    result, _ = await run_task(client, registry, task_queue, tmp_path, request)
    assert result.status == "completed", result.error
    assert result.route == ["react", "error", "parallel", "complete"]
    assert result.decisions[1].reason == "react_agent: RuntimeError: injected bug"
    assert [c["output"] for c in result.tool_calls] == [{"n": 1}]


async def test_a_failing_recovery_ends_the_task_with_a_clear_error(
    client: Client,
    registry: ActionRegistry,
    task_queue: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("workflows.orchestrator.graph._react_prompt", boom)
    monkeypatch.setattr("workflows.orchestrator.graph.feasible", boom)  # recovery's own bug
    model = script(tmp_path, "bugs", [analysis(dependencies="sequential", subtasks=[echo()])])
    request = TaskInput(task="Do it", tools=["std.echo"], model=model, retry=FAST)
    result, _ = await run_task(client, registry, task_queue, tmp_path, request)
    assert result.status == "failed"
    assert result.route == ["react", "error", "complete"]
    assert result.error is not None and result.error.type == "WorkflowFailed"
    assert result.error.message == (
        "error_recovery: RuntimeError: injected bug (while recovering from: react_agent: "
        "RuntimeError: injected bug)"
    )


async def test_a_malformed_analysis_falls_back_instead_of_hanging(
    client: Client, registry: ActionRegistry, task_queue: str, tmp_path: Path
) -> None:
    model = script(
        tmp_path,
        "odd",
        [analysis(dependencies="conditional", branches=3), {"content": "Done by hand."}],
    )
    request = TaskInput(task="Odd one", tools=["std.echo"], model=model, retry=FAST)
    result, _ = await run_task(client, registry, task_queue, tmp_path, request)
    assert result.status == "completed", result.error
    assert result.analysis is not None and result.analysis["source"] == "fallback"
    assert result.analysis["problem"] == "branches is not a list"
    assert result.route == ["react", "complete"] and result.answer == "Done by hand."


async def test_subtasks_succeed_together_at_the_threshold(
    client: Client, registry: ActionRegistry, task_queue: str, tmp_path: Path
) -> None:
    subtasks = [echo(n=1), echo(n=2), FAIL]
    model = script(tmp_path, "most", [analysis(dependencies="independent", subtasks=subtasks)])
    tools = ["std.echo", "std.fail"]
    request = TaskInput(task="Three reports", tools=tools, model=model, retry=FAST)
    result, _ = await run_task(client, registry, task_queue, tmp_path, request)
    assert result.status == "completed", result.error  # 2 of 3 >= 0.5 (the default)
    assert result.route == ["parallel", "complete"]
    assert result.answer is not None
    assert result.answer.startswith("parallel: 2 of 3 subtasks succeeded (67%); first failure")
    strict = FAST.model_copy(update={"parallel_failure_threshold": 0.9})
    request = TaskInput(
        task="Three reports", tools=tools, model=model, retry=strict, max_recoveries=0
    )
    result, _ = await run_task(client, registry, task_queue, tmp_path, request)
    assert result.status == "failed" and result.error is not None
    assert "ParallelThresholdNotMet: parallel: 2 of 3 subtasks succeeded (67%)" in (
        result.error.message
    )
    assert "the threshold is 90%" in result.error.message


def most_at_once(history: Any) -> int:
    """The most tool activities scheduled and not yet closed at any point of the history."""
    open_now, most, tools = 0, 0, set()
    for e in history.events:
        scheduled = e.activity_task_scheduled_event_attributes
        if e.HasField("activity_task_scheduled_event_attributes") and (
            scheduled.activity_type.name == "std.echo"
        ):
            tools.add(e.event_id)
            open_now += 1
            most = max(most, open_now)
        for field in ("completed", "failed", "timed_out"):
            name = f"activity_task_{field}_event_attributes"
            if e.HasField(name) and getattr(e, name).scheduled_event_id in tools:
                open_now -= 1
    return most


async def test_parallel_executor_runs_at_most_max_parallel_steps_at_once(
    client: Client, registry: ActionRegistry, task_queue: str, tmp_path: Path
) -> None:
    subtasks = [echo(n=i) for i in range(5)]
    model = script(tmp_path, "five", [analysis(dependencies="independent", subtasks=subtasks)])
    request = TaskInput(
        task="Five", tools=["std.echo"], model=model, retry=FAST, max_parallel_steps=2
    )
    result, handle = await run_task(client, registry, task_queue, tmp_path, request)
    assert result.status == "completed", result.error
    assert [c["output"]["n"] for c in result.tool_calls] == [0, 1, 2, 3, 4]
    assert most_at_once(await handle.fetch_history()) == 2


async def test_capabilities_route_subtasks_to_capability_queues(
    client: Client, registry: ActionRegistry, task_queue: str, tmp_path: Path
) -> None:
    gpu, idle = f"gpu-{uuid.uuid4().hex[:8]}", f"idle-{uuid.uuid4().hex[:8]}"
    subtasks = [
        {**echo(where="gpu"), "capability": gpu},
        echo(where="home"),
        {**echo(where="nowhere"), "capability": idle},  # no worker polls cadenza.<idle>
    ]
    model = script(
        tmp_path,
        "routed",
        [analysis(dependencies="independent", capabilities=[gpu], subtasks=subtasks)],
    )
    request = TaskInput(
        task="Render and report",
        tools=["std.echo"],
        model=model,
        retry=FAST,
        capabilities=[gpu, idle],
        schedule_to_start_seconds=1,
    )
    settings = Settings(llm_scripts=tmp_path)
    async with running_worker(client, settings, registry, task_queue=f"cadenza.{gpu}"):
        result, handle = await run_task(client, registry, task_queue, tmp_path, request)
    assert result.status == "completed", result.error  # 2 of 3 >= 0.5
    assert result.analysis is not None and result.analysis["capabilities"] == [gpu, idle]
    routed, home, lost = result.tool_calls
    assert routed["output"] == {"where": "gpu"} and routed["queue"] == f"cadenza.{gpu}"
    assert home["output"] == {"where": "home"} and "queue" not in home
    assert lost["error"].startswith(
        f"NoWorkerForCapability: no worker polls the task queue 'cadenza.{idle}'"
    )
    history = await handle.fetch_history()
    queues = [
        e.activity_task_scheduled_event_attributes.task_queue.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == "std.echo"
    ]
    # a schedule-to-start timeout is not retried: nobody took it, retrying would not help
    assert queues == [f"cadenza.{gpu}", task_queue, f"cadenza.{idle}"]
