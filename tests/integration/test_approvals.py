"""Approval steps on the real dev server: decisions, quorum, refusals, signals, audit."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from typing import Any

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client

from tests.support.servers import file_server
from worker.client import CadenzaClient, DecisionRefused
from worker.services.dev_server import temporal_binary
from workflows.dsl.models import ExecutionResult, StepStatus, WorkflowState
from workflows.engine.visibility import METADATA_QUERY


def approval(sid: str, *deps: str, **spec: Any) -> dict[str, Any]:
    return {
        "step_id": sid,
        "step_type": "approval",
        "dependencies": list(deps),
        "timeout": 3600,
        "approval": spec,
    }


def wf(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"workflow_id": "approvals", "steps": list(steps)}


async def waiting(cadenza: CadenzaClient, run_id: str, *steps: str) -> ExecutionResult:
    for _ in range(200):
        state = await cadenza.status(run_id)
        if all(s in state.pending_approvals for s in steps):
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"{steps} never waited: {state.steps}")


async def test_approve_then_the_run_goes_on_with_the_decision(
    cadenza: CadenzaClient, worker_factory, client: Client
) -> None:
    definition = wf(
        {"step_id": "prepare", "action": "std.echo"},
        approval("sign_off", "prepare", approvers=["ann", "bob"]),
        {
            "step_id": "ship",
            "action": "std.echo",
            "dependencies": ["sign_off"],
            "input_mapping": {"by": "steps.sign_off.output.decided_by[0]"},
        },
    )
    async with worker_factory():
        handle = await cadenza.start(definition)
        state = await waiting(cadenza, handle.id, "sign_off")
        assert state.steps["sign_off"].status == StepStatus.WAITING
        description = await client.get_workflow_handle(handle.id).describe()
        attrs = {k.name: v for k, v in description.typed_search_attributes}  # type: ignore[attr-defined]
        assert attrs["CadenzaState"] == "waiting"
        assert [eid for eid, _ in await cadenza.pending()].count(handle.id) == 1
        decision = await cadenza.approve(handle.id, "sign_off", "bob", "looks right")
        assert (decision.outcome, decision.approvals, decision.required) == ("approved", 1, 1)
        result = await cadenza.result(handle.id)
    assert result.status == WorkflowState.COMPLETED, result.error
    output = result.steps["sign_off"].output
    assert output["decision"] == "approved" and output["decided_by"] == ["bob"]
    assert output["comment"] == "looks right"
    assert result.steps["ship"].output == {"by": "bob"}
    assert [(a.kind, a.by, a.step_id) for a in result.approvals] == [("approve", "bob", "sign_off")]
    assert result.pending_approvals == {}


async def test_reject_fails_the_step_and_compensates(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        {"step_id": "reserve", "action": "std.echo", "rollback_actions": ["std.log"]},
        approval("sign_off", "reserve"),
    )
    async with worker_factory():
        handle = await cadenza.start(definition)
        await waiting(cadenza, handle.id, "sign_off")
        decision = await cadenza.reject(handle.id, "sign_off", "carol", "budget exceeded")
        assert decision.outcome == "rejected"
        result = await cadenza.result(handle.id)
    assert result.status == WorkflowState.FAILED
    error = result.steps["sign_off"].error
    assert error is not None and error.type == "ApprovalRejected"
    assert "carol" in error.message and "budget exceeded" in error.message
    assert [c.step_id for c in result.compensations] == ["reserve"]


async def test_quorum_of_two(cadenza: CadenzaClient, worker_factory) -> None:
    definition = wf(approval("board", approvers=["ann", "bob", "cid"], required_approvals=2))
    async with worker_factory():
        handle = await cadenza.start(definition)
        await waiting(cadenza, handle.id, "board")
        first = await cadenza.approve(handle.id, "board", "ann")
        assert (first.outcome, first.approvals) == ("pending", 1)
        assert (await cadenza.status(handle.id)).steps["board"].status == StepStatus.WAITING
        second = await cadenza.approve(handle.id, "board", "cid")
        assert second.outcome == "approved"
        result = await cadenza.result(handle.id)
    assert result.status == WorkflowState.COMPLETED
    assert result.steps["board"].output["decided_by"] == ["ann", "cid"]


async def test_every_refusal_rule_of_the_update_validator(
    cadenza: CadenzaClient, worker_factory, client: Client
) -> None:
    definition = wf(
        approval("first", approvers=["ann", "bob"], required_approvals=2),
        approval("later", "first"),
    )
    async with worker_factory():
        handle = await cadenza.start(definition)
        await waiting(cadenza, handle.id, "first")
        refusals = {
            "unknown step": ("nope", "ann", "no step 'nope' in this run"),
            "not waiting": ("later", "ann", "'later' is not waiting for a decision"),
            "not an approver": ("first", "mallory", "'mallory' may not decide step 'first'"),
        }
        for name, (step, by, fragment) in refusals.items():
            with pytest.raises(DecisionRefused) as info:
                await cadenza.approve(handle.id, step, by)
            assert fragment in str(info.value), name
        await cadenza.approve(handle.id, "first", "ann")
        with pytest.raises(DecisionRefused) as info:
            await cadenza.reject(handle.id, "first", "ann")
        assert "'ann' has already decided step 'first'" in str(info.value)
        history = await client.get_workflow_handle(handle.id).fetch_history()
        # refused updates leave nothing in history; the accepted one does
        accepted = [
            e
            for e in history.events
            if e.HasField("workflow_execution_update_accepted_event_attributes")
        ]
        assert len(accepted) == 1
        await cadenza.cancel(handle.id)


async def test_signal_from_the_temporal_cli_approves_and_bad_signals_are_audited(
    cadenza: CadenzaClient, worker_factory, temporal_address: str
) -> None:
    definition = wf(approval("sign_off", approvers=["ann"]))
    async with worker_factory():
        handle = await cadenza.start(definition)
        await waiting(cadenza, handle.id, "sign_off")

        def signal(payload: object) -> None:
            subprocess.run(
                [
                    temporal_binary(),
                    "workflow",
                    "signal",
                    "--address",
                    temporal_address,
                    "--workflow-id",
                    handle.id,
                    "--name",
                    "approve",
                    "--input",
                    json.dumps(payload),
                ],
                check=True,
                capture_output=True,
                timeout=30,
                env=dict(os.environ),
            )

        signal({"step": "sign_off"})  # malformed
        signal({"step_id": "sign_off", "by": "mallory"})  # not an approver
        signal({"step_id": "sign_off", "by": "ann", "comment": "from the web ui"})
        result = await cadenza.result(handle.id)
    assert result.status == WorkflowState.COMPLETED
    kinds = [(a.kind, a.by) for a in result.approvals]
    assert kinds == [("ignored", ""), ("ignored", "mallory"), ("approve", "ann")]
    assert "step_id: Field required" in result.approvals[0].detail
    assert "may not decide" in result.approvals[1].detail
    assert result.steps["sign_off"].output["comment"] == "from the web ui"


async def test_two_approvals_pending_at_once_are_decided_by_step_id(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        {
            "step_id": "both",
            "step_type": "parallel",
            "parallel_steps": [approval("legal"), approval("finance")],
        }
    )
    async with worker_factory():
        handle = await cadenza.start(definition)
        state = await waiting(cadenza, handle.id, "legal", "finance")
        assert set(state.pending_approvals) == {"legal", "finance"}
        await cadenza.approve(handle.id, "finance", "fay")
        state = await cadenza.status(handle.id)
        assert set(state.pending_approvals) == {"legal"}
        await cadenza.approve(handle.id, "legal", "lee")
        result = await cadenza.result(handle.id)
    assert result.status == WorkflowState.COMPLETED
    assert result.steps["legal"].output["decided_by"] == ["lee"]
    assert result.steps["finance"].output["decided_by"] == ["fay"]


async def test_waiting_approval_survives_worker_and_server_restarts(registry, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """File persistence: decided after a worker restart and a server restart, the run completes."""
    from worker.settings import Settings
    from worker.wiring import running_worker

    queue = f"restart-{os.getpid()}"
    definition = wf({"step_id": "before", "action": "std.echo"}, approval("sign_off", "before"))
    with file_server(tmp_path) as server:
        client = await server.client()
        async with running_worker(client, Settings(), registry, task_queue=queue):
            cadenza = CadenzaClient(client, queue)
            handle = await cadenza.start(definition)
            await waiting(cadenza, handle.id, "sign_off")
        server.restart()  # the worker is gone too
        client = await server.client()
        async with running_worker(client, Settings(), registry, task_queue=queue):
            cadenza = CadenzaClient(client, queue)
            state = await waiting(cadenza, handle.id, "sign_off")
            assert state.steps["before"].status == StepStatus.COMPLETED
            await cadenza.approve(handle.id, "sign_off", "ann", "after two restarts")
            result = await asyncio.wait_for(cadenza.result(handle.id), timeout=60)
    assert result.status == WorkflowState.COMPLETED, result.error
    assert result.steps["sign_off"].output["comment"] == "after two restarts"


async def test_the_web_ui_reads_current_details_rendered_when_it_asks(
    cadenza: CadenzaClient, worker_factory, client: Client
) -> None:
    """The details are rendered by the metadata query the Web UI sends, from the state of
    that moment: what waits and the command that decides it, then the run's end."""
    definition = wf(
        {"step_id": "prepare", "action": "std.echo"},
        approval("sign_off", "prepare", approvers=["ann"]),
    )
    async with worker_factory():
        handle = await cadenza.start(definition)
        await waiting(cadenza, handle.id, "sign_off")
        temporal = client.get_workflow_handle(handle.id)
        waits = await temporal.query(METADATA_QUERY, result_type=WorkflowMetadata)
        assert "**approvals** v1\\.0: running" in waits.current_details  # Markdown-escaped
        assert "steps: 1/2 completed, 1 waiting" in waits.current_details
        assert f"cadenza approve {handle.id} sign_off --by ann" in waits.current_details
        await cadenza.approve(handle.id, "sign_off", "ann")
        await cadenza.result(handle.id)
        done = await temporal.query(METADATA_QUERY, result_type=WorkflowMetadata)
    assert "**approvals** v1\\.0: completed" in done.current_details
    assert "steps: 2/2 completed" in done.current_details and "approve" not in done.current_details
