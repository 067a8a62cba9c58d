"""Definitions served by name (`cadenza worker --definitions DIR`): a run started by any Temporal
client with `{workflow, version, input}` (here the `temporal` CLI) gets its definition from the
worker's folder, recorded in its history; an unknown name fails at once naming the known ones."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from worker.client import CadenzaClient
from worker.definition_library import DefinitionLibrary, DefinitionsInvalid
from worker.services.dev_server import temporal_binary
from worker.settings import Settings
from worker.wiring import running_worker
from workflows.contracts import SA_WORKFLOW_ID, RunInput, WorkflowState

GREET = """workflow_id: greet
version: "{version}"
steps:
  - step_id: hello
    action: std.echo
    input_mapping: {{text: '"hello " + input.name', version: '"{version}"'}}
"""


def folder(tmp_path: Path) -> Path:
    library = tmp_path / "definitions"
    library.mkdir()
    for version in ("1.2", "1.10"):
        (library / f"greet-{version}.yaml").write_text(GREET.format(version=version))
    return library


def temporal_start(address: str, queue: str, run_id: str, payload: dict[str, object]) -> None:
    subprocess.run(
        [
            str(temporal_binary()),
            "workflow",
            "start",
            "--address",
            address,
            "--task-queue",
            queue,
            "--type",
            "AdvancedWorkflowRun",
            "--workflow-id",
            run_id,
            "--input",
            json.dumps(payload),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


async def test_a_run_started_by_name_from_the_temporal_cli(
    cadenza: CadenzaClient, registry, temporal_address: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(definitions=folder(tmp_path))
    queue = cadenza.task_queue
    highest, pinned, unknown = (f"by-name-{uuid.uuid4().hex[:8]}" for _ in range(3))
    async with running_worker(cadenza.client, settings, registry, task_queue=queue):
        temporal_start(
            temporal_address, queue, highest, {"workflow": "greet", "input": {"name": "ada"}}
        )
        temporal_start(
            temporal_address,
            queue,
            pinned,
            {"workflow": "greet", "version": "1.2", "input": {"name": "bo"}},
        )
        temporal_start(temporal_address, queue, unknown, {"workflow": "gret", "input": {}})
        first, second, third = [await cadenza.result(i) for i in (highest, pinned, unknown)]
    assert first.status == WorkflowState.COMPLETED, first.error
    assert first.steps["hello"].output == {"text": "hello ada", "version": "1.10"}
    assert (first.workflow_id, first.version) == ("greet", "1.10")
    assert second.steps["hello"].output == {"text": "hello bo", "version": "1.2"}
    assert third.status == WorkflowState.FAILED and third.error is not None
    assert third.error.type == "DefinitionInvalid"
    assert "no definition 'gret'" in third.error.message and "served: greet" in third.error.message
    described = await cadenza.client.get_workflow_handle(highest).describe()
    assert described.typed_search_attributes.get(SA_WORKFLOW_ID) == "greet"
    # the definition is in the history: a replay never reads the folder again
    history = await cadenza.client.get_workflow_handle(highest).fetch_history()
    recorded = [
        e.marker_recorded_event_attributes.details["data"].payloads[0].data
        for e in history.events
        if e.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]
    assert any(b"cadenza.definitions.resolve" in data for data in recorded), (
        "the local activity's result (the definition) is recorded as a marker"
    )


def test_a_folder_with_a_broken_definition_stops_the_worker(tmp_path: Path) -> None:
    library = folder(tmp_path)
    (library / "broken.yaml").write_text(
        "workflow_id: broken\nsteps: [{step_id: x, action: nope}]\n"
    )
    with pytest.raises(DefinitionsInvalid, match=r"broken\.yaml does not validate"):
        DefinitionLibrary(library, ["std.echo"])


def test_run_input_by_name_needs_no_definition() -> None:
    run = RunInput.model_validate({"workflow": "greet", "input": {"name": "x"}})
    assert run.definition == {} and run.workflow == "greet" and run.version is None
