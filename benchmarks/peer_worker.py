"""DBOS or Prefect running the benchmark workloads, driven line by line by benchmarks/peers.py.

Runs under the peers venv (`.venv-peers`, made by `make bench-peers`), never the project's:
`.venv-peers/bin/python -m benchmarks.peer_worker dbos|prefect DIR`. Reads a scenario name per
line on stdin (chain, fan, throughput), runs it, answers one JSON line
`{"seconds": wall, "workflows": n}`. Nothing here imports cadenza.

- DBOS Transact: its system database is a SQLite file in DIR (journal_mode=delete,
  synchronous=FULL: every step's output is committed and fsynced before the workflow goes on).
- Prefect 3: an ephemeral local API server on SQLite in DIR (PREFECT_HOME), analytics off,
  results not persisted (Prefect's default): task and flow states are recorded, outputs are not.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

CHAIN = 100
FAN = 100
WORKFLOW_STEPS = 5
WORKFLOWS = {"dbos": 100, "prefect": 20}  # Prefect: ~0.5 wf/s, 100 at once takes minutes


def prefect_environment(folder: str) -> None:
    """Everything local: an ephemeral server on a SQLite file, no analytics, no UI."""
    for name in ("PREFECT_API_URL", "PREFECT_API_KEY"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "PREFECT_HOME": folder,
            "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{folder}/prefect.db",
            "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "true",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_SERVER_UI_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
        }
    )


def dbos_workloads(folder: str) -> dict[str, Callable[[], Awaitable[Any]]]:
    from dbos import DBOS

    @DBOS.step()
    async def echo(params: dict[str, Any]) -> dict[str, Any]:
        return params

    @DBOS.workflow()
    async def chain(n: int, start: int) -> dict[str, Any]:
        variables: dict[str, Any] = {}
        previous: dict[str, Any] = {"n": start}
        for _ in range(n):
            previous = await echo({"n": previous["n"] + 1})
            variables["n"] = previous["n"]
        return variables

    @DBOS.workflow()
    async def fan(n: int, start: int) -> dict[str, Any]:
        results = await asyncio.gather(*(echo({"i": start + i}) for i in range(n)))
        return await echo({"total": len(results)})

    DBOS(
        config={
            "name": "cadenza-bench",
            "system_database_url": f"sqlite:///{folder}/dbos.sqlite",
            "run_admin_server": False,
        }
    )
    DBOS.launch()

    async def one(workflow: Any, *args: Any) -> Any:
        handle = await DBOS.start_workflow_async(workflow, *args)
        return await handle.get_result()

    async def many() -> None:
        handles = await asyncio.gather(
            *(DBOS.start_workflow_async(chain, WORKFLOW_STEPS, 0) for _ in range(WORKFLOWS["dbos"]))
        )
        await asyncio.gather(*(h.get_result() for h in handles))

    return {
        "chain": lambda: one(chain, CHAIN, 0),
        "fan": lambda: one(fan, FAN, 0),
        "throughput": many,
    }


def prefect_workloads(folder: str) -> dict[str, Callable[[], Awaitable[Any]]]:
    prefect_environment(folder)
    from prefect import flow, task

    @task
    async def echo(params: dict[str, Any]) -> dict[str, Any]:
        return params

    @flow
    async def chain(n: int, start: int) -> dict[str, Any]:
        variables: dict[str, Any] = {}
        previous: dict[str, Any] = {"n": start}
        for _ in range(n):
            previous = await echo({"n": previous["n"] + 1})
            variables["n"] = previous["n"]
        return variables

    @flow
    async def fan(n: int, start: int) -> dict[str, Any]:
        results = await asyncio.gather(*(echo({"i": start + i}) for i in range(n)))
        return await echo({"total": len(results)})

    async def many() -> None:
        await asyncio.gather(*(chain(WORKFLOW_STEPS, 0) for _ in range(WORKFLOWS["prefect"])))

    return {"chain": lambda: chain(CHAIN, 0), "fan": lambda: fan(FAN, 0), "throughput": many}


async def main(system: str, folder: str) -> None:
    # the protocol owns the real stdout; the libraries' prints and logs go to stderr
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    workloads = (dbos_workloads if system == "dbos" else prefect_workloads)(folder)
    protocol.write(json.dumps({"ready": system, "workflows": WORKFLOWS[system]}) + "\n")
    loop = asyncio.get_running_loop()
    while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
        started = time.perf_counter()
        await workloads[line]()
        seconds = time.perf_counter() - started
        protocol.write(json.dumps({"seconds": seconds, "workflows": WORKFLOWS[system]}) + "\n")
    if system == "dbos":
        from dbos import DBOS

        DBOS.destroy()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
