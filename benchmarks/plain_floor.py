"""The production-topology floor: a hand-written Temporal application with PLAIN activities.

No cadenza code runs here: `@activity.defn` functions, hand-written workflows doing what the
benchmark definitions do (the mappings written as Python), Temporal's default data converter,
default sandbox and worker options, no telemetry. `python -m benchmarks.plain_floor ADDRESS
QUEUE` serves them in a process of its own until SIGTERM, as a user's worker would.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=300),
    "retry_policy": RetryPolicy(maximum_attempts=3),
}


@activity.defn(name="echo")
async def echo(params: dict[str, Any]) -> dict[str, Any]:
    """What `std.echo` does: the input back."""
    return params


async def _echo(params: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = await workflow.execute_activity(echo, params, **OPTIONS)
    return result


@workflow.defn(name="PlainChain")
class PlainChain:
    """n steps one after the other; each step's input is the previous output's n + 1 and each
    output is kept in `vars` (the definition's input_mapping and output_mapping)."""

    @workflow.run
    async def run(self, n: int, start: int) -> dict[str, Any]:
        variables: dict[str, Any] = {}
        previous: dict[str, Any] = {"n": start}
        for _ in range(n):
            previous = await _echo({"n": previous["n"] + 1})
            variables["n"] = previous["n"]
        return variables


@workflow.defn(name="PlainFan")
class PlainFan:
    """n steps at once (`width` in flight), then a join step given how many succeeded."""

    @workflow.run
    async def run(self, n: int, width: int, start: int) -> dict[str, Any]:
        gate = asyncio.Semaphore(width)

        async def one(i: int) -> dict[str, Any]:
            async with gate:
                return await _echo({"i": start + i})

        results = await asyncio.gather(*(one(i) for i in range(n)))
        return await _echo({"total": len(results)})


@workflow.defn(name="PlainDag")
class PlainDag:
    """The benchmark DAG (benchmarks.run.dag_spec): each step waits for its dependencies,
    checks its guard, computes its input from theirs and runs `echo`."""

    @workflow.run
    async def run(self, steps: list[dict[str, Any]], value: int, width: int) -> int:
        gate = asyncio.Semaphore(width)
        loop = asyncio.get_running_loop()
        done: dict[str, asyncio.Future[Any]] = {s["step_id"]: loop.create_future() for s in steps}

        async def one(step: dict[str, Any]) -> None:
            outputs = [await done[d] for d in step["dependencies"]]
            if value < step["guard"]:
                done[step["step_id"]].set_result(None)
                return
            params = {"x": value + step["k"], "prev": [o["x"] for o in outputs if o]}
            async with gate:
                output = await _echo(params)
            done[step["step_id"]].set_result(output)

        await asyncio.gather(*(one(s) for s in steps))
        return len(steps)


WORKFLOWS: list[type] = [PlainChain, PlainFan, PlainDag]


async def serve(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    worker = Worker(client, task_queue=task_queue, workflows=WORKFLOWS, activities=[echo])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        print(f"plain floor worker on {task_queue!r} at {address}", file=sys.stderr, flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], sys.argv[2]))
