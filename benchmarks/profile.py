"""`make bench-profile`: py-spy profiles of the cadenza worker process and the floor's.

`python -m benchmarks.profile --py-spy .venv-peers/bin/py-spy [--runs 10] [--scenario chain]`

In the production topology (benchmarks/topology.py) it records each worker process with
py-spy (non-blocking, 200 Hz, idle threads excluded) while that system runs the scenario
`--runs` times, one system after the other, and reads the worker process's CPU from /proc over
the same runs. Prints CPU per step, the samples by area (tracing, monitor, expressions,
records, converter...) and the top frames (self and inclusive), each as % of the process's
samples and as ms of CPU per step (share x CPU per step). `python -m benchmarks.profile
--summarise RAW MS_PER_STEP` reads a saved profile again.
Raw stacks and the summary go to benchmarks/results/profile-<date>/ (py-spy's collapsed format:
`flamegraph.pl` or speedscope read it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS
from benchmarks.topology import (
    CHAIN,
    FAN,
    WORKFLOW_STEPS,
    WORKFLOWS,
    CadenzaSystem,
    FloorSystem,
    System,
    process_cpu,
    topology,
)

STEPS = {"chain": CHAIN, "fan": FAN + 1, "dag": 200, "throughput": WORKFLOWS * WORKFLOW_STEPS}

# area -> substrings of a frame's "function (file:line)". cadenza's own areas (the first
# SPECIFIC) are looked for from the leaf up, the nearest frame deciding: work nested inside a
# span's context counts for that work, not for tracing. A sample none of them matches counts
# for the first of the other areas, in this order, that any frame of its stack matches.
AREAS: dict[str, tuple[str, ...]] = {
    "tracing (spans, OTel)": ("opentelemetry", "observability/tracing", "engine/telemetry"),
    "monitor and metrics": ("observability/monitor", "baselines", "engine/progress"),
    "expressions (CEL)": ("celpy", "cel_", "dsl/expressions", "engine/scope"),
    "validation of the definition": ("dsl/validate", "dsl/rules", "dsl/plan", "validate_cached"),
    "records, details, visibility": (
        "engine/records",
        "engine/visibility",
        "engine/outputs",
        "engine/facts",
    ),
    "other cadenza workflow code": ("workflows/",),
    "cadenza step executor (activity side)": ("activities/",),
    "workflow sandbox (_run_code, importer)": ("workflow_sandbox",),
    "payload conversion (SDK converter, pydantic, json)": ("converter", "pydantic", "json/"),
    "SDK workflow instance": ("_workflow_instance", "worker/_workflow.py"),
    "SDK activity worker": ("worker/_activity.py",),
    "SDK core bridge calls": ("temporalio/bridge",),
    "thread pool (workflow activations)": ("concurrent/futures",),
    "event loop (select, wake-ups)": ("asyncio/", "selectors.py"),
}


def frames(line: str) -> tuple[list[str], int]:
    stack, _, count = line.rpartition(" ")
    return [f.rsplit(":", 1)[0] + ")" if ":" in f else f for f in stack.split(";")], int(count)


SPECIFIC = 7


def area(stack: list[str]) -> str:
    names = list(AREAS)
    for frame in reversed(stack):
        for name in names[:SPECIFIC]:
            if any(n in frame for n in AREAS[name]):
                return name
    for name in names[SPECIFIC:]:
        if any(n in frame for frame in stack for n in AREAS[name]):
            return name
    return "other"


def summarise(raw: Path, cpu_ms_per_step: float = 0.0, top: int = 25) -> dict[str, Any]:
    """Shares of the samples (and, given the CPU per step, ms per step) by area and frame."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        stack, count = frames(line)
        total += count
        own[stack[-1]] += count
        for frame in set(stack):
            inclusive[frame] += count
        areas[area(stack)] += count

    def pct(counter: Counter[str], n: int) -> list[tuple[str, float, float]]:
        return [
            (k, round(100 * v / max(total, 1), 1), round(cpu_ms_per_step * v / max(total, 1), 3))
            for k, v in counter.most_common(n)
        ]

    return {
        "samples": total,
        "areas": pct(areas, len(AREAS) + 1),
        "self": pct(own, top),
        "inclusive": pct(inclusive, top * 3),
    }


async def record(
    system: System, scenario: str, runs: int, py_spy: str, out: Path
) -> dict[str, Any]:
    pid = system.pid()
    assert pid is not None
    await system.run(scenario)  # warm
    spy = subprocess.Popen(
        [
            *(py_spy, "record", "--pid", str(pid), "--rate", "200", "--nonblocking"),
            *("--format", "raw", "--output", str(out)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    await asyncio.sleep(1.0)  # py-spy attaches
    before = process_cpu(pid)
    seconds = [await system.run(scenario) for _ in range(runs)]
    cpu = process_cpu(pid) - before
    spy.send_signal(signal.SIGINT)
    spy.wait(60)
    per_step = cpu / runs / STEPS[scenario] * 1000
    summary = {"worker_cpu_ms_per_step": round(per_step, 3), "seconds": seconds}
    return {**summary, **summarise(out, per_step)}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--py-spy", default=".venv-peers/bin/py-spy")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--scenario", default="chain")
    parser.add_argument("--summarise", nargs=2, metavar=("RAW", "MS_PER_STEP"))
    args = parser.parse_args()
    if args.summarise:
        summary = summarise(Path(args.summarise[0]), float(args.summarise[1]))
        for key in ("areas", "self", "inclusive"):
            print(f"{key} (% of samples, ms CPU per step):")
            for name, share, ms in summary[key]:
                print(f"  {share:5.1f}%  {ms:6.3f}  {name}")
        return
    folder = RESULTS / f"profile-{time.strftime('%Y-%m-%d-%H%M')}"
    folder.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {}
    async with topology() as top:
        for system in (CadenzaSystem(top), FloorSystem(top)):
            raw = folder / f"{system.name}-{args.scenario}.txt"
            report[system.name] = await record(system, args.scenario, args.runs, args.py_spy, raw)
            print(
                f"\n== {system.name}: {report[system.name]['worker_cpu_ms_per_step']} ms CPU/step"
            )
            for key in ("areas", "self"):
                print(f"  {key} (% of samples, ms CPU per step):")
                for name, share, ms in report[system.name][key][:16]:
                    print(f"  {share:5.1f}%  {ms:6.3f}  {name}")
    (folder / f"summary-{args.scenario}.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"written to {folder}")


if __name__ == "__main__":
    asyncio.run(main())
