"""Signed decisions on agentic tasks, on the real server: with trusted keys on the workers, the
`human_approval` of a task refuses unsigned, unknown-key, forged, other-run, expired and reused
decisions (updates refused, signals audited) and accepts a signed one, whose verified key the
task's audit trail shows."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from activities.registry import ActionRegistry
from tests.support.tasks import BOUND, analysis, echo, script
from worker.approval_keys import new_pair, sign
from worker.client import CadenzaClient, DecisionRefused
from worker.settings import Settings
from worker.wiring import running_worker
from workflows.contracts import DecisionInput
from workflows.orchestrator import APPROVAL_NODE, TaskInput, TaskResult

SIGNING, TRUSTED = new_pair("k1")
FORGER, _ = new_pair("k1")  # same id, another key: a forgery
STRANGER, _ = new_pair("k9")  # a key the workers do not trust


def clients(client: Client, queue: str) -> tuple[CadenzaClient, CadenzaClient]:
    """(a client that signs with the trusted key, one that does not sign)."""
    signed, unsigned = CadenzaClient(client, queue), CadenzaClient(client, queue)
    signed.signing_key, unsigned.signing_key = SIGNING, ""
    return signed, unsigned


async def waiting(cadenza: CadenzaClient, task_id: str) -> TaskResult:
    """The task's state once it waits for its human_approval."""
    async with asyncio.timeout(BOUND):
        while True:
            state = await cadenza.task_status(task_id)
            if state.status == "waiting":
                return state
            await asyncio.sleep(0.05)


def sensitive(folder: Path, name: str) -> TaskInput:
    """A task the model finds sensitive (two echo subtasks), decided by ana."""
    model = script(
        folder,
        name,
        [
            analysis(
                dependencies="independent", sensitive=True, subtasks=[echo(pay=10), echo(pay=20)]
            )
        ],
    )
    return TaskInput(task="Pay an invoice", tools=["std.echo"], model=model, approvers=["ana"])


async def test_only_a_decision_signed_by_a_trusted_key_decides_a_task(
    client: Client, registry: ActionRegistry, task_queue: str, tmp_path: Path
) -> None:
    signed, unsigned = clients(client, task_queue)
    settings = Settings(approval_keys=TRUSTED, llm_scripts=tmp_path)
    # no cache: every workflow task replays the history, the trusted keys from its marker
    async with running_worker(
        client, settings, registry, task_queue=task_queue, max_cached_workflows=0
    ):
        task_id = (await signed.start_task(sensitive(tmp_path, "pay"))).id
        await waiting(signed, task_id)
        with pytest.raises(DecisionRefused, match="accepts signed decisions only"):
            await unsigned.approve(task_id, APPROVAL_NODE, "ana", "ok")
        plain = DecisionInput(step_id=APPROVAL_NODE, by="ana", comment="ok")
        cases = {
            "unknown key": sign(STRANGER, task_id, plain, "approve"),
            "forged": sign(FORGER, task_id, plain, "approve"),
            "another run": sign(SIGNING, "some-other-task", plain, "approve"),
            "expired": sign(SIGNING, task_id, plain, "approve", timedelta(seconds=-5)),
            "rejection as approval": sign(SIGNING, task_id, plain, "reject"),
            "another comment": sign(SIGNING, task_id, plain, "approve").model_copy(
                update={"comment": "ok, and pay twice"}
            ),
        }
        reasons = {what: await refused(signed, task_id, r) for what, r in cases.items()}
        assert "'k9' is not trusted" in reasons["unknown key"]
        assert "expired" in reasons["expired"]
        for what in ("forged", "another run", "rejection as approval", "another comment"):
            assert "does not match" in reasons[what], what
        still = await signed.task_status(task_id)
        assert still.status == "waiting" and still.approvals == []
        once = sign(SIGNING, task_id, plain, "approve")
        decided = await send(signed, task_id, once)
        assert decided["outcome"] == "approved"
        assert "not waiting" in await refused(signed, task_id, once)  # the same one again
        result = await asyncio.wait_for(signed.task_result(task_id), BOUND)
    assert result.status == "completed", result.error
    assert result.route == ["approval", "parallel", "complete"]
    assert [(a.kind, a.by, a.verified_key) for a in result.approvals] == [("approve", "ana", "k1")]


async def test_signals_are_verified_too_and_refused_ones_audited(
    client: Client, registry: ActionRegistry, task_queue: str, tmp_path: Path
) -> None:
    signed, _ = clients(client, task_queue)
    settings = Settings(approval_keys=TRUSTED, llm_scripts=tmp_path)
    async with running_worker(client, settings, registry, task_queue=task_queue):
        task_id = (await signed.start_task(sensitive(tmp_path, "sig"))).id
        await waiting(signed, task_id)
        handle = client.get_workflow_handle(task_id)
        await handle.signal("approve", {"step_id": APPROVAL_NODE, "by": "ana"})
        plain = DecisionInput(step_id=APPROVAL_NODE, by="ana", comment="no")
        expired = sign(SIGNING, task_id, plain, "reject", timedelta(seconds=-5))
        await handle.signal("reject", expired.model_dump(mode="json"))
        forged = sign(FORGER, task_id, plain, "reject")
        await handle.signal("reject", forged.model_dump(mode="json"))
        rejection = sign(SIGNING, task_id, plain, "reject")
        await handle.signal("reject", rejection.model_dump(mode="json"))
        result = await asyncio.wait_for(signed.task_result(task_id), BOUND)
    assert result.status == "failed"
    assert result.error is not None and result.error.type == "ApprovalRejected"
    audit = [(a.kind, a.verified_key) for a in result.approvals]
    assert audit == [("ignored", None), ("ignored", None), ("ignored", None), ("reject", "k1")]
    details = [a.detail for a in result.approvals]
    assert "signed decisions only" in details[0]
    assert "expired" in details[1]
    assert "does not match" in details[2]
    assert result.error.message == "no"


async def test_without_keys_on_the_workers_by_is_what_the_caller_claims(
    client: Client, registry: ActionRegistry, task_queue: str, tmp_path: Path
) -> None:
    _, unsigned = clients(client, task_queue)
    settings = Settings(approval_keys="", llm_scripts=tmp_path)
    async with running_worker(client, settings, registry, task_queue=task_queue):
        task_id = (await unsigned.start_task(sensitive(tmp_path, "plain"))).id
        await waiting(unsigned, task_id)
        await unsigned.approve(task_id, APPROVAL_NODE, "ana", "ok")
        result = await asyncio.wait_for(unsigned.task_result(task_id), BOUND)
    assert result.status == "completed", result.error
    assert [(a.kind, a.by, a.verified_key) for a in result.approvals] == [("approve", "ana", None)]


async def send(cadenza: CadenzaClient, task_id: str, request: DecisionInput) -> Any:
    """Send `request` as it is (signed or not) through the `approve` update."""
    handle = cadenza.client.get_workflow_handle(task_id)
    return await handle.execute_update("approve", request, result_type=dict)


async def refused(cadenza: CadenzaClient, task_id: str, request: DecisionInput) -> str:
    """The task's reason for refusing `request` (fails when it is accepted)."""
    with pytest.raises(WorkflowUpdateFailedError) as refusal:
        await send(cadenza, task_id, request)
    cause = refusal.value.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause)
