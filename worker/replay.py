"""Replay histories against this build's workflow code, with the worker's exact configuration.

`cadenza replay FILE...` (recorded or exported histories) and `cadenza replay --query "..."`
(histories read from visibility) tell an operator, before a deploy, whether the new code would
replay the runs in flight: a non-determinism means a change needs `workflow.patched`. The same
function replays `tests/replay/histories` in CI.

A history file is JSON as `temporal workflow show --output json` or
`WorkflowHistory.to_json()` writes it. Its workflow id matters (child workflow ids derive from
it): it comes from `--workflow-id`, else from an `index.json` beside the file (`{file: id}`,
as tests/replay keeps), else from the file name without `.json`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.opentelemetry import OpenTelemetryPlugin
from temporalio.worker import Replayer

from worker.codec import data_converter
from worker.observability.tracing import install_tracing
from worker.wiring import WORKFLOWS, agent_plugin, sandbox_runner
from workflows.engine.visibility import DetailsInterceptor


@dataclass
class ReplayOutcome:
    name: str
    workflow_id: str
    events: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def replayer() -> Replayer:
    """A replayer configured as `build_worker` configures a worker (sandbox, passthrough
    modules, data converter with this process's codec keys, the tracing plugin)."""
    install_tracing("cadenza-replay")  # the plugin needs the replay-safe provider installed
    return Replayer(
        workflows=WORKFLOWS,
        workflow_runner=sandbox_runner(),
        interceptors=[DetailsInterceptor()],
        data_converter=data_converter(),
        plugins=[OpenTelemetryPlugin(add_temporal_spans=True), agent_plugin()],
    )


def workflow_id_for(path: Path, given: str | None = None) -> str:
    if given:
        return given
    index = path.parent / "index.json"
    if index.exists():
        known = json.loads(index.read_text())
        if isinstance(known, dict) and path.name in known:
            return str(known[path.name])
    return path.stem


def history_files(paths: Sequence[Path]) -> list[Path]:
    """Files as given; folders expand to their *.json (index.json excluded)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.glob("*.json") if p.name != "index.json")
        else:
            files.append(path)
    return files


async def replay_files(
    paths: Sequence[Path], workflow_id: str | None = None
) -> list[ReplayOutcome]:
    outcomes = []
    engine = replayer()
    for path in history_files(paths):
        wid = workflow_id_for(path, workflow_id)
        try:
            history = WorkflowHistory.from_json(wid, path.read_text())
        except Exception as exc:
            outcomes.append(ReplayOutcome(str(path), wid, 0, f"unreadable history: {exc}"))
            continue
        result = await engine.replay_workflow(history, raise_on_replay_failure=False)
        error = None if result.replay_failure is None else _describe(result.replay_failure)
        outcomes.append(ReplayOutcome(str(path), wid, len(history.events), error))
    return outcomes


async def replay_query(client: Client, query: str, limit: int) -> list[ReplayOutcome]:
    """Replay the histories of the executions `query` finds (newest first, at most `limit`)."""
    events: dict[str, int] = {}

    async def histories() -> AsyncIterator[WorkflowHistory]:
        async for history in client.list_workflows(query, limit=limit).map_histories():
            events[history.workflow_id] = len(history.events)
            yield history

    outcomes = []
    async with replayer().workflow_replay_iterator(histories()) as results:
        async for result in results:
            wid = result.history.workflow_id
            error = None if result.replay_failure is None else _describe(result.replay_failure)
            outcomes.append(ReplayOutcome(wid, wid, events.get(wid, 0), error))
    return outcomes


def _describe(failure: Exception) -> str:
    text = f"{type(failure).__name__}: {failure}"
    return text if len(text) < 2000 else text[:2000] + "..."
