"""Load: N workflows (default 1,000) started at once against one worker process: none lost,
throughput, latency percentiles and the worker's memory. `make load` (`python -m
benchmarks.load [N]`); writes benchmarks/results/load.json.

The worker is a separate `cadenza worker` process (as deployed), so its peak RSS is its own;
the embedded server and this client run beside it on the same machine.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.common import chain, write_results
from worker.client import CadenzaClient, connect
from worker.services.dev_server import EmbeddedServer, ServerConfig, free_port
from worker.wiring import ensure_search_attributes
from workflows.dsl.models import WorkflowState

ROOT = Path(__file__).resolve().parents[1]


def rss_mib(pid: int) -> float:
    """Resident set size of a process (Linux /proc), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = ServerConfig(port=free_port(), headless=True, db_path=Path(tmp) / "t.db")
        server = EmbeddedServer(config, log_path=Path(tmp) / "server.log")
        server.start()
        queue = f"load-{uuid.uuid4().hex[:6]}"
        worker = subprocess.Popen(
            [sys.executable, "-m", "worker.cli", "worker", "--task-queue", queue],
            cwd=ROOT,
            env={
                **os.environ,
                "TEMPORAL_ADDRESS": config.address,
                "PYTHONPATH": str(ROOT),
                "CADENZA_BASELINE_SEED_RUNS": "0",
            },
            stdout=(Path(tmp) / "worker.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        try:
            client = await connect(wait=30, address=config.address)
            await ensure_search_attributes(client)
            cadenza = CadenzaClient(client, queue)
            definition = chain(5)
            await cadenza.result((await cadenza.start(definition)).id)  # warm-up
            idle = rss_mib(worker.pid)
            peak = idle
            starts: dict[str, float] = {}
            ends: dict[str, float] = {}
            began = time.perf_counter()

            async def one(i: int) -> None:
                handle = await cadenza.start(definition, {"i": i})
                starts[handle.id] = time.perf_counter()
                result = await cadenza.result(handle.id)
                ends[handle.id] = time.perf_counter()
                assert result.status == WorkflowState.COMPLETED, result.error

            async def sample() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, rss_mib(worker.pid))
                    await asyncio.sleep(0.2)

            sampler = asyncio.create_task(sample())
            outcomes = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
            elapsed = time.perf_counter() - began
            sampler.cancel()
            failures = [o for o in outcomes if isinstance(o, BaseException)]
            latencies = sorted(ends[k] - starts[k] for k in ends)
            q = statistics.quantiles(latencies, n=100)
            figures = {
                "workflows": n,
                "steps_each": 5,
                "completed": len(ends),
                "lost_or_failed": len(failures),
                "seconds": round(elapsed, 2),
                "throughput_wf_per_s": round(len(ends) / elapsed, 1),
                "latency_p50_s": round(q[49], 2),
                "latency_p99_s": round(q[98], 2),
                "latency_max_s": round(latencies[-1], 2),
                "worker_rss_idle_mib": round(idle, 1),
                "worker_rss_peak_mib": round(peak, 1),
                "worker_rss_after_mib": round(rss_mib(worker.pid), 1),
            }
            for key, value in figures.items():
                print(f"{key:24s} {value}")
            write_results("load.json", **figures)
            if failures:
                raise SystemExit(f"{len(failures)} workflows failed: {failures[:3]}")
        finally:
            worker.terminate()
            worker.wait(timeout=60)
            server.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
