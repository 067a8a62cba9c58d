"""`make bench-settings`: server and worker settings measured on the throughput scenario.

`python -m benchmarks.throughput_settings [--rounds 3] [--variants a,b]`

Each variant starts the production topology afresh (benchmarks/topology.py) with one change
and runs "100 workflows of 5 steps at once" for cadenza and the plain floor, interleaved; the
floor is the in-run reference (a server setting moves both, a worker setting only cadenza).
The baseline runs first and last, to show how far the machine drifted meanwhile. Writes
benchmarks/results/settings-<date>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from benchmarks.common import write_results
from benchmarks.production import row
from benchmarks.topology import CadenzaSystem, FloorSystem, System, interleave, topology


def variant_worker(options: dict[str, Any]) -> list[str]:
    return [sys.executable, "-m", "benchmarks.worker_variant", json.dumps(options)]


def dynamic(*values: str) -> list[str]:
    return [a for v in values for a in ("--dynamic-config-value", v)]


# name -> (server args, worker env, worker command, floor eager start)
VARIANTS: dict[str, tuple[list[str], dict[str, str], list[str] | None, bool]] = {
    "baseline": ([], {}, None, False),
    "1 task-queue partition": (
        dynamic("matching.numTaskqueueReadPartitions=1", "matching.numTaskqueueWritePartitions=1"),
        {},
        None,
        False,
    ),
    "8 task-queue partitions": (
        dynamic("matching.numTaskqueueReadPartitions=8", "matching.numTaskqueueWritePartitions=8"),
        {},
        None,
        False,
    ),
    "eager activity execution": (
        dynamic("system.enableActivityEagerExecution=true"),
        {},
        None,
        False,
    ),
    "eager workflow start (floor asks)": ([], {}, None, True),
    "cache 100 workflows": ([], {"CADENZA_MAX_CACHED_WORKFLOWS": "100"}, None, False),
    "no telemetry": ([], {"CADENZA_TELEMETRY": "false"}, None, False),
    "workflow-task and activity pollers 10 (SDK 5)": (
        [],
        {},
        variant_worker(
            {"max_concurrent_workflow_task_polls": 10, "max_concurrent_activity_task_polls": 10}
        ),
        False,
    ),
    "max concurrent workflow tasks 20": (
        [],
        {},
        variant_worker({"max_concurrent_workflow_tasks": 20}),
        False,
    ),
}


async def measure(name: str, rounds: int) -> dict[str, Any]:
    server_args, env, command, eager = VARIANTS[name]
    async with topology(server_args, env, command) as top:
        systems: list[System] = [CadenzaSystem(top), FloorSystem(top, eager_start=eager)]
        result = row("throughput", await interleave(systems, "throughput", rounds))
    result["variant"] = name
    values, ratio = result["values"], result["ratios_to_floor"]["cadenza"]
    print(
        f"{name:46s} cadenza {values['cadenza']:6.2f} wf/s  floor {values['floor']:6.2f} wf/s  "
        f"cadenza/floor {ratio:4.2f}",
        flush=True,
    )
    return result


async def side_by_side(name: str, rounds: int) -> dict[str, Any]:
    """The baseline and the variant as two topologies open at once, their runs interleaved
    (baseline cadenza, variant cadenza, baseline floor, variant floor, ...): both under the
    same machine load, which separate topologies one after the other are not."""
    server_args, env, command, eager = VARIANTS[name]
    async with topology() as base, topology(server_args, env, command) as other:
        floor_base, floor_other = FloorSystem(base), FloorSystem(other, eager_start=eager)
        floor_base.name, floor_other.name = "floor", "floor-variant"
        systems: list[System] = [
            CadenzaSystem(base),
            CadenzaSystem(other, name="cadenza-variant"),
            floor_base,
            floor_other,
        ]
        result = row("throughput", await interleave(systems, "throughput", rounds))
    result["variant"] = name
    v = result["values"]
    print(
        f"{name:46s} cadenza {v['cadenza']:6.2f} -> {v['cadenza-variant']:6.2f} wf/s  "
        f"floor {v['floor']:6.2f} -> {v['floor-variant']:6.2f} wf/s",
        flush=True,
    )
    return result


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default=";".join(VARIANTS), help="names, ;-separated")
    parser.add_argument("--out", default=f"settings-{time.strftime('%Y-%m-%d-%H%M')}.json")
    parser.add_argument("--side-by-side", action="store_true", help="see side_by_side")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    if args.side_by_side:
        for name in args.variants.split(";"):
            rows.append(await side_by_side(name, args.rounds))
            write_results(args.out, rounds=args.rounds, scenario="throughput", side_by_side=rows)
        return
    names = [n for n in args.variants.split(";") if n != "baseline"]
    for name in ["baseline", *names, "baseline"]:
        rows.append(await measure(name, args.rounds))
        write_results(args.out, rounds=args.rounds, scenario="throughput", variants=rows)


if __name__ == "__main__":
    asyncio.run(main())
