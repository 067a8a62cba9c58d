"""History cost of an agent step: scripted agent runs of CALLS model calls, bytes of history per
model call, with the default context window (`agent.max_context_bytes`, 32,000) and with the
window opened wide (1,000,000: the whole conversation every call, as before the window).

`python -m benchmarks.agent_history [CALLS...]` (default 100 300); writes
benchmarks/results/agent_history.json."""

from __future__ import annotations

import asyncio
import os
import random
import string
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from activities.std import default_registry
from benchmarks.common import write_results
from worker.dev.devmode import scratch_session

WINDOWS = {"window 32 KB (default)": 32_000, "whole conversation": 1_000_000}


def definition(calls: int, window: int) -> dict[str, Any]:
    return {
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
                    "model": f"scripted:long{calls}",
                    "max_context_bytes": window,
                },
            }
        ],
    }


async def measure(cadenza: Any, calls: int, window: int) -> dict[str, Any]:
    started = time.perf_counter()
    handle = await cadenza.start(definition(calls, window))
    result = await cadenza.result(handle.id)
    seconds = time.perf_counter() - started
    history = await handle.fetch_history()
    size = sum(e.ByteSize() for e in history.events)
    chats = [
        e.ByteSize()
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == "cadenza.llm.chat"
    ]
    output = result.steps["think"].output or {}
    return {
        "status": result.status.value,
        "model_calls": output.get("iterations"),
        "events": len(history.events),
        "history_bytes": size,
        "bytes_per_model_call": size // calls,
        "largest_model_call_bytes": max(chats),
        "last_model_call_bytes": chats[-1],
        "seconds": round(seconds, 2),
    }


def turn(index: int) -> dict[str, Any]:
    """A model turn of text like a real one (distinct words: compresses about as well as
    prose, unlike repeated characters, which the payload codec's zlib would hide)."""
    rng = random.Random(index)
    words = [
        "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 9)))
        for _ in range(90)
    ]
    return {
        "content": " ".join(words[:30]),
        "tool_calls": [{"name": "std.echo", "args": {"source": " ".join(words[30:])}}],
    }


async def main(sizes: list[int]) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for calls in sizes:
            turns = [turn(i) for i in range(calls - 1)] + [{"content": "final answer"}]
            Path(tmp, f"long{calls}.yaml").write_text(yaml.safe_dump(turns))
        os.environ["CADENZA_LLM_SCRIPTS"] = tmp
        async with scratch_session(default_registry()) as cadenza:
            for calls in sizes:
                for label, window in WINDOWS.items():
                    figures = await measure(cadenza, calls, window)
                    rows.append({"calls": calls, "context": label, **figures})
                    print(
                        f"{calls:5d} calls, {label:24s} {figures['status']:9s} "
                        f"{figures['history_bytes'] / 1e6:7.2f} MB, "
                        f"{figures['bytes_per_model_call']:7d} B/call, largest call "
                        f"{figures['largest_model_call_bytes']:7d} B, {figures['events']} events, "
                        f"{figures['seconds']} s",
                        flush=True,
                    )
    write_results("agent_history.json", runs=rows)


if __name__ == "__main__":
    asyncio.run(main([int(a) for a in sys.argv[1:]] or [100, 300]))
