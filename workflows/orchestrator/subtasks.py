"""How the orchestrator runs a list of subtasks (parallel_executor, a conditional branch).

Deterministic code only. Each subtask `{tool, args, capability?}` is one tool call (an
activity, workflows/agent/graph.py: call_tool): at most `max_parallel_steps` at once, each routed
to `cadenza.<capability>` when the analysis gave it a capability the task declared (with the
task's schedule-to-start bound, so a queue no worker polls fails the subtask with
NoWorkerForCapability instead of waiting forever). The subtasks succeed together when the
fraction that succeeded reaches the retry policy's `parallel_failure_threshold` (0.5 by default,
as for parallel steps); below it the state gets an `error` and recovery runs.

Runs started before this (no `task-parallel-bound` marker in their history) keep the old
behaviour on replay: everything at once, on the task's queue, any failure an error.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow

from activities.contracts import TASK_QUEUE_PREFIX, ErrorType
from workflows.agent.graph import ModelCallConfig, ToolCall, call_tool
from workflows.dsl.models import EffectiveRetryPolicy

PATCH = "task-parallel-bound"
MAX_PARALLEL_STEPS = 10
"""Default of TaskInput.max_parallel_steps (the seed's AdvancedWorkflow default)."""
SCHEDULE_TO_START_SECONDS = 300.0
"""Default of TaskInput.schedule_to_start_seconds (as ExecutionOptions' for steps)."""


async def run_subtasks(
    state: dict[str, Any], subtasks: list[dict[str, Any]], label: str
) -> dict[str, Any]:
    """Run `subtasks`; the state update: their trace entries, and `done` or `error`."""
    config = state["config"]
    calls = [
        {"name": s["tool"], "args": s["args"], "id": f"{label}_{i}"} for i, s in enumerate(subtasks)
    ]
    update: dict[str, Any] = {"usage": state.get("usage", {})}
    if not workflow.patched(PATCH):
        done = await asyncio.gather(*(call_tool(config, c) for c in calls))
        entries = [entry for _, entry in done]
        update["trace"] = [*state.get("trace", []), *entries]
        failed = [e for e in entries if "error" in e]
        if failed:
            first = failed[0]
            update["error"] = f"{label}: tool {first['tool']} failed: {first['error']}"[:500]
        else:
            update["done"] = True
        return update
    slots = asyncio.Semaphore(config.get("max_parallel_steps") or MAX_PARALLEL_STEPS)

    async def bounded(call: dict[str, Any], capability: str | None) -> ToolCall:
        async with slots:
            _, entry = await call_tool(_routed(config, capability), call)
        if capability:
            entry["queue"] = TASK_QUEUE_PREFIX + capability
        return entry

    entries = list(
        await asyncio.gather(
            *(bounded(c, s.get("capability")) for c, s in zip(calls, subtasks, strict=True))
        )
    )
    update["trace"] = [*state.get("trace", []), *entries]
    update.update(_outcome(config, entries, label))
    return update


def _routed(config: ModelCallConfig, capability: str | None) -> ModelCallConfig:
    if not capability:
        return config
    routed: dict[str, Any] = {
        **config,
        "task_queue": TASK_QUEUE_PREFIX + capability,
        "schedule_to_start": config.get("schedule_to_start") or SCHEDULE_TO_START_SECONDS,
    }
    return routed  # type: ignore[return-value]


def _outcome(config: ModelCallConfig, entries: list[ToolCall], label: str) -> dict[str, Any]:
    """`done` with a summary when enough subtasks succeeded, else an `error` naming the first
    failure and the threshold."""
    threshold = EffectiveRetryPolicy.model_validate(config["retry"]).parallel_failure_threshold
    total = len(entries)
    failed = [e for e in entries if "error" in e]
    succeeded = total - len(failed)
    rate = succeeded / total if total else 1.0
    summary = f"{label}: {succeeded} of {total} subtasks succeeded ({rate:.0%})"
    if failed:
        summary += f"; first failure: tool {failed[0]['tool']}: {failed[0]['error']}"
    if rate < threshold:
        error = f"{ErrorType.PARALLEL_THRESHOLD}: {summary}; the threshold is {threshold:.0%}"
        return {"error": error[:500]}
    return {"done": True, "answer": summary[:500]}
