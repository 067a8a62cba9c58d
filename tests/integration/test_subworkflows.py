"""`workflow` steps (sub-workflows) on the real server: the child's result as the step's output,
recursion bounded by `max_depth`, failure and cancellation across the parent-child link,
children that outlive their parent, and files inlined by the loader."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from tests.support.flows import FAST, run, sleep, status_when
from worker.client import CadenzaClient, DefinitionRejected
from worker.definition_files import load_definition
from workflows.contracts import SA_WORKFLOW_ID, StepStatus, WorkflowState
from workflows.dsl.loader import DocumentError


def call(sid: str, name: str, *deps: str, **extra: Any) -> dict[str, Any]:
    spec = {"name": name, **extra.pop("workflow", {})}
    return {
        "step_id": sid,
        "step_type": "workflow",
        "dependencies": list(deps),
        "workflow": spec,
        **extra,
    }


COUNTDOWN = {
    "retry_policy": FAST,
    "steps": [
        {"step_id": "here", "action": "std.echo", "input_mapping": {"n": "input.n"}},
        call(
            "deeper",
            "countdown",
            "here",
            conditions=[{"when": "input.n > 1"}],
            input_mapping={"n": "input.n - 1"},
        ),
    ],
}


def document(*steps: dict[str, Any], **definitions: Any) -> dict[str, Any]:
    return {
        "workflow_id": "parent",
        "retry_policy": FAST,
        "definitions": definitions,
        "steps": list(steps),
    }


async def test_a_child_runs_by_name_and_its_result_is_the_step_output(
    cadenza: CadenzaClient, worker_factory
) -> None:
    refund = {
        "global_variables": {"currency": "EUR"},
        "steps": [
            {
                "step_id": "pay_back",
                "action": "std.echo",
                "input_mapping": {"order": "input.order_id"},
                "output_mapping": {"refunded": "result.order"},
            }
        ],
    }
    definition = document(
        call("refund_order", "refund", input_mapping={"order_id": "input.order_id"}),
        {
            "step_id": "after",
            "action": "std.echo",
            "dependencies": ["refund_order"],
            "input_mapping": {"got": "steps.refund_order.output.vars.refunded"},
        },
        refund=refund,
    )
    async with worker_factory():
        handle = await cadenza.start(definition, {"order_id": "o-7"})
        result = await cadenza.result(handle.id)
    assert result.status == WorkflowState.COMPLETED, result.error
    child = result.steps["refund_order"].output
    assert child["status"] == "completed" and child["workflow_id"] == "refund"
    assert child["vars"] == {"currency": "EUR", "refunded": "o-7"}
    assert child["steps"]["pay_back"]["output"] == {"order": "o-7"}
    assert result.steps["after"].output == {"got": "o-7"}
    # a real child workflow: linked to its parent, with cadenza's search attributes
    described = await cadenza.client.get_workflow_handle(child["execution_id"]).describe()
    assert described.parent_id == handle.id
    assert described.typed_search_attributes.get(SA_WORKFLOW_ID) == "refund"


async def test_recursion_three_deep_and_a_runaway_stopped_by_max_depth(
    cadenza: CadenzaClient, worker_factory
) -> None:
    three = document(call("top", "countdown", input_mapping={"n": "3"}), countdown=COUNTDOWN)
    runaway = dict(COUNTDOWN)
    runaway["steps"] = [
        {"step_id": "here", "action": "std.echo"},
        call("deeper", "runaway", "here", max_depth=3),
    ]
    forever = document(call("top", "runaway", max_depth=3), runaway=runaway)
    async with worker_factory():
        done = await run(cadenza, three)
        stopped = await run(cadenza, forever)
    assert done.status == WorkflowState.COMPLETED, done.error
    level = done.steps["top"].output
    ns = []
    while True:
        ns.append(level["steps"]["here"]["output"]["n"])
        deeper = level["steps"]["deeper"]
        if deeper["status"] == "skipped":
            break
        level = deeper["output"]
    assert ns == [3, 2, 1]
    assert stopped.status == WorkflowState.FAILED
    error = stopped.steps["top"].error
    assert error is not None and error.type == "RecursionLimitExceeded"
    assert "max_depth is 3" in error.message


async def test_a_child_failure_fails_the_step_and_compensates_the_parent(
    cadenza: CadenzaClient, worker_factory
) -> None:
    failing = {
        "retry_policy": {**FAST, "max_attempts": 1},
        "steps": [
            {"step_id": "boom", "action": "std.fail", "input_mapping": {"message": "'no stock'"}}
        ],
    }
    definition = document(
        {"step_id": "charge", "action": "std.echo", "rollback_actions": ["std.echo"]},
        call("fulfil", "fulfil", "charge"),
        fulfil=failing,
    )
    async with worker_factory():
        result = await run(cadenza, definition)
    assert result.status == WorkflowState.FAILED
    error = result.steps["fulfil"].error
    assert error is not None and error.type == "StepFailed"
    assert "no stock" in error.message and "'boom'" in error.message
    assert [(c.step_id, c.status) for c in result.compensations] == [("charge", "completed")]


async def test_a_child_that_does_not_wait_outlives_its_parent(
    cadenza: CadenzaClient, worker_factory
) -> None:
    slow = {"steps": [sleep("nap", 2)]}
    definition = document(call("spawn", "slow", workflow={"wait": False}), slow=slow)
    async with worker_factory():
        result = await run(cadenza, definition)
        assert result.status == WorkflowState.COMPLETED
        child_id = result.steps["spawn"].output["execution_id"]
        child = cadenza.client.get_workflow_handle(child_id)
        assert (await child.describe()).status == WorkflowExecutionStatus.RUNNING
        child_result = await cadenza.result(child_id)
    assert child_result.status == WorkflowState.COMPLETED
    assert child_result.steps["nap"].output == {"slept": 2}


async def test_cancelling_the_parent_cancels_the_child(
    cadenza: CadenzaClient, worker_factory
) -> None:
    slow = {"steps": [sleep("nap", 60)]}
    definition = document(call("wait_for_it", "slow"), slow=slow)
    async with worker_factory():
        handle = await cadenza.start(definition)
        state = await status_when(
            cadenza,
            handle.id,
            lambda s: (s.steps["wait_for_it"].output or {}).get("execution_id") is not None,
            "the child started",
        )
        child_id = state.steps["wait_for_it"].output["execution_id"]
        await status_when(
            cadenza, child_id, lambda s: s.steps["nap"].status == StepStatus.RUNNING, "nap"
        )
        await cadenza.cancel(handle.id)
        child = cadenza.client.get_workflow_handle(child_id)
        for _ in range(200):
            if (await child.describe()).status != WorkflowExecutionStatus.RUNNING:
                break
            await asyncio.sleep(0.05)
        assert (await child.describe()).status == WorkflowExecutionStatus.CANCELED


def test_unknown_names_are_refused_with_the_known_ones() -> None:
    from workflows.dsl.validate import validate_definition

    report = validate_definition(document(call("x", "refnd"), refund=COUNTDOWN))
    assert [str(d) for d in report.errors] == [
        "steps[0].workflow.name: unknown_definition: no definition 'refnd' in `definitions`; "
        "did you mean 'refund'?",
        "definitions.refund.steps[1].workflow.name: unknown_definition: no definition "
        "'countdown' in `definitions` (defined: refund)",
    ]


def test_files_are_inlined_and_their_problems_located(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "main.yaml").write_text(
        "workflow_id: main\nsteps:\n"
        "  - {step_id: a, step_type: workflow, workflow: {file: flows/refund.yaml}}\n"
    )
    (tmp_path / "flows" / "refund.yaml").write_text(
        "workflow_id: refund\nsteps:\n  - {step_id: r, action: std.ech}\n"
    )
    data = load_definition(tmp_path / "main.yaml")
    assert data["steps"][0]["workflow"] == {"name": "refund"}
    assert data["definitions"]["refund"]["steps"][0]["action"] == "std.ech"
    with pytest.raises(DefinitionRejected) as refused:
        asyncio.run(CadenzaClient(None, "q").start(data, known_actions=["std.echo"]))  # type: ignore[arg-type]
    assert "definitions.refund.steps[0].action: unknown_action" in str(refused.value)
    (tmp_path / "flows" / "refund.yaml").unlink()
    with pytest.raises(DocumentError, match=r"steps\[0\].workflow.file: no file 'flows/refund"):
        load_definition(tmp_path / "main.yaml")
