"""Recorded histories replay with the worker's exact workflow configuration (no server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from worker.codec import data_converter
from worker.run import WORKFLOWS, workflow_runner

FOLDER = Path(__file__).resolve().parent / "histories"
INDEX: dict[str, str] = json.loads((FOLDER / "index.json").read_text())
HISTORIES = sorted(p for p in FOLDER.glob("*.json") if p.name != "index.json")


def test_histories_are_recorded_with_their_workflow_ids() -> None:
    assert len(HISTORIES) >= 4
    assert {p.name for p in HISTORIES} == set(INDEX)


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays_without_nondeterminism(path: Path) -> None:
    history = WorkflowHistory.from_json(INDEX[path.name], path.read_text())
    replayer = Replayer(
        workflows=WORKFLOWS,
        workflow_runner=workflow_runner(),
        data_converter=data_converter(),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
