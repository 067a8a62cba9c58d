"""Recorded histories replay with the worker's exact workflow configuration (no server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from worker.replay import replay_files

FOLDER = Path(__file__).resolve().parent / "histories"
INDEX: dict[str, str] = json.loads((FOLDER / "index.json").read_text())
HISTORIES = sorted(p for p in FOLDER.glob("*.json") if p.name != "index.json")


def test_histories_are_recorded_with_their_workflow_ids() -> None:
    assert len(HISTORIES) >= 4
    assert {p.name for p in HISTORIES} == set(INDEX)


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays_without_nondeterminism(path: Path) -> None:
    [outcome] = await replay_files([path])
    assert outcome.workflow_id == INDEX[path.name]
    assert outcome.ok, outcome.error
    assert outcome.events > 5


async def test_a_changed_command_sequence_is_reported(tmp_path: Path) -> None:
    """The replay catches a history that this code would not produce (an edited history)."""
    source = FOLDER / "data-pipeline.json"
    data = json.loads(source.read_text())
    for event in data["events"]:
        attributes = event.get("activityTaskScheduledEventAttributes")
        if attributes:
            attributes["activityType"]["name"] = "std.renamed"
            break
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data))
    [outcome] = await replay_files([edited], workflow_id=INDEX[source.name])
    assert not outcome.ok and "std.renamed" in (outcome.error or "")
