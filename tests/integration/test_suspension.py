"""Suspension instead of failure (`retry_policy.on_exhausted: suspend`) on the real server: a
step that used up its retries makes the run wait until an operator retries, skips or fails it;
decisions on steps that are not suspended are refused; a suspended run survives a worker and a
server restart."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.flows import FAST, status_when
from tests.support.processes import cadenza as cli, spawn_worker
from tests.support.servers import file_server
from worker.client import CadenzaClient, DecisionRefused
from workflows.contracts import ExecutionResult, StepStatus, WorkflowState


def flaky_run(ledger: Path, **extra: Any) -> dict[str, Any]:
    """charge (compensable) -> sync (test.flaky, suspends) -> notify (reads sync's output)."""
    return {
        "workflow_id": "suspension",
        "retry_policy": {**FAST, "max_attempts": 2, "on_exhausted": "suspend"},
        "steps": [
            {"step_id": "charge", "action": "std.echo", "rollback_actions": ["std.echo"]},
            {
                "step_id": "sync",
                "action": "test.flaky",
                "dependencies": ["charge"],
                "input_mapping": {"ledger": f"'{ledger}'", "fixed": f"'{ledger}.fixed'"},
            },
            {
                "step_id": "notify",
                "action": "std.echo",
                "dependencies": ["sync"],
                "input_mapping": {"fixed": "steps.sync.output.fixed"},
            },
        ],
        **extra,
    }


def suspended(state: ExecutionResult) -> bool:
    return state.status == WorkflowState.SUSPENDED and "sync" in state.suspended


async def start_suspended(cadenza: CadenzaClient, ledger: Path) -> str:
    handle = await cadenza.start(flaky_run(ledger))
    state = await status_when(cadenza, handle.id, suspended, "sync suspended")
    assert state.steps["sync"].status == StepStatus.SUSPENDED
    error = state.suspended["sync"].error
    assert error.type == "StepFailed" and "dependency is broken" in error.message
    return handle.id


async def test_a_suspended_step_retried_after_the_fix_completes_the_run(
    cadenza: CadenzaClient, worker_factory, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    async with worker_factory():
        run_id = await start_suspended(cadenza, ledger)
        waiting: list[Any] = []
        await cadenza.pending(suspended=waiting)
        assert [(eid, x.step_id) for eid, x in waiting if eid == run_id] == [(run_id, "sync")]
        with pytest.raises(DecisionRefused, match=r"'charge' is not suspended \(it is completed\)"):
            await cadenza.retry_step(run_id, "charge", "ops")
        Path(f"{ledger}.fixed").touch()
        decided = await cadenza.retry_step(run_id, "sync", "ops")
        assert decided.decision == "retry"
        result = await cadenza.result(run_id)
    assert result.status == WorkflowState.COMPLETED, result.error
    assert result.steps["sync"].output == {"fixed": True, "attempt": 1}
    assert result.steps["notify"].output == {"fixed": True}
    assert ledger.read_text().split() == ["sync", "call"] * 3  # 2 failed, 1 after the fix
    assert [(a.kind, a.by) for a in result.audit] == [("retry_step", "ops")]
    assert result.suspended == {}


async def test_a_skipped_step_needs_the_output_later_steps_read(
    cadenza: CadenzaClient, worker_factory, tmp_path: Path
) -> None:
    async with worker_factory():
        run_id = await start_suspended(cadenza, tmp_path / "ledger")
        with pytest.raises(DecisionRefused, match="later expressions read fixed"):
            await cadenza.skip_step(run_id, "sync", "ops", {"other": 1})
        await cadenza.skip_step(run_id, "sync", "ops", {"fixed": "by hand"})
        result = await cadenza.result(run_id)
    assert result.status == WorkflowState.COMPLETED
    sync = result.steps["sync"]
    assert sync.status == StepStatus.COMPLETED and sync.output == {"fixed": "by hand"}
    assert sync.recovered_by == "skip_step by ops"
    assert result.steps["notify"].output == {"fixed": "by hand"}


async def test_a_failed_step_fails_the_run_and_compensates(
    cadenza: CadenzaClient, worker_factory, tmp_path: Path
) -> None:
    async with worker_factory():
        run_id = await start_suspended(cadenza, tmp_path / "ledger")
        await cadenza.fail_step(run_id, "sync", "ops", "vendor is down for the day")
        result = await cadenza.result(run_id)
        with pytest.raises(DecisionRefused):
            await cadenza.fail_step(run_id, "sync", "ops")  # the run has ended
    assert result.status == WorkflowState.FAILED
    error = result.steps["sync"].error
    assert error is not None and error.type == "StepFailed"
    assert error.message.endswith("(failed by ops: vendor is down for the day)")
    assert [(c.step_id, c.status) for c in result.compensations] == [("charge", "completed")]
    assert result.steps["notify"].status == StepStatus.PENDING  # the run ended before it


async def test_a_suspended_run_survives_a_worker_and_a_server_restart(
    registry, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from worker.settings import Settings
    from worker.wiring import running_worker

    ledger, queue = tmp_path / "ledger", "suspend-restart"
    with file_server(tmp_path) as server:
        client = await server.client()
        async with running_worker(client, Settings(), registry, task_queue=queue):
            run_id = await start_suspended(CadenzaClient(client, queue), ledger)
        server.restart()  # the worker is gone too
        client = await server.client()
        async with running_worker(client, Settings(), registry, task_queue=queue):
            cadenza = CadenzaClient(client, queue)
            await status_when(cadenza, run_id, suspended, "still suspended", within=60)
            Path(f"{ledger}.fixed").touch()
            await cadenza.retry_step(run_id, "sync", "ops")
            result = await asyncio.wait_for(cadenza.result(run_id), timeout=60)
    assert result.status == WorkflowState.COMPLETED, result.error


async def test_the_cli_lists_and_decides_suspended_steps(
    cadenza: CadenzaClient, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    worker = spawn_worker(
        cadenza.task_queue, tmp_path / "worker.log", "--actions", "tests.support.actions"
    )
    try:
        await _cli_decides(cadenza, ledger)
    finally:
        worker.terminate()
        worker.wait(timeout=30)


async def _cli_decides(cadenza: CadenzaClient, ledger: Path) -> None:
    handle = await cadenza.start(flaky_run(ledger))
    await status_when(cadenza, handle.id, suspended, "sync suspended", within=60)
    listed = cli("pending", "--json")
    rows = [r for r in json.loads(listed.stdout) if r["execution_id"] == handle.id]
    assert [(r["kind"], r["step_id"], r["error"]["type"]) for r in rows] == [
        ("suspended", "sync", "StepFailed")
    ]
    refused = cli("skip-step", handle.id, "notify", "--by", "ops")
    assert refused.returncode == 2 and "'notify' is not suspended" in refused.stderr
    skipped = cli("skip-step", handle.id, "sync", "--by", "ops", "--output", '{"fixed": 1}')
    assert skipped.returncode == 0, skipped.stderr
    result = await cadenza.result(handle.id)
    assert result.steps["notify"].output == {"fixed": 1}


async def test_suspended_and_failed_runs_raise_critical_alerts(
    cadenza: CadenzaClient, client: Any, registry: Any, tmp_path: Path
) -> None:
    from tests.support.receivers import receiver
    from worker.settings import Settings
    from worker.wiring import running_worker

    with receiver() as received:
        settings = Settings(alert_webhook_url=f"{received.url}/alerts")
        async with running_worker(client, settings, registry, task_queue=cadenza.task_queue):
            run_id = await start_suspended(cadenza, tmp_path / "ledger")
            await cadenza.fail_step(run_id, "sync", "ops", "gave up")
            result = await cadenza.result(run_id)
    assert result.status == WorkflowState.FAILED
    alerts = {(a["rule"], a["severity"], a["step_id"]) for a in received.alerts}
    assert alerts == {("run.suspended", "critical", "sync"), ("run.failed", "critical", "sync")}
    failed = next(a for a in received.alerts if a["rule"] == "run.failed")
    assert f"cadenza rerun {run_id}" in failed["message"] and "gave up" in failed["message"]
