"""Control-flow measurements: `python -m benchmarks.control_flow` (make bench-flow).

On the embedded server as `cadenza server` configures it (SQLite file, WAL, synchronous=FULL,
tuned poll rate) with one in-process worker:
- history events per step of a 100-step chain and a 100-child parallel container;
- critical-path-first vs definition-order makespan (max_parallel_steps 2, long chain last);
- scale: a 10,000-child parallel container, a map over 10,000 items and a 2,000-iteration
  loop (time, the longest history of any execution involved, peak RSS of this process, which
  hosts the worker).
Results are printed and written to benchmarks/results/control_flow.json.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from activities.std import default_registry
from benchmarks.common import (
    chain,
    counting_loop,
    critical_path_dag,
    history_lengths,
    mapped,
    parallel,
    run_cadenza,
    write_results,
)
from worker.client import CadenzaClient
from worker.dev.devmode import scratch_session
from worker.services.dev_server import ServerConfig


async def timed(cadenza: CadenzaClient, definition: dict[str, Any]) -> tuple[float, str]:
    started = time.perf_counter()
    run_id = await run_cadenza(cadenza, definition)
    return time.perf_counter() - started, run_id


async def main(full: bool) -> None:
    rows: list[dict[str, Any]] = []

    def report(name: str, value: float, unit: str, note: str = "") -> None:
        rows.append({"name": name, "value": round(value, 3), "unit": unit, "note": note})
        print(f"{name:58s} {value:10.2f} {unit:10s} {note}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        config = ServerConfig(headless=True, db_path=Path(tmp) / "t.db")
        async with scratch_session(default_registry(), config) as cadenza:
            client = cadenza.client

            seconds, run_id = await timed(cadenza, chain(100))
            events = (await history_lengths(client, run_id))[run_id]
            report(
                "100-step chain: events per step",
                events / 100,
                "events",
                f"{events} events, {seconds:.2f} s",
            )

            seconds, run_id = await timed(cadenza, parallel(100, 100))
            events = (await history_lengths(client, run_id))[run_id]
            report(
                "100-child parallel container: events per step",
                events / 100,
                "events",
                f"{events} events, {seconds:.2f} s",
            )

            for optimized in (True, False):
                seconds, _ = await timed(cadenza, critical_path_dag(optimized))
                label = "critical-path-first" if optimized else "definition order"
                report(
                    f"DAG makespan, {label}",
                    seconds,
                    "s",
                    "6 x 0.5 s independent + 4 x 0.5 s chain declared last, 2 slots",
                )

            children = 10_000 if full else 2_000
            seconds, run_id = await timed(cadenza, parallel(children, 50))
            counts = await history_lengths(client, run_id)
            report(
                f"{children}-child container: time",
                seconds,
                "s",
                f"{len(counts) - 1} batch workflows, max_parallel_steps 50",
            )
            report(
                f"{children}-child container: longest history",
                max(counts.values()),
                "events",
                f"parent {counts[run_id]} events",
            )

            items = 10_000 if full else 2_000
            started = time.perf_counter()
            run_id = await run_cadenza(cadenza, mapped(50), {"items": list(range(items))})
            seconds = time.perf_counter() - started
            counts = await history_lengths(client, run_id)
            report(
                f"map over {items} items: time",
                seconds,
                "s",
                f"{len(counts) - 1} batch workflows, max_parallel_steps 50",
            )
            report(
                f"map over {items} items: longest history",
                max(counts.values()),
                "events",
                f"parent {counts[run_id]} events",
            )

            iterations = 2_000 if full else 600
            seconds, run_id = await timed(cadenza, counting_loop(iterations))
            counts = await history_lengths(client, run_id)
            report(
                f"{iterations}-iteration loop: time",
                seconds,
                "s",
                f"{len(counts) - 1} child runs (continue-as-new)",
            )
            report(
                f"{iterations}-iteration loop: longest history",
                max(counts.values()),
                "events",
                f"parent {counts[run_id]} events",
            )
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            report("peak RSS of the process hosting the worker", rss, "MiB")
    write_results("control_flow.json", full=full, rows=rows)


if __name__ == "__main__":
    asyncio.run(main(full="--full" in sys.argv))
