"""Measure the embedded server's SQLite settings: `python -m benchmarks.server_settings`.

Starts a file-backed server per setting, runs N concurrent 5-step workflows through one
in-process worker, and prints workflows/s and the per-step time of a sequential chain.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from activities.std import default_registry
from worker.dev.devmode import scratch_session
from worker.services.dev_server import ServerConfig

SETTINGS = {
    "default pragmas": [],
    "wal + synchronous=FULL (cadenza)": ["journal_mode=wal", "synchronous=FULL"],
    "wal + synchronous=NORMAL": ["journal_mode=wal", "synchronous=NORMAL"],
}


def chain(n: int) -> dict:
    return {
        "workflow_id": "bench",
        "default_execution": "activity",
        "steps": [
            {"step_id": f"s{i}", "action": "std.echo", "dependencies": [f"s{i - 1}"] if i else []}
            for i in range(n)
        ],
    }


async def measure(pragmas: list[str], concurrent: int, rounds: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        config = ServerConfig(headless=True, db_path=Path(tmp) / "t.db", pragmas=pragmas)
        async with scratch_session(default_registry(), config) as cadenza:
            rates, per_step = [], []
            for _ in range(rounds):
                started = time.perf_counter()
                handles = await asyncio.gather(
                    *(cadenza.start(chain(5)) for _ in range(concurrent))
                )
                await asyncio.gather(*(cadenza.result(h.id) for h in handles))
                rates.append(concurrent / (time.perf_counter() - started))
                started = time.perf_counter()
                await cadenza.result((await cadenza.start(chain(50))).id)
                per_step.append((time.perf_counter() - started) / 50 * 1000)
            return statistics.median(rates), statistics.median(per_step)


async def main() -> None:
    concurrent = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    print(f"{concurrent} concurrent 5-step workflows, {rounds} rounds, medians")
    for name, pragmas in SETTINGS.items():
        rate, step_ms = await measure(pragmas, concurrent, rounds)
        print(f"{name:36s} {rate:6.1f} workflows/s   chain {step_ms:5.1f} ms/step")


if __name__ == "__main__":
    asyncio.run(main())
