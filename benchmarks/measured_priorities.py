"""Critical-path-first with and without measured durations:
`python -m benchmarks.measured_priorities [ROUNDS]`.

A DAG whose declared shape misleads a step count: a chain of three 0.1 s steps (the most steps)
beside two 1 s steps and one 2 s step, with 2 slots. Counted in steps, the chain starts first and
the 2 s step waits behind a 1 s one (makespan about 3.0 s); measured, the 2 s and a 1 s step start
first and the chain fills the gap at the end (about 2.3 s). The worker runs with telemetry, as
deployed: its monitor records the step durations of finished runs, and a run with more steps
than slots asks for their medians at start (workflows/engine/facts.py).

Runs alternate: "without" uses a fresh workflow id each time (no durations measured for it),
"with" the id whose earlier runs the monitor measured. Makespans are the runs' own
started_at..ended_at (workflow time), medians of the rounds.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import uuid
from datetime import datetime
from typing import Any

from activities.std import default_registry
from benchmarks.common import run_cadenza, write_results
from worker.client import CadenzaClient
from worker.dev.devmode import scratch_session

WARM_UP = 3
"""Runs the monitor must have measured before durations count (worker/run_facts.py)."""


def misleading_dag(workflow_id: str) -> dict[str, Any]:
    def sleeper(sid: str, seconds: float, *deps: str) -> dict[str, Any]:
        return {
            "step_id": sid,
            "action": "std.sleep",
            "dependencies": list(deps),
            "input_mapping": {"seconds": str(seconds)},
        }

    return {
        "workflow_id": workflow_id,
        "max_parallel_steps": 2,
        "steps": [
            sleeper("m1", 1.0),
            sleeper("m2", 1.0),
            sleeper("long", 2.0),
            sleeper("c0", 0.1),
            sleeper("c1", 0.1, "c0"),
            sleeper("c2", 0.1, "c1"),
        ],
    }


async def makespan(cadenza: CadenzaClient, definition: dict[str, Any]) -> float:
    run_id = await run_cadenza(cadenza, definition)
    result = await cadenza.result(run_id)
    assert result.started_at is not None and result.ended_at is not None
    ended = datetime.fromisoformat(result.ended_at)
    return (ended - datetime.fromisoformat(result.started_at)).total_seconds()


async def main(rounds: int) -> None:
    async with scratch_session(default_registry()) as cadenza:
        measured_id = f"bench-measured-{uuid.uuid4().hex[:6]}"
        for _ in range(WARM_UP):
            await makespan(cadenza, misleading_dag(measured_id))
        await asyncio.sleep(1)  # the monitor takes finished spans from a queue
        without: list[float] = []
        with_: list[float] = []
        for i in range(rounds):
            fresh = f"bench-unmeasured-{uuid.uuid4().hex[:6]}"
            without.append(await makespan(cadenza, misleading_dag(fresh)))
            with_.append(await makespan(cadenza, misleading_dag(measured_id)))
            print(f"round {i + 1}: counted {without[-1]:.2f} s, measured {with_[-1]:.2f} s")
    row = {
        "counted_makespan_s": round(statistics.median(without), 3),
        "measured_makespan_s": round(statistics.median(with_), 3),
        "rounds": rounds,
        "counted_runs": without,
        "measured_runs": with_,
    }
    print(
        f"critical-path-first, 2 slots: counted in steps {row['counted_makespan_s']:.2f} s, "
        f"in measured seconds {row['measured_makespan_s']:.2f} s (medians of {rounds})"
    )
    write_results("measured_priorities.json", **row)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
