"""cadenza against hand-written Temporal, side by side: `make bench` / `make bench-full`.

Each scenario runs the cadenza definition and the floor workflow (benchmarks/floor.py: the same
activities, server and worker) interleaved A B A B and reports medians and the ratio
cadenza / floor. Writes benchmarks/results/latest.json:
{"machine", "when", "scenarios": [{"name", "metric", "unit", "cadenza", "floor", "ratio",
"target", "meets"}]}.
"""

from __future__ import annotations

import asyncio
import functools
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client

from activities.std import default_registry
from benchmarks.common import (
    chain,
    counting_loop,
    critical_path_dag,
    history_lengths,
    parallel,
    run_cadenza,
    write_results,
)
from benchmarks.floor import FLOOR_WORKFLOWS, FloorChain, FloorDag, FloorParallel
from worker.client import CadenzaClient
from worker.dev.devmode import scratch_session
from worker.services.dev_server import ServerConfig
from worker.settings import Settings
from worker.wiring import running_worker
from workflows.dsl.plan import build_plan
from workflows.dsl.validate import validate_definition

FULL = "--full" in sys.argv
RUNS = 7 if FULL else 5


# ---------------------------------------------------------------------------- definitions


def dag_spec(levels: int = 20, width: int = 10) -> list[dict[str, Any]]:
    """A layered DAG: each step waits for one or two steps of the level above."""
    steps = []
    for level in range(levels):
        for j in range(width):
            deps = []
            if level:
                deps = sorted({f"l{level - 1}_{j}", f"l{level - 1}_{(j * 7 + 3) % width}"})
            steps.append({"step_id": f"l{level}_{j}", "dependencies": deps, "k": j, "guard": 0})
    return steps


def dag(spec: list[dict[str, Any]], width: int) -> dict[str, Any]:
    steps = []
    for s in spec:
        prev = ", ".join(f"steps.{d}.output.x" for d in s["dependencies"])
        steps.append(
            {
                "step_id": s["step_id"],
                "action": "std.echo",
                "dependencies": s["dependencies"],
                "conditions": [{"when": f"input.v >= {s['guard']}"}],
                "input_mapping": {"x": f"input.v + {s['k']}", "prev": f"[{prev}]"},
            }
        )
    return {
        "workflow_id": "bench-dag",
        "max_parallel_steps": width,
        "default_execution": "activity",  # as the floor's activities
        "steps": steps,
    }


# ---------------------------------------------------------------------------- measuring


async def median_pair(
    cadenza: Callable[[], Awaitable[Any]], floor: Callable[[], Awaitable[Any]], runs: int = RUNS
) -> tuple[float, float]:
    """Medians of `runs` timed calls of each, interleaved A B A B after one warm-up each."""
    await cadenza()
    await floor()
    a: list[float] = []
    b: list[float] = []
    for _ in range(runs):
        for fn, out in ((cadenza, a), (floor, b)):
            started = time.perf_counter()
            await fn()
            out.append(time.perf_counter() - started)
    return statistics.median(a), statistics.median(b)


async def cpu_seconds(fn: Callable[[], Awaitable[Any]], runs: int = RUNS) -> float:
    """CPU time (all threads of this process: client and worker) per call of `fn`."""
    await fn()
    started = time.process_time()
    for _ in range(runs):
        await fn()
    return (time.process_time() - started) / runs


async def run_floor(client: Client, queue: str, workflow: Any, *args: Any) -> str:
    run_id = f"floor-{uuid.uuid4().hex[:12]}"
    await client.execute_workflow(workflow, args=list(args), id=run_id, task_queue=queue)
    return run_id


async def history_cost(client: Client, run_id: str) -> tuple[int, int]:
    history = await client.get_workflow_handle(run_id).fetch_history()
    return len(history.events), sum(e.ByteSize() for e in history.events)


# ---------------------------------------------------------------------------- scenarios


async def scenarios(cad: CadenzaClient, report: Callable[..., None]) -> None:
    client, queue = cad.client, cad.task_queue

    # 1. chain of 100 (and 5. its history)
    c, f = await median_pair(
        lambda: run_cadenza(cad, chain(100)),
        lambda: run_floor(client, queue, FloorChain.run, 100),
    )
    report("1. chain of 100 action steps", "end-to-end time", "s", c, f, "<= 1.10", 1.10)
    report(
        "1. chain of 100: per-step overhead",
        "(cadenza - floor) / 100",
        "ms",
        (c - f) * 10,
        None,
        "informational",
    )
    cad_id = await run_cadenza(cad, chain(100))
    floor_id = await run_floor(client, queue, FloorChain.run, 100)
    (ce, cb), (fe, fb) = await history_cost(client, cad_id), await history_cost(client, floor_id)
    report(
        "5. history events per step (chain of 100)",
        "events / step",
        "events",
        ce / 100,
        fe / 100,
        "<= floor + 1 per workflow",
        (fe + 1) / fe,
    )
    report(
        "5. history bytes per step (chain of 100)",
        "bytes / step",
        "bytes",
        cb / 100,
        fb / 100,
        "informational",
    )

    # 2. parallel containers
    for n in (100, 1000):
        c, f = await median_pair(
            functools.partial(run_cadenza, cad, parallel(n, 100)),
            functools.partial(run_floor, client, queue, FloorParallel.run, n, 100),
        )
        report(
            f"2. parallel container of {n:,} (100 at once)",
            "end-to-end time",
            "s",
            c,
            f,
            "<= 1.10",
            1.10,
        )

    # 3. DAG of 200 with mappings and guards
    spec = dag_spec()
    c, f = await median_pair(
        lambda: run_cadenza(cad, dag(spec, 10), {"v": 1}),
        lambda: run_floor(client, queue, FloorDag.run, spec, 1, 10),
    )
    report(
        "3. DAG of 200 steps with mappings and guards",
        "end-to-end time",
        "s",
        c,
        f,
        "<= 1.10",
        1.10,
    )

    # 4. throughput
    async def many_cadenza() -> None:
        handles = await asyncio.gather(*(cad.start(chain(5)) for _ in range(200)))
        await asyncio.gather(*(cad.result(h.id) for h in handles))

    async def many_floor() -> None:
        await asyncio.gather(*(run_floor(client, queue, FloorChain.run, 5) for _ in range(200)))

    c, f = await median_pair(many_cadenza, many_floor, runs=5)
    report(
        "4. throughput, 200 workflows of 5 steps at once",
        "workflows per second",
        "wf/s",
        200 / c,
        200 / f,
        ">= 0.90",
        None,
        higher_is_better=True,
    )

    # 10. local activities
    c, f = await median_pair(
        lambda: run_cadenza(cad, chain(100, local=True)),
        lambda: run_floor(client, queue, FloorChain.run, 100, True),
    )
    report(
        "10. chain of 100 `execution: local` steps", "end-to-end time", "s", c, f, "<= 1.10", 1.10
    )
    activity_chain, _ = await median_pair(
        lambda: run_cadenza(cad, chain(100)), lambda: asyncio.sleep(0), runs=3
    )
    report(
        "10. activity chain / local chain (cadenza)",
        "speed-up of execution: local",
        "x",
        activity_chain / c,
        None,
        "about 4x",
    )

    await telemetry_cost(cad, report)

    # 7. critical-path-first
    makespan = {}
    for optimized in (True, False):
        started = time.perf_counter()
        await run_cadenza(cad, critical_path_dag(optimized))
        makespan[optimized] = time.perf_counter() - started
    report(
        "7. critical-path-first vs definition order (2 slots)",
        "makespan",
        "s",
        makespan[True],
        makespan[False],
        "< 1.00 (faster)",
        0.9999,
    )

    # 6. scale
    children = 10_000 if FULL else 2_000
    iterations = 2_000 if FULL else 600
    scale: tuple[tuple[str, dict[str, Any]], ...] = (
        (f"6. parallel container of {children:,}", parallel(children, 50)),
        (f"6. loop of {iterations:,} iterations", counting_loop(iterations)),
    )
    for name, definition in scale:
        started = time.perf_counter()
        run_id = await run_cadenza(cad, definition)
        seconds = time.perf_counter() - started
        longest = max((await history_lengths(client, run_id)).values())
        report(f"{name}: time", "end-to-end time", "s", seconds, None, "completes")
        report(
            f"{name}: longest history",
            "events in any execution",
            "events",
            longest,
            None,
            "< 10,000",
            None,
            limit=10_000,
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report(
        "6. peak RSS of the process hosting the worker",
        "max RSS",
        "MiB",
        rss,
        None,
        "informational",
    )

    # 8. validation and planning
    big = {
        "workflow_id": "big",
        "steps": [
            {
                "step_id": f"s{i}",
                "action": "std.echo",
                "dependencies": [f"s{i - 1}"] if i % 10 else [],
                "input_mapping": {"x": f"input.v + {i % 7}"},
            }
            for i in range(10_000)
        ],
    }
    started = time.perf_counter()
    report_ = validate_definition(big)
    assert report_.definition is not None
    build_plan(report_.definition.steps)
    seconds = time.perf_counter() - started
    report(
        "8. validation + planning of 10,000 steps",
        "time",
        "s",
        seconds,
        None,
        "< 1 s",
        None,
        limit=1.0,
    )


async def telemetry_cost(cad: CadenzaClient, report: Callable[..., None]) -> None:
    """11. What tracing and the monitor cost: the chain on a worker with telemetry off."""
    client, queue = cad.client, cad.task_queue
    plain_queue = f"{queue}-plain"
    async with running_worker(
        client, Settings(telemetry=False), default_registry(), task_queue=plain_queue
    ):
        plain = CadenzaClient(client, plain_queue)
        on, off = await median_pair(
            lambda: run_cadenza(cad, chain(100)), lambda: run_cadenza(plain, chain(100))
        )
        # wall time on 2 cores varies by +-10% run to run; the worker process's CPU time per
        # step is the steadier measure of what telemetry adds
        cpu_on = await cpu_seconds(lambda: run_cadenza(cad, chain(100)))
        cpu_off = await cpu_seconds(lambda: run_cadenza(plain, chain(100)))
    report(
        "11. chain of 100, telemetry on / off: CPU per step",
        "process CPU time / step",
        "ms",
        cpu_on * 10,
        cpu_off * 10,
        "informational",
    )
    report(
        "11. chain of 100, telemetry on / off",
        "end-to-end time",
        "s",
        on,
        off,
        "informational",
    )
    report(
        "11. telemetry cost per step",
        "(on - off) / 100",
        "ms",
        (on - off) * 10,
        None,
        "informational",
    )


async def stock_vs_tuned(report: Callable[..., None]) -> None:
    """9. the per-step time of the chain on cadenza's server settings vs a stock start-dev."""
    per_step = {}
    for tuned in (True, False):
        with tempfile.TemporaryDirectory() as tmp:
            config = ServerConfig(headless=True, db_path=Path(tmp) / "t.db", tuned=tuned)
            if not tuned:
                config.pragmas = []
            async with scratch_session(default_registry(), config) as cad:
                await run_cadenza(cad, chain(20))
                times = []
                for _ in range(3):
                    started = time.perf_counter()
                    await run_cadenza(cad, chain(100))
                    times.append(time.perf_counter() - started)
                per_step[tuned] = statistics.median(times) * 10
    report(
        "9. chain of 100 on `cadenza server` vs stock start-dev",
        "time per step",
        "ms",
        per_step[True],
        per_step[False],
        "informational (lower is better)",
    )


async def main() -> None:
    rows: list[dict[str, Any]] = []

    def report(
        name: str,
        metric: str,
        unit: str,
        value: float,
        floor: float | None,
        target: str,
        max_ratio: float | None = None,
        *,
        higher_is_better: bool = False,
        limit: float | None = None,
    ) -> None:
        ratio = value / floor if floor else None
        if limit is not None:
            meets = value < limit
        elif ratio is None or (max_ratio is None and not higher_is_better):
            meets = True
        elif higher_is_better:
            meets = ratio >= 0.90
        else:
            meets = ratio <= (max_ratio or 0)
        rows.append(
            {
                "name": name,
                "metric": metric,
                "unit": unit,
                "cadenza": round(value, 4),
                "floor": None if floor is None else round(floor, 4),
                "ratio": None if ratio is None else round(ratio, 3),
                "target": target,
                "meets": meets,
            }
        )
        shown = f"{value:10.3f}" + (f" {floor:10.3f} {ratio:6.2f}" if floor else " " * 18)
        print(
            f"{name[:60]:60s} {unit:7s} {shown}  {target}{'' if meets else '  MISSED'}", flush=True
        )

    print(f"{'scenario':60s} {'unit':7s} {'cadenza':>10s} {'floor':>10s} {'ratio':>6s}  target")
    with tempfile.TemporaryDirectory() as tmp:
        config = ServerConfig(headless=True, db_path=Path(tmp) / "t.db")
        async with scratch_session(default_registry(), config, FLOOR_WORKFLOWS) as cad:
            await scenarios(cad, report)
    await stock_vs_tuned(report)
    write_results("latest.json", full=FULL, scenarios=rows)


if __name__ == "__main__":
    asyncio.run(main())
