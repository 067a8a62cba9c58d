"""`make demo`: the embedded server, an in-process worker, and the examples end to end."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from activities.std import default_registry
from worker.cli.base import exit_now
from worker.cli.render import result_view, task_view, ui_link
from worker.definition_files import load_definition
from worker.dev.devmode import dev_session, quiet_sdk_logs
from worker.settings import Settings
from workflows.dsl.models import EffectiveRetryPolicy, WorkflowState
from workflows.orchestrator import TaskInput

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ORDER = {"order_id": "A-1001", "amount": 42.5, "address": "1 Main St", "email": "ada@example.org"}
# (example, input, the outcome the demo expects)
RUNS: list[tuple[str, dict[str, Any], WorkflowState]] = [
    ("order-fulfilment.yaml", ORDER, WorkflowState.COMPLETED),
    ("data-pipeline.yaml", {"rows": [3, 1, 4, 1, 5, 9, 2, 6]}, WorkflowState.COMPLETED),
    # no address: shipping fails its input schema, the saga compensates stock and payment
    ("order-fulfilment.yaml", {"order_id": "A-1002", "amount": 7}, WorkflowState.FAILED),
    # an agent step (LangGraph ReAct loop) with the offline scripted model: two tools, an answer
    (
        "research_agent.yaml",
        {"question": "What is durable execution?"},
        WorkflowState.COMPLETED,
    ),
]

PIPELINE = {
    "order_id": "A-1003",
    "warehouse": "berlin",
    "items": [{"sku": "tea", "quantity": 2}, {"sku": "cup", "quantity": 1}],
}
# events the demo sends to a run, as a payment provider's webhook would: (name, data, by)
EVENTS: dict[str, tuple[str, dict[str, Any], str]] = {
    "order-pipeline.yaml": ("payment", {"amount": 42.5, "reference": "psp-77"}, "psp"),
}
RUNS.append(("order-pipeline.yaml", PIPELINE, WorkflowState.COMPLETED))

DEMO_TASK = TaskInput(
    task="Weekly report: sales and inventory",
    tools=["std.echo", "std.fail"],
    model="scripted:task-recovery",
    retry=EffectiveRetryPolicy(max_attempts=1),
)


async def demo() -> int:
    console = Console()
    registry = default_registry()
    failures = 0
    settings = Settings(llm_scripts=EXAMPLES / "scripts")
    async with dev_session(settings, registry, say=console.print) as cadenza:
        for name, run_input, expected in RUNS:
            definition = load_definition(EXAMPLES / name)
            started = time.perf_counter()
            handle = await cadenza.start(definition, run_input, known_actions=registry.names())
            console.rule(f"{name}: {handle.id}")
            if name in EVENTS:
                event, data, by = EVENTS[name]
                sent = await cadenza.send_event(handle.id, event, data, by)
                where = sent.consumed_by or "kept until its step waits"
                console.print(f"sent the {event} event ({where})", highlight=False)
            result = await cadenza.result(handle.id)
            console.print(result_view(result))
            console.print(
                f"took {time.perf_counter() - started:.2f} s; in the Web UI (while a server "
                f"runs): {ui_link(cadenza, handle.id)}",
                highlight=False,
            )
            if result.status != expected:
                failures += 1
                console.print(f"[red]expected {expected.value}, got {result.status.value}[/red]")
        # an agentic task: the orchestrator graph analyses it, runs two tools in parallel, one
        # fails, error_recovery switches to the react route, which finishes it
        started = time.perf_counter()
        task_handle = await cadenza.start_task(DEMO_TASK)
        console.rule(f"agentic task: {task_handle.id}")
        task = await cadenza.task_result(task_handle.id)
        console.print(task_view(task))
        console.print(f"took {time.perf_counter() - started:.2f} s", highlight=False)
        if task.route != ["parallel", "error", "react", "complete"]:
            failures += 1
            console.print(f"[red]unexpected route {task.route}[/red]")
    console.print(
        "\nNext: `cadenza server` keeps a server (and its Web UI on http://localhost:8233) "
        "running; `cadenza worker` serves it; `cadenza run FILE --wait` starts runs."
    )
    return 1 if failures else 0


if __name__ == "__main__":
    quiet_sdk_logs()
    exit_now(asyncio.run(demo()))
