"""`cadenza worker` with extra Temporal Worker options, for measuring them (benchmarks only).

`python -m benchmarks.worker_variant '{"max_concurrent_workflow_task_polls": 10}'
--task-queue Q` does what `cadenza worker --task-queue Q` does (settings from CADENZA_*, the
default registry, telemetry as configured, search attributes ensured) and passes the JSON
object's keys to temporalio's `Worker` through `running_worker(**worker_options)`. The worker
code itself is not changed: a setting that helps is reported as a change to make there.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Any

from worker.cli.base import load_registry
from worker.client import connect
from worker.settings import Settings
from worker.wiring import ensure_search_attributes, running_worker


async def main(options: dict[str, Any], task_queue: str) -> None:
    settings = Settings()
    settings.task_queue = task_queue
    client = await connect()
    await ensure_search_attributes(client)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_worker(client, settings, load_registry(None), **options):
        print(f"worker variant {options} on {task_queue!r}", file=sys.stderr, flush=True)
        await stop.wait()


if __name__ == "__main__":
    queue = sys.argv[sys.argv.index("--task-queue") + 1]
    asyncio.run(main(json.loads(sys.argv[1]), queue))
