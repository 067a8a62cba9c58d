"""Helpers shared by the benchmark scripts: history sizes and the results files."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from temporalio.client import Client

RESULTS = Path(__file__).resolve().parent / "results"


async def history_lengths(client: Client, execution_id: str) -> dict[str, int]:
    """Event counts of a run and of every child run it started (ids `<run id>.<...>`)."""
    counts = {}
    parent = await client.get_workflow_handle(execution_id).fetch_history()
    counts[execution_id] = len(parent.events)
    async for child in client.list_workflows(f"WorkflowId STARTS_WITH '{execution_id}.'"):
        handle = client.get_workflow_handle(child.id, run_id=child.run_id)
        counts[f"{child.id}/{child.run_id[:8]}"] = len((await handle.fetch_history()).events)
    return counts


def write_results(name: str, **payload: Any) -> Path:
    """Write benchmarks/results/<name> with the machine and the time, and say where."""
    RESULTS.mkdir(exist_ok=True)
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}, "
        f"Python {platform.python_version()}"
    )
    out = RESULTS / name
    document = {"machine": machine, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    out.write_text(json.dumps({**document, **payload}, indent=1) + "\n")
    print(f"written to {out}")
    return out
