"""Agentic tasks in tests: scripted model turns written to a folder, and a task run to its end on
a worker of the test's queue."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import yaml
from temporalio.client import Client

from activities.registry import ActionRegistry
from worker.client import CadenzaClient
from worker.settings import Settings
from worker.wiring import running_worker
from workflows.dsl.models import EffectiveRetryPolicy
from workflows.orchestrator import TaskResult

FAST = EffectiveRetryPolicy(max_attempts=2, initial_interval=0.1, backoff_coefficient=1)
BOUND = 60
"""Seconds: a task that hangs (its workflow task failing forever) fails the test."""


def script(folder: Path, name: str, turns: list[dict[str, Any]]) -> str:
    """Write the scripted model `name` (one answer per turn) and return its model name."""
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(turns))
    return f"scripted:{name}"


def analysis(**fields: Any) -> dict[str, Any]:
    """The orchestrator's analysis turn."""
    return {"content": json.dumps({"complexity": 0.4, **fields})}


def echo(**args: Any) -> dict[str, Any]:
    """A subtask calling std.echo."""
    return {"tool": "std.echo", "args": args}


async def run_task(
    client: Client, registry: ActionRegistry, queue: str, scripts: Path, request: Any
) -> tuple[TaskResult, Any]:
    """Run the task `request` (a TaskInput) to its end, within BOUND; its result and handle."""
    async with running_worker(client, Settings(llm_scripts=scripts), registry, task_queue=queue):
        cadenza = CadenzaClient(client, queue)
        handle = await cadenza.start_task(request)
        result = await asyncio.wait_for(cadenza.task_result(handle.id), BOUND)
        return result, handle
