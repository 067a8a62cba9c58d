"""`make bench`: cadenza against a plain Temporal floor in the production topology.

`python -m benchmarks.production [--rounds N] [--scenarios chain,fan,dag,throughput]`

A server configured as `cadenza server`, `cadenza worker` in its own process (telemetry on, as
deployed), the plain floor worker in another (benchmarks/plain_floor.py), and this process as
the service starting runs. Every scenario runs cadenza and the floor interleaved A B A B after a
warm-up; medians of N; ratio = cadenza / floor (for wf/s, higher is better). Also the worker
process's CPU per run and history bytes per step. Writes benchmarks/results/production-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

from benchmarks.common import write_results
from benchmarks.topology import (
    CHAIN,
    SCENARIOS,
    CadenzaSystem,
    FloorSystem,
    Samples,
    System,
    history_breakdown,
    history_bytes,
    interleave,
    topology,
)


def row(scenario: str, samples: dict[str, Samples]) -> dict[str, Any]:
    """One scenario's medians, ratios and worker CPU per run, for every system measured."""
    label, unit, metric, higher = SCENARIOS[scenario]
    values = {name: metric(s.median()) for name, s in samples.items()}
    floor = values.get("floor")
    return {
        "scenario": scenario,
        "name": label,
        "unit": unit,
        "higher_is_better": higher,
        "values": {k: round(v, 3) for k, v in values.items()},
        "ratios_to_floor": {
            k: round(v / floor, 3) for k, v in values.items() if floor and k != "floor"
        },
        "worker_cpu_s_per_run": {k: round(s.median_cpu(), 3) for k, s in samples.items()},
        "worker_cpu_ratios_to_floor": _cpu_ratios(samples),
        "samples_s": {k: [round(x, 4) for x in s.seconds] for k, s in samples.items()},
    }


def _cpu_ratios(samples: dict[str, Samples]) -> dict[str, float]:
    """Each system's worker CPU per run over the floor's (steadier than wall time between runs:
    docs/benchmarks.md)."""
    floor = samples["floor"].median_cpu() if "floor" in samples else 0.0
    if not floor:
        return {}
    return {k: round(s.median_cpu() / floor, 3) for k, s in samples.items() if k != "floor"}


def show(r: dict[str, Any]) -> None:
    values = "  ".join(f"{k} {v:8.3f}" for k, v in r["values"].items())
    ratios = "  ".join(f"{k}/floor {v:5.2f}" for k, v in r["ratios_to_floor"].items())
    cpu = "  ".join(f"{k} {v:6.3f}" for k, v in r["worker_cpu_s_per_run"].items())
    by_cpu = r["worker_cpu_ratios_to_floor"].items()
    cpu_ratios = "  ".join(f"{k}/floor {v:4.2f}" for k, v in by_cpu)
    print(
        f"{r['name']:38s} {r['unit']:7s} {values}  {ratios}  | worker CPU s/run: {cpu}"
        f"  ({cpu_ratios})"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scenarios", default="chain,fan,dag,throughput")
    parser.add_argument("--out", default=f"production-{time.strftime('%Y-%m-%d-%H%M')}.json")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    async with topology() as top:
        cadenza = CadenzaSystem(top)
        systems: list[System] = [
            cadenza,
            CadenzaSystem(top, None, "cadenza-default"),
            FloorSystem(top),
        ]
        for scenario in args.scenarios.split(","):
            rows.append(row(scenario, await interleave(systems, scenario, args.rounds)))
            show(rows[-1])
        handle = await top.cadenza.start(cadenza.definitions["chain"], {"n": 0})
        await top.cadenza.result(handle.id)
        floor_id = f"floor-{uuid.uuid4().hex[:12]}"
        await top.client.execute_workflow(
            "PlainChain", args=[CHAIN, 0], id=floor_id, task_queue=top.floor_queue
        )
        (ce, cb), (fe, fb) = (
            await history_bytes(top.client, handle.id),
            await history_bytes(top.client, floor_id),
        )
        by_type = {
            "cadenza": await history_breakdown(top.client, handle.id),
            "floor": await history_breakdown(top.client, floor_id),
        }
    history = {
        "events_per_step": {"cadenza": ce / CHAIN, "floor": fe / CHAIN},
        "bytes_per_step": {"cadenza": cb / CHAIN, "floor": fb / CHAIN},
        "by_event_type": by_type,
    }
    for name, kinds in by_type.items():
        print(f"{name} chain of {CHAIN}, history bytes per step by event type (payload bytes):")
        for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1]["bytes"])[:6]:
            print(f"  {kind:40s} {n['bytes'] / CHAIN:8.1f} ({n['payload_bytes'] / CHAIN:.1f})")
    write_results(
        args.out,
        topology="server (cadenza server settings) + `cadenza worker` process (telemetry on) + "
        "plain Temporal floor worker process + this process as client",
        rounds=args.rounds,
        scenarios=rows,
        history=history,
    )


if __name__ == "__main__":
    asyncio.run(main())
