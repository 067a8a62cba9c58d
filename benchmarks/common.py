"""Helpers shared by the benchmark scripts: definitions, runs, history sizes, results files."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from temporalio.client import Client

from worker.client import CadenzaClient

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


def chain(n: int, local: bool = False) -> dict[str, Any]:
    """n `std.echo` steps, each depending on the one before (`local`: as local activities)."""
    extra = {"execution": "local"} if local else {}
    return {
        "workflow_id": "bench-chain",
        "default_execution": "activity",  # as the floor; `local` steps say so themselves
        "steps": [
            {
                "step_id": f"s{i}",
                "action": "std.echo",
                "dependencies": [f"s{i - 1}"] if i else [],
                **extra,
            }
            for i in range(n)
        ],
    }


def parallel(n: int, width: int) -> dict[str, Any]:
    """A parallel container of n `std.echo` children, `width` at once."""
    children = [{"step_id": f"c{i}", "action": "std.echo"} for i in range(n)]
    return {
        # one id per size: the monitor's baselines are per definition, and a 1,000-child run
        # measured against 100-child ones raised anomaly alerts in the middle of the benchmark
        "workflow_id": f"bench-parallel-{n}",
        "default_execution": "activity",
        "max_parallel_steps": width,
        "steps": [{"step_id": "fan", "step_type": "parallel", "parallel_steps": children}],
    }


def mapped(width: int) -> dict[str, Any]:
    """A map step running `std.echo` once per item of `input.items`, `width` at once."""
    body = {"step_id": "echo", "action": "std.echo", "input_mapping": {"n": "item", "i": "index"}}
    return {
        "workflow_id": "bench-map",
        "default_execution": "activity",
        "max_parallel_steps": width,
        "steps": [
            {"step_id": "each", "step_type": "map", "map": {"items": "input.items", "step": body}}
        ],
    }


def counting_loop(iterations: int) -> dict[str, Any]:
    """A loop of exactly `iterations` `std.echo` iterations."""
    return {
        "workflow_id": "bench-loop",
        "default_execution": "activity",
        "steps": [
            {
                "step_id": "spin",
                "step_type": "loop",
                "action": "std.echo",
                "input_mapping": {"n": "iteration"},
                "loop_condition": f"result.n < {iterations - 1}",
                "loop_max_iterations": iterations,
            }
        ],
    }


def critical_path_dag(optimized: bool) -> dict[str, Any]:
    """6 independent 0.5 s steps and a chain of 4 declared last, with 2 slots."""

    def sleeper(sid: str, *deps: str) -> dict[str, Any]:
        return {
            "step_id": sid,
            "action": "std.sleep",
            "dependencies": list(deps),
            "input_mapping": {"seconds": "0.5"},
        }

    shorts = [sleeper(f"short{i}") for i in range(6)]
    longs = [sleeper("long0")] + [sleeper(f"long{i}", f"long{i - 1}") for i in range(1, 4)]
    return {
        "workflow_id": "bench-cpf",
        "max_parallel_steps": 2,
        "optimization_enabled": optimized,
        "steps": shorts + longs,
    }


async def run_cadenza(
    cad: CadenzaClient, definition: dict[str, Any], run_input: dict[str, Any] | None = None
) -> str:
    """Run a definition to completion (asserting it completed); its execution id."""
    handle = await cad.start(definition, run_input or {})
    result = await cad.result(handle.id)
    assert result.status.value == "completed", result.error
    return handle.id
