"""Signed approval decisions on the real server: with trusted keys on the workers, unsigned,
unknown-key, wrong-run, expired and replayed decisions are refused and signed ones accepted
with the verified key in the audit trail; approver names compare as one person across case,
spaces and Unicode forms."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from activities.registry import ActionRegistry
from tests.support.flows import status_when
from tests.support.processes import cadenza as cli
from worker.approval_keys import new_pair, sign
from worker.client import CadenzaClient, DecisionRefused
from worker.settings import Settings
from worker.wiring import running_worker
from workflows.contracts import DecisionInput, StepStatus, WorkflowState
from workflows.engine import AdvancedWorkflowRun

SIGNING, TRUSTED = new_pair("k1")
OTHER_SIGNING, _ = new_pair("k1")  # same id, another key: a forgery


def approval(**spec: Any) -> dict[str, Any]:
    return {
        "workflow_id": "signed",
        "timeout": 600,
        "steps": [
            {"step_id": "sign_off", "step_type": "approval", "approval": spec},
            {"step_id": "after", "action": "std.echo", "dependencies": ["sign_off"]},
        ],
    }


async def waiting(cadenza: CadenzaClient, run_id: str) -> None:
    await status_when(
        cadenza,
        run_id,
        lambda s: "sign_off" in s.steps and s.steps["sign_off"].status == StepStatus.WAITING,
        "waiting",
    )


async def send(cadenza: CadenzaClient, run_id: str, request: DecisionInput) -> Any:
    handle = cadenza.client.get_workflow_handle_for(AdvancedWorkflowRun.run, run_id)
    return await handle.execute_update(AdvancedWorkflowRun.approve, request)


async def refusal(cadenza: CadenzaClient, run_id: str, request: DecisionInput) -> str:
    """The run's reason for refusing `request` (fails when it is accepted)."""
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await send(cadenza, run_id, request)
    cause = refused.value.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause)


async def test_only_decisions_signed_by_a_trusted_key_are_accepted(
    client: Client, registry: ActionRegistry, task_queue: str
) -> None:
    settings = Settings(approval_keys=TRUSTED)
    unsigned = CadenzaClient(client, task_queue)
    unsigned.signing_key = ""
    signed = CadenzaClient(client, task_queue)
    signed.signing_key = SIGNING
    async with running_worker(client, settings, registry, task_queue=task_queue):
        run_id = (await signed.start(approval(approvers=["maria"]))).id
        await waiting(signed, run_id)
        with pytest.raises(DecisionRefused, match="accepts signed decisions only"):
            await unsigned.approve(run_id, "sign_off", "maria")
        plain = DecisionInput(step_id="sign_off", by="maria", comment="ok")
        cases = {
            "forged": sign(OTHER_SIGNING, run_id, plain, "approve"),
            "another run": sign(SIGNING, "some-other-run", plain, "approve"),
            "expired": sign(SIGNING, run_id, plain, "approve", timedelta(seconds=-5)),
            "rejection as approval": sign(SIGNING, run_id, plain, "reject"),
        }
        reasons = {what: await refusal(signed, run_id, r) for what, r in cases.items()}
        assert "does not match" in reasons["forged"]
        assert "does not match" in reasons["another run"]
        assert "expired" in reasons["expired"]
        assert "does not match" in reasons["rejection as approval"]
        decided = await signed.approve(run_id, "sign_off", "maria", "ok")
        assert decided.outcome == "approved"
        result = await signed.result(run_id)
    assert result.status == WorkflowState.COMPLETED
    decisions = [a for a in result.approvals if a.kind == "approve"]
    assert [(a.by, a.verified_key) for a in decisions] == [("maria", "k1")]


async def test_a_signed_decision_cannot_be_used_twice_nor_sent_unsigned_as_a_signal(
    client: Client, registry: ActionRegistry, task_queue: str
) -> None:
    settings = Settings(approval_keys=TRUSTED)
    cadenza = CadenzaClient(client, task_queue)
    cadenza.signing_key = SIGNING
    async with running_worker(client, settings, registry, task_queue=task_queue):
        run_id = (await cadenza.start(approval(required_approvals=2))).id
        await waiting(cadenza, run_id)
        handle = client.get_workflow_handle(run_id)
        await handle.signal("approve", {"step_id": "sign_off", "by": "mallory"})
        once = sign(SIGNING, run_id, DecisionInput(step_id="sign_off", by="ann"), "approve")
        await send(cadenza, run_id, once)
        assert "already decided" in await refusal(cadenza, run_id, once)
        state = await cadenza.status(run_id)
        ignored = [a for a in state.approvals if a.kind == "ignored"]
        assert len(ignored) == 1 and "signed decisions only" in ignored[0].detail
        assert state.pending_approvals["sign_off"].approvals == 1
        await cadenza.cancel(run_id)


async def test_approver_names_compare_as_one_person(cadenza: CadenzaClient, worker_factory) -> None:
    cadenza.signing_key = ""
    async with worker_factory():
        run_id = (
            await cadenza.start(approval(approvers=["alice", "bob"], required_approvals=2))
        ).id
        await waiting(cadenza, run_id)
        await cadenza.approve(run_id, "sign_off", "Alice ")
        for same in ("ALICE", "\uff41lice"):  # upper case, a full-width letter
            with pytest.raises(DecisionRefused, match="already decided"):
                await cadenza.approve(run_id, "sign_off", same)
        await cadenza.approve(run_id, "sign_off", "bob")
        result = await cadenza.result(run_id)
    assert result.status == WorkflowState.COMPLETED


def test_approval_keys_prints_a_pair() -> None:
    printed = cli("approval-keys", "ops")
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert lines[0].startswith("CADENZA_APPROVAL_SIGNING_KEY=ops:")
    assert lines[1].startswith("CADENZA_APPROVAL_KEYS=ops:")
