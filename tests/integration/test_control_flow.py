"""Parallel containers, conditionals, waits, loops, pause/resume and critical-path scheduling."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from worker.client import CadenzaClient
from workflows.dsl.models import PauseInput, StepStatus, WorkflowState
from workflows.engine import AdvancedWorkflowRun

FAST = {"initial_interval": 0.1, "maximum_interval": 0.2}


def wf(*steps: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"workflow_id": "flow", "retry_policy": FAST, "steps": list(steps), **fields}


def echo(sid: str, *deps: str, **extra: Any) -> dict[str, Any]:
    return {"step_id": sid, "action": "std.echo", "dependencies": list(deps), **extra}


def failing(sid: str, **extra: Any) -> dict[str, Any]:
    return {"step_id": sid, "action": "std.fail", "retry_policy": {"max_attempts": 1}, **extra}


def ledgered(sid: str, *deps: str) -> dict[str, Any]:
    return {
        "step_id": sid,
        "action": "test.ledger",
        "dependencies": list(deps),
        "input_mapping": {"ledger": "input.ledger"},
        "rollback_actions": ["test.record"],
    }


async def run(cadenza: CadenzaClient, definition: dict[str, Any], run_input: Any = None):  # type: ignore[no-untyped-def]
    return await cadenza.result((await cadenza.start(definition, run_input or {})).id)


@pytest.mark.parametrize(("threshold", "expected"), [(0.75, "completed"), (0.76, "failed")])
async def test_parallel_threshold_just_met_and_just_missed(
    cadenza: CadenzaClient, worker_factory, tmp_path: Path, threshold: float, expected: str
) -> None:
    ledger = tmp_path / "ledger"
    definition = wf(
        {
            "step_id": "fanout",
            "step_type": "parallel",
            "retry_policy": {"parallel_failure_threshold": threshold},
            "parallel_steps": [ledgered("a"), ledgered("b"), ledgered("c"), failing("d")],
        },
        echo("after", "fanout", input_mapping={"rate": "steps.fanout.output.success_rate"}),
    )
    async with worker_factory():
        result = await run(cadenza, definition, {"ledger": str(ledger)})
    assert result.status.value == expected
    output = result.steps["fanout"].output if expected == "completed" else None
    if expected == "completed":
        assert output is not None
        assert (output["total_steps"], output["successful_steps"], output["failed_steps"]) == (
            4,
            3,
            1,
        )
        assert output["success_rate"] == 0.75
        assert set(output["results"]) == {"a", "b", "c"}
        assert output["failures"][0]["step_id"] == "d"
        assert output["failures"][0]["error"]["type"] == "StepFailed"
        assert result.steps["after"].output == {"rate": 0.75}
        assert result.compensations == []
    else:
        error = result.steps["fanout"].error
        assert error is not None and error.type == "ParallelThresholdNotMet"
        assert "3 of 4" in error.message
        # the failed container compensated its completed children
        assert sorted(c.step_id for c in result.compensations) == ["a", "b", "c"]
        assert result.steps["after"].status == StepStatus.PENDING
    for child in "abcd":
        assert child in result.steps  # nested steps appear under their own ids


async def test_nested_containers_with_dependencies_inside(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        {
            "step_id": "outer",
            "step_type": "parallel",
            "parallel_steps": [
                echo("first", input_mapping={"v": "1"}, output_mapping={"first": "result.v"}),
                echo("second", "first", input_mapping={"v": "vars.first + 1"}),
                {
                    "step_id": "inner",
                    "step_type": "parallel",
                    "parallel_steps": [echo("x", input_mapping={"v": "'x'"}), echo("y")],
                },
            ],
        },
    )
    async with worker_factory():
        result = await run(cadenza, definition)
    assert result.status == WorkflowState.COMPLETED, result.error
    outer = result.steps["outer"].output
    assert outer["results"]["second"] == {"v": 2}
    assert outer["results"]["inner"]["results"]["x"] == {"v": "x"}
    assert result.steps["y"].status == StepStatus.COMPLETED
    assert result.steps["second"].started_at >= result.steps["first"].ended_at  # type: ignore[operator]


async def test_failed_child_blocks_its_dependents_inside_a_container(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        {
            "step_id": "box",
            "step_type": "parallel",
            "retry_policy": {"parallel_failure_threshold": 0.0},
            "parallel_steps": [failing("broken"), echo("needs_broken", "broken"), echo("fine")],
        }
    )
    async with worker_factory():
        result = await run(cadenza, definition)
    assert result.status == WorkflowState.COMPLETED
    blocked = result.steps["needs_broken"]
    assert blocked.status == StepStatus.FAILED and blocked.attempts == 0
    assert blocked.error is not None and blocked.error.type == "DependencyFailed"
    assert result.steps["box"].output["successful_steps"] == 1


@pytest.mark.parametrize(
    ("amount", "branch", "ran", "skipped"),
    [
        (500, 0, "manual_review", "auto_approve"),
        (5, "default", "auto_approve", "manual_review"),
    ],
)
async def test_conditional_diamond_runs_one_branch_and_the_join_once(
    cadenza: CadenzaClient, worker_factory, amount: int, branch: Any, ran: str, skipped: str
) -> None:
    definition = wf(
        echo("start"),
        {
            "step_id": "route",
            "step_type": "conditional",
            "dependencies": ["start"],
            "conditions": [{"when": "input.amount > 100", "next_steps": ["manual_review"]}],
            "next_steps": ["auto_approve"],
        },
        echo("manual_review", input_mapping={"who": "'review'"}),
        echo("auto_approve", input_mapping={"who": "'auto'"}),
        echo("after_review", "manual_review"),
        echo("join", "after_review", "auto_approve"),
    )
    async with worker_factory():
        result = await run(cadenza, definition, {"amount": amount})
    steps = result.steps
    assert result.status == WorkflowState.COMPLETED, result.error
    assert steps["route"].output["branch"] == branch
    assert steps["route"].output["conditions"] == [
        {"when": "input.amount > 100", "value": amount > 100}
    ]
    assert steps[ran].status == StepStatus.COMPLETED
    assert steps[skipped].status == StepStatus.SKIPPED
    assert "not chosen by 'route'" in (steps[skipped].skip_reason or "")
    assert steps["after_review"].status == (
        StepStatus.COMPLETED if ran == "manual_review" else StepStatus.SKIPPED
    )
    assert steps["join"].status == StepStatus.COMPLETED and steps["join"].attempts == 1


async def test_wait_seconds_and_until(cadenza: CadenzaClient, worker_factory) -> None:
    definition = wf(
        {"step_id": "pause", "step_type": "wait", "wait": {"seconds": 1}},
        {
            "step_id": "until",
            "step_type": "wait",
            "dependencies": ["pause"],
            "wait": {"until": "now + duration('1s')"},
        },
        {
            "step_id": "past",
            "step_type": "wait",
            "dependencies": ["until"],
            "wait": {"until": "timestamp('2000-01-01T00:00:00Z')"},
        },
    )
    async with worker_factory():
        result = await run(cadenza, definition)
    assert result.status == WorkflowState.COMPLETED, result.error
    assert result.steps["pause"].output["waited_seconds"] == 1
    assert result.steps["until"].output["waited_seconds"] == pytest.approx(1, abs=0.01)
    assert result.steps["past"].output["waited_seconds"] == 0


async def test_loop_with_action_body(cadenza: CadenzaClient, worker_factory) -> None:
    definition = wf(
        {
            "step_id": "count",
            "step_type": "loop",
            "action": "std.echo",
            "input_mapping": {"n": "iteration", "prev": "result == null ? -1 : result.n"},
            "loop_condition": "result.n < 4",
            "output_mapping": {"last_n": "result.n", "rounds": "iteration"},
        },
        echo("after", "count", input_mapping={"third": "steps.count.output.results[2].n"}),
    )
    async with worker_factory():
        result = await run(cadenza, definition)
    assert result.status == WorkflowState.COMPLETED, result.error
    output = result.steps["count"].output
    assert output["iterations"] == 5
    assert [r["n"] for r in output["results"]] == [0, 1, 2, 3, 4]
    assert output["results"][1]["prev"] == 0
    assert result.vars["last_n"] == 4 and result.vars["rounds"] == 5
    assert result.steps["after"].output == {"third": 2}


async def test_loop_limit_exceeded(cadenza: CadenzaClient, worker_factory) -> None:
    definition = wf(
        {
            "step_id": "forever",
            "step_type": "loop",
            "action": "std.echo",
            "loop_condition": "true",
            "loop_max_iterations": 3,
        }
    )
    async with worker_factory():
        result = await run(cadenza, definition)
    assert result.status == WorkflowState.FAILED
    error = result.steps["forever"].error
    assert error is not None and error.type == "LoopLimitExceeded"
    assert "3" in error.message


async def test_loop_with_parallel_body(cadenza: CadenzaClient, worker_factory) -> None:
    definition = wf(
        {
            "step_id": "rounds",
            "step_type": "loop",
            "loop_condition": "iteration < 3",
            "parallel_steps": [
                echo("left", input_mapping={"side": "'l'"}),
                echo("right", "left", input_mapping={"from_left": "steps.left.output.side"}),
            ],
        }
    )
    async with worker_factory():
        result = await run(cadenza, definition)
    assert result.status == WorkflowState.COMPLETED, result.error
    output = result.steps["rounds"].output
    assert output["iterations"] == 3
    assert output["last"]["results"]["right"] == {"from_left": "l"}


async def test_pause_stops_new_steps_and_resume_goes_on(
    cadenza: CadenzaClient, worker_factory, client
) -> None:
    sleep = {"action": "std.sleep", "input_mapping": {"seconds": "1"}}
    definition = wf(
        {"step_id": "one", **sleep},
        {"step_id": "two", "dependencies": ["one"], **sleep},
    )
    async with worker_factory():
        handle = await cadenza.start(definition)
        typed = client.get_workflow_handle_for(AdvancedWorkflowRun.run, handle.id)
        for _ in range(100):
            if (await cadenza.status(handle.id)).steps["one"].status == StepStatus.RUNNING:
                break
            await asyncio.sleep(0.05)
        await typed.signal(AdvancedWorkflowRun.pause, PauseInput(by="ops", reason="deploy"))
        await asyncio.sleep(2.5)
        state = await cadenza.status(handle.id)
        assert state.paused
        assert state.steps["two"].status == StepStatus.PENDING
        assert state.steps["one"].status == StepStatus.COMPLETED  # running steps finish
        await typed.signal(AdvancedWorkflowRun.resume, PauseInput(by="ops"))
        result = await cadenza.result(handle.id)
    assert result.status == WorkflowState.COMPLETED
    assert [(a.kind, a.by) for a in result.audit] == [("pause", "ops"), ("resume", "ops")]
    assert result.audit[0].detail == "deploy"
    assert not result.paused


@pytest.mark.parametrize("optimized", [True, False])
async def test_critical_path_first_starts_the_long_chain_first(
    cadenza: CadenzaClient, worker_factory, optimized: bool
) -> None:
    shorts = [echo(f"short{i}") for i in range(4)]
    chain = [echo("long0")] + [echo(f"long{i}", f"long{i - 1}") for i in range(1, 4)]
    # activities: local ones of one workflow task all start at the same workflow time
    definition = wf(
        *shorts,
        *chain,
        max_parallel_steps=2,
        optimization_enabled=optimized,
        default_execution="activity",
    )
    async with worker_factory():
        result = await run(cadenza, definition)
    assert result.status == WorkflowState.COMPLETED
    started = sorted(result.steps, key=lambda s: (result.steps[s].started_at, s))
    if optimized:
        assert "long0" in started[:2]
    else:
        assert started[:4] == ["short0", "short1", "short2", "short3"]


async def test_large_container_runs_in_batch_child_workflows(
    cadenza: CadenzaClient, worker_factory, client
) -> None:
    from workflows.dsl.models import ExecutionOptions

    children = [echo(f"c{i}", input_mapping={"i": str(i)}) for i in range(60)]
    children.append(echo("c_dep", "c0", input_mapping={"from": "steps.c0.output.i"}))
    children.append(failing("c_bad", retry_policy={"max_attempts": 1, "continue_on_failure": True}))
    definition = wf(
        echo("before", output_mapping={"seen": "'yes'"}),
        {
            "step_id": "fanout",
            "step_type": "parallel",
            "dependencies": ["before"],
            "parallel_steps": children,
        },
        echo("after", "fanout", input_mapping={"n": "steps.fanout.output.successful_steps"}),
        max_parallel_steps=8,
    )
    options = ExecutionOptions(batch_threshold=20, batch_size=25)
    async with worker_factory():
        handle = await cadenza.start(definition, options=options)
        result = await cadenza.result(handle.id)
    assert result.status == WorkflowState.COMPLETED, result.error
    output = result.steps["fanout"].output
    assert output["total_steps"] == 62 and output["successful_steps"] == 61
    assert result.steps["c_dep"].output == {"from": 0}
    assert result.steps["c41"].output == {"i": 41}
    assert result.steps["after"].output == {"n": 61}
    batches = [
        w.id
        async for w in client.list_workflows("WorkflowType = 'CadenzaBatchRun'")
        if w.id.startswith(handle.id)
    ]
    assert len(batches) == 3  # 62 children in batches of about 25 (c0 and c_dep together)


async def test_long_loop_moves_to_a_child_that_continues_as_new(
    cadenza: CadenzaClient, worker_factory, client
) -> None:
    from workflows.dsl.models import ExecutionOptions

    definition = wf(
        {
            "step_id": "count",
            "step_type": "loop",
            "action": "std.echo",
            "input_mapping": {"n": "iteration"},
            "loop_condition": "result.n < 24",
            "loop_max_iterations": 1000,
            "output_mapping": {"last": "result.n"},
        },
        echo("after", "count", input_mapping={"iterations": "steps.count.output.iterations"}),
    )
    options = ExecutionOptions(
        loop_inline_iterations=5, continue_as_new_every=7, max_kept_results=10
    )
    async with worker_factory():
        handle = await cadenza.start(definition, options=options)
        result = await cadenza.result(handle.id)
    assert result.status == WorkflowState.COMPLETED, result.error
    output = result.steps["count"].output
    assert output["iterations"] == 25
    assert output["results_offset"] == 15
    assert [r["n"] for r in output["results"]] == list(range(15, 25))
    assert result.vars["last"] == 24
    assert result.steps["count"].attempts == 25
    assert result.steps["after"].output == {"iterations": 25}
    runs = [
        w
        async for w in client.list_workflows("WorkflowType = 'CadenzaLoopRun'")
        if w.id.startswith(handle.id)
    ]
    # 20 iterations in the child, 7 per run: three runs of one chain
    assert len(runs) == 3 and len({w.id for w in runs}) == 1


async def test_fifteen_hundred_iteration_loop_with_default_options(
    cadenza: CadenzaClient, worker_factory, client
) -> None:
    definition = wf(
        {
            "step_id": "spin",
            "step_type": "loop",
            "action": "std.echo",
            "input_mapping": {"n": "iteration"},
            "loop_condition": "result.n < 1499",
            "loop_max_iterations": 2000,
        }
    )
    async with worker_factory():
        handle = await cadenza.start(definition)
        result = await cadenza.result(handle.id)
        parent = await client.get_workflow_handle(handle.id).fetch_history()
        chain = [
            w
            async for w in client.list_workflows("WorkflowType = 'CadenzaLoopRun'")
            if w.id.startswith(handle.id)
        ]
        lengths = [
            len((await client.get_workflow_handle(w.id, run_id=w.run_id).fetch_history()).events)
            for w in chain
        ]
    assert result.status == WorkflowState.COMPLETED, result.error
    assert result.steps["spin"].output["iterations"] == 1500
    assert result.steps["spin"].output["last"] == {"n": 1499}
    # 200 inline, then 1,300 in a child chain of runs of 500: no history anywhere grows long
    assert len(chain) == 3
    assert max(lengths) < 4000 and len(parent.events) < 2000, (lengths, len(parent.events))


async def test_ten_thousand_child_container_completes_with_bounded_histories(
    cadenza: CadenzaClient, worker_factory, client
) -> None:
    children = [echo(f"c{i}") for i in range(10_000)]
    definition = wf(
        {"step_id": "fan", "step_type": "parallel", "parallel_steps": children},
        max_parallel_steps=50,
    )
    async with worker_factory():
        handle = await cadenza.start(definition)
        result = await cadenza.result(handle.id)
        lengths = {handle.id: len((await handle.fetch_history()).events)}
        async for child in client.list_workflows(f"WorkflowId STARTS_WITH '{handle.id}.'"):
            history = await client.get_workflow_handle(child.id).fetch_history()
            lengths[child.id] = len(history.events)
    assert result.status == WorkflowState.COMPLETED, result.error
    assert result.steps["fan"].output["successful_steps"] == 10_000
    assert sum(r.status == StepStatus.COMPLETED for r in result.steps.values()) == 10_001
    assert len(lengths) == 11  # the run and 10 batches of 1,000
    assert max(lengths.values()) < 10_000, lengths


async def test_pause_holds_steps_already_queued_for_a_slot(
    cadenza: CadenzaClient, worker_factory, client
) -> None:
    sleep = {"action": "std.sleep", "input_mapping": {"seconds": "1"}}
    definition = wf(*({"step_id": f"s{i}", **sleep} for i in range(3)), max_parallel_steps=1)
    async with worker_factory():
        handle = await cadenza.start(definition)
        typed = client.get_workflow_handle_for(AdvancedWorkflowRun.run, handle.id)
        for _ in range(100):
            if (await cadenza.status(handle.id)).steps["s0"].status == StepStatus.RUNNING:
                break
            await asyncio.sleep(0.05)
        await typed.signal(AdvancedWorkflowRun.pause, PauseInput(by="ops"))
        await asyncio.sleep(2.5)
        state = await cadenza.status(handle.id)
        assert state.steps["s0"].status == StepStatus.COMPLETED
        assert state.steps["s1"].status == StepStatus.PENDING  # was waiting for the slot
        await typed.signal(AdvancedWorkflowRun.resume, PauseInput(by="ops"))
        result = await cadenza.result(handle.id)
    assert result.status == WorkflowState.COMPLETED
