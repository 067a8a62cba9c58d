"""The language, second edition, on the real server: milestones (`wait: {condition}`), explicit
termination (`terminate`), dynamic multiple instances (`map`), partial joins and races
(`completion`), cancelling one step or a region (`cancel_step`)."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest

from tests.support.flows import run, sleep, start_until_running, status_when, wf
from worker.client import CadenzaClient, DecisionRefused
from workflows.contracts import StepStatus, WorkflowState


async def test_a_milestone_waits_until_its_condition_holds(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        sleep("slow", 1.5, output_mapping={"ready": "true"}),
        {
            "step_id": "milestone",
            "step_type": "wait",
            "wait": {"condition": "has(vars.ready) && vars.ready"},
        },
        {"step_id": "after", "action": "std.echo", "dependencies": ["milestone"]},
    )
    async with worker_factory():
        handle = await cadenza.start(definition)
        waiting = await status_when(
            cadenza,
            handle.id,
            lambda s: s.steps["milestone"].status == StepStatus.WAITING,
            "the milestone waiting",
        )
        assert waiting.steps["slow"].status == StepStatus.RUNNING
        result = await cadenza.result(handle.id)
    assert result.status == WorkflowState.COMPLETED
    milestone, slow = result.steps["milestone"], result.steps["slow"]
    assert milestone.output["waited_seconds"] >= 1.0
    assert milestone.ended_at is not None and slow.ended_at is not None
    assert milestone.ended_at >= slow.ended_at
    assert result.steps["after"].status == StepStatus.COMPLETED


async def test_a_milestone_that_never_comes_fails_with_wait_timeout(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        {
            "step_id": "never",
            "step_type": "wait",
            "timeout": 1,
            "wait": {"condition": "input.flag == 'set'"},
        }
    )
    async with worker_factory():
        result = await run(cadenza, definition, {"flag": "unset"})
    assert result.status == WorkflowState.FAILED
    error = result.steps["never"].error
    assert error is not None and error.type == "WaitTimeout"
    assert "input.flag == 'set'" in error.message


async def test_terminate_completed_cancels_running_steps_and_skips_the_rest(
    cadenza: CadenzaClient, worker_factory, tmp_path: Path
) -> None:
    definition = wf(
        {"step_id": "check", "action": "std.echo", "input_mapping": {"dup": "input.dup"}},
        sleep("slow", 30),
        {
            "step_id": "duplicate",
            "step_type": "terminate",
            "dependencies": ["check"],
            "conditions": [{"when": "steps.check.output.dup"}],
            "terminate": {"status": "completed", "message": "duplicate of an earlier order"},
        },
        {"step_id": "ship", "action": "std.echo", "dependencies": ["duplicate", "slow"]},
        {
            "step_id": "charge",
            "action": "std.echo",
            "dependencies": ["check"],
            "rollback_actions": ["std.log"],
        },
    )
    async with worker_factory():
        result = await run(cadenza, definition, {"dup": True})
    assert result.status == WorkflowState.COMPLETED, result.error
    assert result.steps["duplicate"].status == StepStatus.COMPLETED
    assert result.steps["duplicate"].output == {
        "status": "completed",
        "message": "duplicate of an earlier order",
    }
    slow = result.steps["slow"]
    assert slow.status == StepStatus.FAILED and slow.error is not None
    assert slow.error.type == "Cancelled"
    ship = result.steps["ship"]
    assert ship.status == StepStatus.SKIPPED
    assert ship.skip_reason is not None and "duplicate" in ship.skip_reason
    assert result.compensations == []  # a completed termination compensates nothing


async def test_terminate_failed_fails_the_run_with_its_error_type_and_compensates(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        {"step_id": "charge", "action": "std.echo", "rollback_actions": ["std.log"]},
        {
            "step_id": "fraud",
            "step_type": "terminate",
            "dependencies": ["charge"],
            "terminate": {"status": "failed", "error_type": "FraudSuspected", "message": "score"},
        },
        {"step_id": "ship", "action": "std.echo", "dependencies": ["fraud"]},
    )
    async with worker_factory():
        result = await run(cadenza, definition)
    assert result.status == WorkflowState.FAILED
    assert result.error is not None and result.error.type == "FraudSuspected"
    assert result.error.step_id == "fraud" and result.error.message == "score"
    assert [c.step_id for c in result.compensations] == ["charge"]
    assert result.steps["ship"].status == StepStatus.SKIPPED


async def test_a_terminate_step_whose_guard_is_false_is_skipped(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        {
            "step_id": "stop",
            "step_type": "terminate",
            "conditions": [{"when": "input.stop"}],
            "terminate": {"status": "failed"},
        },
        {"step_id": "go", "action": "std.echo"},
    )
    async with worker_factory():
        result = await run(cadenza, definition, {"stop": False})
    assert result.status == WorkflowState.COMPLETED
    assert result.steps["stop"].status == StepStatus.SKIPPED
    assert result.steps["go"].status == StepStatus.COMPLETED


def charge_each(**map_fields: Any) -> dict[str, Any]:
    body = {
        "step_id": "charge",
        "action": "std.echo",
        "input_mapping": {"order_id": "order.id", "position": "index"},
        "output_mapping": {"last_charged": "result.order_id"},
    }
    return {
        "step_id": "charge_each",
        "step_type": "map",
        "map": {"items": "input.orders", "as": "order", "step": body, **map_fields},
    }


async def test_map_runs_one_instance_per_item_in_item_order(
    cadenza: CadenzaClient, worker_factory
) -> None:
    orders = [{"id": f"o{i}"} for i in range(7)]
    definition = wf(
        charge_each(max_concurrency=3),
        {
            "step_id": "count",
            "action": "std.echo",
            "dependencies": ["charge_each"],
            "input_mapping": {"n": "steps.charge_each.output.completed"},
        },
    )
    async with worker_factory():
        result = await run(cadenza, definition, {"orders": orders})
    assert result.status == WorkflowState.COMPLETED, result.error
    output = result.steps["charge_each"].output
    assert output["total"] == 7 and output["completed"] == 7 and output["failed"] == []
    assert output["results"] == [{"order_id": f"o{i}", "position": i} for i in range(7)]
    assert [result.steps[f"charge[{i}]"].status for i in range(7)] == [StepStatus.COMPLETED] * 7
    assert result.steps["count"].output == {"n": 7}
    assert result.vars["last_charged"] in {f"o{i}" for i in range(7)}


async def test_map_failures_count_against_the_threshold_and_an_empty_list_completes(
    cadenza: CadenzaClient, worker_factory
) -> None:
    body = {
        "step_id": "try",
        "action": "std.fail",
        "retry_policy": {"max_attempts": 1},
        "input_mapping": {"until_attempt": "item.bad ? 9 : 1"},
    }
    items = [{"bad": False}, {"bad": True}, {"bad": False}, {"bad": False}]

    def mapped(threshold: float) -> dict[str, Any]:
        return wf(
            {
                "step_id": "each",
                "step_type": "map",
                "retry_policy": {"parallel_failure_threshold": threshold},
                "map": {"items": "input.items", "step": body},
            }
        )

    async with worker_factory():
        tolerant = await run(cadenza, mapped(0.75), {"items": items})
        strict = await run(cadenza, mapped(0.8), {"items": items})
        empty = await run(cadenza, mapped(1.0), {"items": []})
        not_a_list = await run(cadenza, mapped(1.0), {"items": {"a": 1}})
    assert tolerant.status == WorkflowState.COMPLETED
    output = tolerant.steps["each"].output
    assert output["completed"] == 3 and output["results"][1] is None
    assert [f["index"] for f in output["failed"]] == [1]
    assert output["failed"][0]["error"]["type"] == "StepFailed"
    assert strict.status == WorkflowState.FAILED
    assert strict.steps["each"].error is not None
    assert strict.steps["each"].error.type == "ParallelThresholdNotMet"
    assert empty.status == WorkflowState.COMPLETED
    assert empty.steps["each"].output == {"results": [], "failed": [], "completed": 0, "total": 0}
    assert not_a_list.status == WorkflowState.FAILED
    error = not_a_list.steps["each"].error
    assert error is not None and error.type == "ExpressionError" and "list" in error.message


async def test_map_with_max_concurrency_one_runs_instances_one_after_another(
    cadenza: CadenzaClient, worker_factory
) -> None:
    body = {"step_id": "nap", "action": "std.sleep", "input_mapping": {"seconds": "0.3"}}
    definition = wf(
        {
            "step_id": "naps",
            "step_type": "map",
            "map": {"items": "[1, 2, 3]", "max_concurrency": 1, "step": body},
        }
    )
    async with worker_factory():
        result = await run(cadenza, definition)
    assert result.status == WorkflowState.COMPLETED
    spans = [
        (result.steps[f"nap[{i}]"].started_at, result.steps[f"nap[{i}]"].ended_at) for i in range(3)
    ]
    for (_, ended), (started, _) in itertools.pairwise(spans):
        assert ended is not None and started is not None and started >= ended


async def test_a_long_map_runs_in_batch_child_workflows(
    cadenza: CadenzaClient, worker_factory
) -> None:
    from workflows.contracts import ExecutionOptions

    orders = [{"id": f"o{i}"} for i in range(60)]
    options = ExecutionOptions(batch_threshold=20, batch_size=25)
    async with worker_factory():
        handle = await cadenza.start(wf(charge_each()), {"orders": orders}, options=options)
        result = await cadenza.result(handle.id)
        children = [
            w.id
            async for w in cadenza.client.list_workflows(
                f"WorkflowType = 'CadenzaBatchRun' AND WorkflowId STARTS_WITH '{handle.id}.'"
            )
        ]
    assert result.status == WorkflowState.COMPLETED, result.error
    output = result.steps["charge_each"].output
    assert output["completed"] == 60
    assert output["results"] == [{"order_id": f"o{i}", "position": i} for i in range(60)]
    assert len(children) == 3  # 25 + 25 + 10 items


def race(*children: dict[str, Any], **completion: Any) -> dict[str, Any]:
    return {
        "step_id": "race",
        "step_type": "parallel",
        "completion": completion,
        "parallel_steps": list(children),
    }


async def test_a_race_takes_the_first_answer_and_cancels_the_slow_child(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        race(sleep("fast", 0.2), sleep("slow", 60), min_successes=1),
        {
            "step_id": "after",
            "action": "std.echo",
            "dependencies": ["race"],
            "input_mapping": {"winner": "steps.race.output.results"},
        },
    )
    async with worker_factory():
        started = asyncio.get_running_loop().time()
        result = await run(cadenza, definition)
        elapsed = asyncio.get_running_loop().time() - started
    assert result.status == WorkflowState.COMPLETED, result.error
    assert elapsed < 30  # the 60 s child did not hold the run
    slow = result.steps["slow"]
    assert slow.status == StepStatus.CANCELLED
    assert slow.error is not None and slow.error.type == "Cancelled"
    assert result.steps["fast"].status == StepStatus.COMPLETED
    output = result.steps["race"].output
    assert list(output["results"]) == ["fast"] and output["cancelled_steps"] == 1
    assert result.steps["after"].output == {"winner": {"fast": {"slept": 0.2}}}
    assert result.compensations == []


async def test_a_two_of_three_join_succeeds_and_one_that_becomes_unreachable_fails_at_once(
    cadenza: CadenzaClient, worker_factory
) -> None:
    def failing(sid: str) -> dict[str, Any]:
        return {"step_id": sid, "action": "std.fail", "retry_policy": {"max_attempts": 1}}

    joined = wf(
        race(sleep("a", 0.1), sleep("b", 0.3), sleep("c", 60), min_successes=2),
    )
    unreachable = wf(
        race(failing("x"), failing("y"), sleep("z", 60), min_successes=2),
    )
    async with worker_factory():
        ok = await run(cadenza, joined)
        started = asyncio.get_running_loop().time()
        failed = await run(cadenza, unreachable)
        elapsed = asyncio.get_running_loop().time() - started
    assert ok.status == WorkflowState.COMPLETED, ok.error
    assert [ok.steps[s].status for s in "abc"] == [
        StepStatus.COMPLETED,
        StepStatus.COMPLETED,
        StepStatus.CANCELLED,
    ]
    assert failed.status == WorkflowState.FAILED
    assert elapsed < 30  # failed at once, not after the 60 s child
    error = failed.steps["race"].error
    assert error is not None and error.type == "ParallelThresholdNotMet"
    assert "min_successes is 2" in error.message
    assert failed.steps["z"].status == StepStatus.CANCELLED


async def test_cancel_remaining_false_lets_the_rest_finish_while_downstream_starts(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        race(sleep("quick", 0.1), sleep("later", 2), min_successes=1, cancel_remaining=False),
        {"step_id": "next", "action": "std.echo", "dependencies": ["race"]},
    )
    async with worker_factory():
        result = await run(cadenza, definition)
    assert result.status == WorkflowState.COMPLETED, result.error
    later, after = result.steps["later"], result.steps["next"]
    assert later.status == StepStatus.COMPLETED
    assert after.ended_at is not None and later.ended_at is not None
    assert after.ended_at < later.ended_at  # downstream did not wait for the slow child


async def test_a_map_race_cancels_the_instances_it_no_longer_needs(
    cadenza: CadenzaClient, worker_factory
) -> None:
    body = {"step_id": "nap", "action": "std.sleep", "input_mapping": {"seconds": "item"}}
    definition = wf(
        {
            "step_id": "naps",
            "step_type": "map",
            "completion": {"min_successes": 2},
            "map": {"items": "[0.1, 60, 0.2, 60]", "step": body},
        }
    )
    async with worker_factory():
        result = await run(cadenza, definition)
    assert result.status == WorkflowState.COMPLETED, result.error
    statuses = [result.steps[f"nap[{i}]"].status for i in range(4)]
    assert statuses == [
        StepStatus.COMPLETED,
        StepStatus.CANCELLED,
        StepStatus.COMPLETED,
        StepStatus.CANCELLED,
    ]
    output = result.steps["naps"].output
    assert output["completed"] == 2 and output["results"][1] is None and output["failed"] == []


async def test_cancel_step_fails_a_running_step_with_step_cancelled_and_the_run_compensates(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        {"step_id": "charge", "action": "std.echo", "rollback_actions": ["std.log"]},
        sleep("stuck", 60, "charge"),
        {"step_id": "ship", "action": "std.echo", "dependencies": ["stuck"]},
    )
    async with worker_factory():
        handle = await start_until_running(cadenza, definition, "stuck")
        done = await cadenza.cancel_step(handle.id, "stuck", by="ops", reason="hung")
        result = await cadenza.result(handle.id)
        with pytest.raises(DecisionRefused, match="has already ended"):
            await cadenza.cancel_step(handle.id, "charge", by="ops")
    assert done.was == "running"
    stuck = result.steps["stuck"]
    assert stuck.status == StepStatus.CANCELLED
    assert stuck.error is not None and stuck.error.type == "StepCancelled"
    assert stuck.error.message == "cancelled by ops: hung"
    assert result.status == WorkflowState.FAILED
    assert [c.step_id for c in result.compensations] == ["charge"]
    assert result.steps["ship"].status == StepStatus.PENDING  # the run failed before it started
    assert any(a.kind == "cancel_step" and a.by == "ops" for a in result.audit)


async def test_a_cancelled_step_is_recovered_by_its_error_handler_and_one_not_started_skipped(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        sleep("stuck", 60, error_handlers=["std.echo"]),
        sleep("later", 0.1, "stuck"),
        {"step_id": "tail", "action": "std.echo", "dependencies": ["later"]},
    )
    async with worker_factory():
        handle = await start_until_running(cadenza, definition, "stuck")
        skipped = await cadenza.cancel_step(handle.id, "later", by="ops")
        with pytest.raises(DecisionRefused, match="no step 'nope'"):
            await cadenza.cancel_step(handle.id, "nope", by="ops")
        # the run may end at once now (the handler and `tail` are local activities)
        await cadenza.cancel_step(handle.id, "stuck", by="ops")
        result = await cadenza.result(handle.id)
    assert skipped.was == "pending"
    assert result.status == WorkflowState.COMPLETED, result.error
    stuck = result.steps["stuck"]
    assert stuck.status == StepStatus.COMPLETED and stuck.recovered_by == "std.echo"
    later = result.steps["later"]
    assert later.status == StepStatus.SKIPPED
    assert later.skip_reason is not None and "cancelled by ops" in later.skip_reason
    assert result.steps["tail"].status == StepStatus.SKIPPED  # all its dependencies skipped


async def test_cancelling_a_container_cancels_everything_in_it(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        {
            "step_id": "box",
            "step_type": "parallel",
            "parallel_steps": [sleep("one", 60), sleep("two", 60), sleep("three", 0.1, "one")],
            "retry_policy": {"continue_on_failure": True},
        },
        {"step_id": "after", "action": "std.echo", "dependencies": ["box"]},
    )
    async with worker_factory():
        handle = await start_until_running(cadenza, definition, "one")
        await cadenza.cancel_step(handle.id, "box", by="ops", reason="region")
        result = await cadenza.result(handle.id)
    assert result.status == WorkflowState.COMPLETED, result.error  # continue_on_failure
    assert result.steps["box"].status == StepStatus.CANCELLED
    assert [result.steps[s].status for s in ("one", "two", "three")] == [StepStatus.CANCELLED] * 3
    assert result.steps["after"].status == StepStatus.COMPLETED


async def test_a_step_in_a_batch_child_workflow_is_refused_with_the_container_to_cancel(
    cadenza: CadenzaClient, worker_factory
) -> None:
    from workflows.contracts import ExecutionOptions

    body = {"step_id": "nap", "action": "std.sleep", "input_mapping": {"seconds": "1"}}
    definition = wf(
        {"step_id": "naps", "step_type": "map", "map": {"items": "[1, 2, 3]", "step": body}}
    )
    options = ExecutionOptions(batch_threshold=2, batch_size=2)
    async with worker_factory():
        handle = await cadenza.start(definition, options=options)
        await status_when(
            cadenza,
            handle.id,
            lambda s: s.steps["naps"].status == StepStatus.RUNNING and "nap[1]" in s.steps,
            "the map running its batches",
        )
        with pytest.raises(DecisionRefused, match="batch child workflow of 'naps'"):
            await cadenza.cancel_step(handle.id, "nap[1]", by="ops")
        result = await cadenza.result(handle.id)
    assert result.status == WorkflowState.COMPLETED


async def test_cancel_step_as_a_signal_audits_an_invalid_one_and_applies_a_valid_one(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(sleep("stuck", 60, retry_policy={"continue_on_failure": True}))
    async with worker_factory():
        handle = await start_until_running(cadenza, definition, "stuck")
        raw = cadenza.client.get_workflow_handle(handle.id)
        await raw.signal("cancel_step", {"step_id": "stuck"})
        await raw.signal("cancel_step", {"step_id": "nope", "by": "ops"})
        await raw.signal("cancel_step", {"step_id": "stuck", "by": "ops", "reason": "ui"})
        result = await cadenza.result(handle.id)
    ignored = [a.detail for a in result.audit if a.kind == "ignored"]
    assert ignored == [
        "cancel_step signal ignored: by: Field required (expected {step_id, by, reason?})",
        "cancel_step signal ignored: no step 'nope' in this run",
    ]
    stuck = result.steps["stuck"]
    assert stuck.status == StepStatus.CANCELLED
    assert stuck.error is not None and stuck.error.message == "cancelled by ops: ui"
    assert result.status == WorkflowState.COMPLETED  # continue_on_failure
