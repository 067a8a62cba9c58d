"""History cost of an agent step: a 100-call scripted agent run, bytes of history per model call.
`python -m benchmarks.agent_history [CALLS]`; writes benchmarks/results/agent_history.json."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import yaml

from activities.registry import default_registry
from benchmarks.common import write_results
from worker.devmode import scratch_session


async def main(calls: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        turn = {
            "content": "checking one more source " + "x" * 200,
            "tool_calls": [{"name": "std.echo", "args": {"source": "s" * 300}}],
        }
        turns = [turn] * (calls - 1) + [{"content": "final answer"}]
        Path(tmp, "long.yaml").write_text(yaml.safe_dump(turns))
        import os

        os.environ["CADENZA_LLM_SCRIPTS"] = tmp
        definition = {
            "workflow_id": "agent-history",
            "steps": [
                {
                    "step_id": "think",
                    "step_type": "agent",
                    "timeout": 3600,
                    "agent": {
                        "instructions": "Research.",
                        "tools": ["std.echo"],
                        "max_iterations": calls,
                        "model": "scripted:long",
                    },
                }
            ],
        }
        async with scratch_session(default_registry()) as cadenza:
            handle = await cadenza.start(definition)
            result = await cadenza.result(handle.id)
            history = await handle.fetch_history()
    size = sum(e.ByteSize() for e in history.events)
    figures = {
        "model_calls": result.steps["think"].output["iterations"]
        if result.steps["think"].output
        else None,
        "status": result.status.value,
        "events": len(history.events),
        "history_bytes": size,
        "bytes_per_model_call": size // calls,
    }
    for key, value in figures.items():
        print(f"{key:22s} {value}")
    write_results("agent_history.json", **figures)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100))
