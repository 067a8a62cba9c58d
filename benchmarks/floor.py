"""Hand-written Temporal workflows doing the same work as the benchmark definitions: the floor.

They call the very same activities (the step executor, activity type = action name, with the
same input model and options) on the same worker, so the difference to cadenza is the cost of
interpreting a definition.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.contracts import StepActivityInput, StepActivityResult

OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=300),
    "heartbeat_timeout": timedelta(seconds=10),
    "retry_policy": RetryPolicy(maximum_attempts=3),
    "result_type": StepActivityResult,
}


async def _echo(step_id: str, params: dict[str, Any], local: bool = False) -> Any:
    request = StepActivityInput(workflow_id="floor", step_id=step_id, params=params)
    if local:
        result = await workflow.execute_local_activity(
            "std.echo",
            request,
            start_to_close_timeout=timedelta(seconds=300),
            retry_policy=RetryPolicy(maximum_attempts=3),
            result_type=StepActivityResult,
        )
    else:
        result = await workflow.execute_activity("std.echo", request, **OPTIONS)
    return result.output


@workflow.defn(name="FloorChain")
class FloorChain:
    """N echo activities one after the other (`local`: as local activities)."""

    @workflow.run
    async def run(self, n: int, local: bool = False) -> int:
        for i in range(n):
            await _echo(f"s{i}", {}, local)
        return n


@workflow.defn(name="FloorParallel")
class FloorParallel:
    """N echo activities at once, at most `width` in flight."""

    @workflow.run
    async def run(self, n: int, width: int) -> int:
        gate = asyncio.Semaphore(width)

        async def one(i: int) -> Any:
            async with gate:
                return await _echo(f"c{i}", {})

        await asyncio.gather(*(one(i) for i in range(n)))
        return n


@workflow.defn(name="FloorDag")
class FloorDag:
    """The benchmark DAG: each step waits for its dependencies, computes its input and guard
    in Python (what cadenza's CEL mappings and guards do), and runs an echo activity."""

    @workflow.run
    async def run(self, steps: list[dict[str, Any]], value: int, width: int) -> int:
        gate = asyncio.Semaphore(width)
        done: dict[str, asyncio.Future[Any]] = {
            s["step_id"]: asyncio.get_running_loop().create_future() for s in steps
        }

        async def one(step: dict[str, Any]) -> None:
            outputs = [await done[d] for d in step["dependencies"]]
            if value < step["guard"]:
                done[step["step_id"]].set_result(None)
                return
            params = {"x": value + step["k"], "prev": [o["x"] for o in outputs if o]}
            async with gate:
                output = await _echo(step["step_id"], params)
            done[step["step_id"]].set_result(output)

        await asyncio.gather(*(one(s) for s in steps))
        return len(steps)


FLOOR_WORKFLOWS: list[type] = [FloorChain, FloorParallel, FloorDag]
