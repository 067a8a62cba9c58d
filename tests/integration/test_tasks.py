"""Agentic tasks (`AgenticTaskRun`, the orchestrator graph) on a real dev server with scripted
models: each of the six routes, the fallback analysis, recovery, and an approval interrupt
decided by update after the worker that asked for it was killed."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from activities.registry import ActionRegistry
from tests.support.processes import spawn_worker
from tests.support.tasks import FAST, analysis, echo, run_task, script
from worker.client import CadenzaClient, DecisionRefused
from worker.observability.setup import observability
from worker.settings import Settings
from worker.wiring import running_worker
from workflows.orchestrator import APPROVAL_NODE, TaskInput, TaskResult


async def activity_types(handle: Any) -> list[str]:
    history = await handle.fetch_history()
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]


async def test_independent_subtasks_take_the_parallel_route(
    client: Client, registry: ActionRegistry, task_queue: str, tmp_path: Path
) -> None:
    model = script(
        tmp_path,
        "par",
        [analysis(dependencies="independent", subtasks=[echo(city="Oslo"), echo(city="Lima")])],
    )
    request = TaskInput(task="Weather in two cities", tools=["std.echo"], model=model, retry=FAST)
    result, handle = await run_task(client, registry, task_queue, tmp_path, request)
    assert result.status == "completed", result.error
    assert result.route == ["parallel", "complete"]
    assert [c["output"]["city"] for c in result.tool_calls] == ["Oslo", "Lima"]
    assert result.analysis is not None and result.analysis["source"] == "model"
    assert await activity_types(handle) == ["cadenza.llm.chat", "std.echo", "std.echo"]
    # both tool calls were scheduled by one workflow task: they ran concurrently
    history = await handle.fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.workflow_task_completed_event_id
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled[1] == scheduled[2]


async def test_the_model_picks_a_branch_on_the_conditional_route(
    client: Client, registry: ActionRegistry, task_queue: str, tmp_path: Path
) -> None:
    model = script(
        tmp_path,
        "cond",
        [
            analysis(
                dependencies="conditional",
                branches=[
                    {"when": "the order is small", "subtasks": [echo(path="fast")]},
                    {"when": "the order is large", "subtasks": [echo(path="review")]},
                ],
            ),
            {"content": '{"branch": 1}'},
        ],
    )
    request = TaskInput(task="Ship order 7 (900 items)", tools=["std.echo"], model=model)
    result, handle = await run_task(client, registry, task_queue, tmp_path, request)
    assert result.status == "completed", result.error
    assert result.route == ["conditional", "complete"]
    assert result.answer == "branch 1: the order is large"
    assert [c["purpose"] for c in result.model_calls] == ["analysis", "route"]
    assert [c["output"] for c in result.tool_calls] == [{"path": "review"}]
    assert await activity_types(handle) == ["cadenza.llm.chat", "cadenza.llm.chat", "std.echo"]


async def test_an_unparsable_analysis_falls_back_and_the_react_route_answers(
    client: Client, registry: ActionRegistry, task_queue: str, tmp_path: Path
) -> None:
    model = script(
        tmp_path,
        "react",
        [
            {"content": "This looks like a research task to me."},  # not JSON: fallback
            {"content": "", "tool_calls": [{"name": "std.echo", "args": {"q": "temporal"}}]},
            {"content": "Temporal is a durable execution platform."},
        ],
    )
    request = TaskInput(task="Research std.echo of temporal", tools=["std.echo"], model=model)
    result, _ = await run_task(client, registry, task_queue, tmp_path, request)
    assert result.status == "completed", result.error
    assert result.route == ["react", "complete"]
    assert result.analysis is not None
    assert result.analysis["source"] == "fallback"
    assert result.analysis["capabilities"] == ["std.echo"]
    assert "not a JSON object" in result.analysis["problem"]
    assert result.answer == "Temporal is a durable execution platform."
    assert [c["purpose"] for c in result.model_calls] == ["analysis", "turn", "turn"]
    assert result.iterations == 2 and result.usage["input_tokens"] > 0
    assert [c["output"] for c in result.tool_calls] == [{"q": "temporal"}]


async def test_a_failed_strategy_goes_to_error_recovery_which_tries_another(
    client: Client, registry: ActionRegistry, task_queue: str, tmp_path: Path
) -> None:
    failing = {"tool": "std.fail", "args": {"message": "upstream down", "non_retryable": True}}
    model = script(
        tmp_path,
        "recover",
        [
            analysis(dependencies="independent", subtasks=[echo(n=1), failing]),
            {"content": "Done without the failing service."},
        ],
    )
    strict = FAST.model_copy(update={"parallel_failure_threshold": 1.0})  # all must succeed
    request = TaskInput(
        task="Collect two reports", tools=["std.echo", "std.fail"], model=model, retry=strict
    )
    result, _ = await run_task(client, registry, task_queue, tmp_path, request)
    assert result.status == "completed", result.error
    assert result.route == ["parallel", "error", "react", "complete"]
    assert "ParallelThresholdNotMet: parallel: 1 of 2 subtasks succeeded" in (
        result.decisions[1].reason
    )
    assert "tool std.fail: " in result.decisions[1].reason
    assert result.decisions[2].reason == "recovery: trying react"
    assert result.answer == "Done without the failing service."


async def test_recovery_ends_with_a_clear_failure_when_no_strategy_is_left(
    client: Client, registry: ActionRegistry, task_queue: str, tmp_path: Path
) -> None:
    loop = {"content": "", "tool_calls": [{"name": "std.echo", "args": {}}]}
    model = script(tmp_path, "limit", [{"content": "?"}, loop, loop, loop])
    request = TaskInput(task="Loop forever", tools=["std.echo"], model=model, max_iterations=2)
    result, _ = await run_task(client, registry, task_queue, tmp_path, request)
    assert result.status == "failed"
    assert result.route == ["react", "error", "complete"]
    assert result.error is not None and result.error.type == "WorkflowFailed"
    assert "AgentLimitExceeded" in result.error.message
    assert "no other strategy left" in result.error.message


async def wait_for(cadenza: CadenzaClient, execution_id: str, status: str) -> TaskResult:
    for _ in range(300):
        try:
            state = await cadenza.task_status(execution_id, timeout=2)
            if state.status == status:
                return state
        except Exception:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"task {execution_id} never reached {status}")


async def test_approval_interrupt_is_decided_by_update_after_the_worker_was_killed(
    client: Client, registry: ActionRegistry, task_queue: str, tmp_path: Path
) -> None:
    model = script(
        tmp_path,
        "pay",
        [
            analysis(
                dependencies="independent", sensitive=True, subtasks=[echo(pay=10), echo(pay=20)]
            )
        ],
    )
    cadenza = CadenzaClient(client, task_queue)
    request = TaskInput(task="Pay two invoices", tools=["std.echo"], model=model, approvers=["ana"])
    proc = spawn_worker(task_queue, tmp_path / "worker.log", CADENZA_LLM_SCRIPTS=str(tmp_path))
    try:
        handle = await cadenza.start_task(request)
        waiting = await wait_for(cadenza, handle.id, "waiting")
        assert waiting.waiting is not None and waiting.waiting["key"] == APPROVAL_NODE
        assert waiting.route == [] and waiting.approval_requests == 1
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    # a fresh worker (no cache: every task replays the history) serves the decision
    settings = Settings(llm_scripts=tmp_path)
    async with running_worker(
        client, settings, registry, task_queue=task_queue, max_cached_workflows=0
    ):
        for _ in range(50):  # `cadenza pending` shows it (visibility is eventually consistent)
            listed = [(i, p.step_id, p.approvers) for i, p in await cadenza.pending(timeout=0.5)]
            if (handle.id, APPROVAL_NODE, ["ana"]) in listed:
                break
            await asyncio.sleep(0.1)
        assert (handle.id, APPROVAL_NODE, ["ana"]) in listed
        with pytest.raises(DecisionRefused, match="'bob' may not decide"):
            await cadenza.approve(handle.id, APPROVAL_NODE, "bob")
        with pytest.raises(DecisionRefused, match="one approval, 'human_approval'"):
            await cadenza.approve(handle.id, "deploy", "ana")
        decided = await cadenza.approve(handle.id, APPROVAL_NODE, "ana", "ok")
        assert decided.outcome == "approved"
        result = await cadenza.task_result(handle.id)
        with pytest.raises(DecisionRefused, match=r"already ended|not waiting"):
            await cadenza.approve(handle.id, APPROVAL_NODE, "ana")
    assert result.status == "completed", result.error
    assert result.route == ["approval", "parallel", "complete"]
    assert result.approval_requests == 1  # the approval node asked once
    assert [(a.kind, a.by, a.detail) for a in result.approvals] == [("approve", "ana", "ok")]
    # the analysis was not re-run after the restart: one model call, then the two tools
    assert await activity_types(handle) == ["cadenza.llm.chat", "std.echo", "std.echo"]


async def test_a_rejected_plan_fails_the_task_and_decisions_are_counted(
    client: Client, registry: ActionRegistry, task_queue: str, tmp_path: Path
) -> None:
    model = script(tmp_path, "rej", [analysis(dependencies="sequential")])
    settings = Settings(llm_scripts=tmp_path)
    cadenza = CadenzaClient(client, task_queue)
    request = TaskInput(
        task="Tidy the docs", tools=["std.echo"], model=model, require_approval=True
    )
    async with (
        httpx.AsyncClient() as http,
        observability(client, settings, http) as observed,
        running_worker(client, settings, registry, task_queue=task_queue, observed=observed),
    ):
        handle = await cadenza.start_task(request)
        await wait_for(cadenza, handle.id, "waiting")
        await cadenza.reject(handle.id, APPROVAL_NODE, "ana", "not now")
        result = await cadenza.task_result(handle.id)
        monitor = observed.monitor
    assert result.status == "failed"
    assert result.error is not None and result.error.type == "ApprovalRejected"
    assert result.error.message == "not now"
    assert result.route == ["approval", "complete"]
    assert await activity_types(handle) == ["cadenza.llm.chat"]
    assert monitor.counted["decisions"] == 2


async def test_an_invalid_task_input_fails_the_run_with_a_clear_message(
    client: Client, registry: ActionRegistry, task_queue: str, tmp_path: Path
) -> None:
    """A client other than CadenzaClient may send anything: the run fails, no task retries."""
    from temporalio.client import WorkflowFailureError

    async with running_worker(
        client, Settings(llm_scripts=tmp_path), registry, task_queue=task_queue
    ):
        with pytest.raises(WorkflowFailureError) as failed:
            await client.execute_workflow(
                "AgenticTaskRun",
                {"task": "x", "model": "gpt4", "retries": 3},
                id=f"bad-task-{task_queue}",
                task_queue=task_queue,
            )
    message = str(failed.value.cause)
    assert "model 'gpt4' is not provider:name" in message
    assert "retries" in message and "Extra inputs are not permitted" in message


async def test_the_web_uis_signal_decides_too_and_bad_signals_are_audited(
    client: Client, registry: ActionRegistry, task_queue: str, tmp_path: Path
) -> None:
    model = script(tmp_path, "sig", [analysis(dependencies="independent", subtasks=[echo(a=1)])])
    cadenza = CadenzaClient(client, task_queue)
    request = TaskInput(task="Deploy", tools=["std.echo"], model=model, require_approval=True)
    async with running_worker(
        client, Settings(llm_scripts=tmp_path), registry, task_queue=task_queue
    ):
        handle = await cadenza.start_task(request)
        await wait_for(cadenza, handle.id, "waiting")
        await handle.signal("approve", {"step_id": "deploy", "by": "ana"})
        await handle.signal("approve", {"by": "ana"})
        await handle.signal("approve", {"step_id": APPROVAL_NODE, "by": "ana", "comment": "go"})
        result = await cadenza.task_result(handle.id)
    assert result.status == "completed", result.error
    kinds = [(a.kind, a.by) for a in result.approvals]
    assert kinds == [("ignored", "ana"), ("ignored", "ana"), ("approve", "ana")]
    assert "one approval, 'human_approval'" in result.approvals[0].detail
    assert "step_id" in result.approvals[1].detail
