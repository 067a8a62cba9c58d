"""Reruns of ended runs on the real server: a completed step's side effect is not repeated,
`--from` runs a step and what depends on it again, the two runs are linked, and a run that is
still running is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.flows import FAST, status_when
from tests.support.processes import cadenza as cli
from worker.client import CadenzaClient, RerunRefused
from workflows.contracts import SA_RERUN_OF, StepStatus, WorkflowState


def order(ledger: Path, fixed: Path) -> dict[str, Any]:
    """charge (a side effect in the ledger) -> pack (fails until `fixed` exists) -> ship."""
    return {
        "workflow_id": "rerun-order",
        "retry_policy": {**FAST, "max_attempts": 1},
        "steps": [
            {
                "step_id": "charge",
                "action": "test.ledger",
                "input_mapping": {"ledger": f"'{ledger}'"},
                "output_mapping": {"charged": "result.step"},
            },
            {
                "step_id": "pack",
                "action": "test.flaky",
                "dependencies": ["charge"],
                "input_mapping": {"ledger": f"'{ledger}'", "fixed": f"'{fixed}'"},
            },
            {
                "step_id": "ship",
                "action": "std.echo",
                "dependencies": ["pack"],
                "input_mapping": {"charged": "vars.charged", "packed": "steps.pack.output.fixed"},
            },
        ],
    }


async def test_a_rerun_does_not_repeat_completed_steps_and_links_both_runs(
    cadenza: CadenzaClient, worker_factory, tmp_path: Path
) -> None:
    ledger, fixed = tmp_path / "ledger", tmp_path / "fixed"
    async with worker_factory():
        first = await cadenza.result((await cadenza.start(order(ledger, fixed))).id)
        assert first.status == WorkflowState.FAILED
        assert ledger.read_text().split() == ["charge", "run", "pack", "call"]
        fixed.touch()  # the cause of the failure repaired
        handle = await cadenza.rerun(first.execution_id)
        second = await cadenza.result(handle.id)
    assert second.status == WorkflowState.COMPLETED, second.error
    assert ledger.read_text().split() == ["charge", "run", "pack", "call", "pack", "call"]
    charge = second.steps["charge"]
    assert charge.status == StepStatus.COMPLETED
    assert charge.reused_from == first.execution_id
    assert charge.output == first.steps["charge"].output
    assert second.steps["pack"].reused_from is None
    assert second.steps["ship"].output == {"charged": "charge", "packed": True}  # vars restored
    assert second.rerun_of == first.execution_id
    described = await cadenza.client.get_workflow_handle(handle.id).describe()
    assert described.typed_search_attributes.get(SA_RERUN_OF) == first.execution_id


async def test_a_rerun_from_a_step_runs_it_and_what_depends_on_it_again(
    cadenza: CadenzaClient, worker_factory, tmp_path: Path
) -> None:
    ledger, fixed = tmp_path / "ledger", tmp_path / "fixed"
    fixed.touch()
    async with worker_factory():
        first = await cadenza.result((await cadenza.start(order(ledger, fixed))).id)
        assert first.status == WorkflowState.COMPLETED
        second = await cadenza.result((await cadenza.rerun(first.execution_id, "charge")).id)
    assert second.status == WorkflowState.COMPLETED
    assert [second.steps[s].reused_from for s in ("charge", "pack", "ship")] == [None] * 3
    assert ledger.read_text().split().count("charge") == 2


async def test_a_running_run_or_an_unknown_step_is_refused(
    cadenza: CadenzaClient, worker_factory, tmp_path: Path
) -> None:
    definition = {
        "workflow_id": "rerun-refused",
        "steps": [{"step_id": "nap", "action": "std.sleep", "input_mapping": {"seconds": "30"}}],
    }
    async with worker_factory():
        handle = await cadenza.start(definition)
        await status_when(
            cadenza, handle.id, lambda s: s.steps["nap"].status == StepStatus.RUNNING, "nap"
        )
        with pytest.raises(RerunRefused, match="is still running"):
            await cadenza.rerun(handle.id)
        refused = cli("rerun", handle.id)
        assert refused.returncode == 2 and "is still running" in refused.stderr
        await cadenza.cancel(handle.id)
        await cadenza.result(handle.id)
        with pytest.raises(RerunRefused, match="no step 'napp'"):
            await cadenza.rerun(handle.id, "napp")
