"""Record the histories replayed by tests/replay: `python -m tests.replay.record [--force]`.

Only cases without a history file are recorded: existing histories stand for runs already in
flight and must keep replaying. When the engine changes its command sequence on purpose, guard
the change with `workflow.patched` and add a case (a new file) rather than re-recording.
Histories of child workflows (batches, loop chains) are saved beside their parent's.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from activities.std import default_registry
from worker.approval_keys import new_pair
from worker.dev.devmode import scratch_session
from workflows.dsl.loader import parse_document
from workflows.dsl.models import EffectiveRetryPolicy, ExecutionOptions
from workflows.engine.mutex import mutex_workflow_id
from workflows.orchestrator import APPROVAL_NODE, TaskInput

ROOT = Path(__file__).resolve().parents[2]
HISTORIES = Path(__file__).resolve().parent / "histories"
INDEX = HISTORIES / "index.json"
# file name -> workflow id: a replay needs the id the history ran under (child ids derive from it)
FAST = {"initial_interval": 0.1, "maximum_interval": 0.2}

SMALL = ExecutionOptions(
    batch_threshold=4, batch_size=3, loop_inline_iterations=3, continue_as_new_every=4
)
MODERATION = parse_document((ROOT / "examples/content-moderation.yaml").read_bytes(), "m.yaml")

CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "order-fulfilment": (
        parse_document((ROOT / "examples/order-fulfilment.yaml").read_bytes(), "order.yaml"),
        {"order_id": "A-1", "amount": 3, "address": "1 Main St", "email": "a@example.org"},
    ),
    "order-fulfilment-compensated": (
        parse_document((ROOT / "examples/order-fulfilment.yaml").read_bytes(), "order.yaml"),
        {"order_id": "A-2", "amount": 3},
    ),
    "data-pipeline": (
        parse_document((ROOT / "examples/data-pipeline.yaml").read_bytes(), "pipeline.yaml"),
        {"rows": [3, 1, 4, 1, 5]},
    ),
    "handlers-guards-timeout": (
        {
            "workflow_id": "replay-mix",
            "retry_policy": FAST,
            "timeout": 3,
            "steps": [
                {
                    "step_id": "a",
                    "action": "std.fail",
                    "error_handlers": ["std.echo"],
                    "retry_policy": {"max_attempts": 2},
                    "rollback_actions": ["std.log"],
                },
                {
                    "step_id": "b",
                    "action": "std.echo",
                    "dependencies": ["a"],
                    "conditions": [{"when": "input.go"}],
                },
                {"step_id": "c", "action": "std.echo", "dependencies": ["b"]},
                {
                    "step_id": "d",
                    "action": "std.sleep",
                    "dependencies": ["a"],
                    "input_mapping": {"seconds": "30"},
                },
            ],
        },
        {"go": False},
    ),
    "content-moderation-publish": (MODERATION, {"text": "hi", "risk": 0.3}),
    "content-moderation-escalate": (MODERATION, {"text": "hi", "risk": 0.9}),
    "children-batches-and-loop": (
        {
            "workflow_id": "replay-children",
            "max_parallel_steps": 4,
            "steps": [
                {
                    "step_id": "fan",
                    "step_type": "parallel",
                    "parallel_steps": [
                        {"step_id": f"c{i}", "action": "std.echo", "input_mapping": {"i": str(i)}}
                        for i in range(7)
                    ],
                },
                {
                    "step_id": "poll",
                    "step_type": "loop",
                    "dependencies": ["fan"],
                    "action": "std.echo",
                    "input_mapping": {"n": "iteration"},
                    "loop_condition": "result.n < 10",
                    "loop_max_iterations": 50,
                },
            ],
        },
        {},
    ),
}
CASES["expense-approval"] = (
    parse_document((ROOT / "examples/expense-approval.yaml").read_bytes(), "e.yaml"),
    {"amount": 12, "employee": "ada"},
)
CASES["approval-reminders-escalation"] = (
    {
        "workflow_id": "replay-approval",
        "steps": [
            {
                "step_id": "sign_off",
                "step_type": "approval",
                "timeout": 2,
                "approval": {
                    "approvers": ["ann"],
                    "on_timeout": "escalate",
                    "escalate_to": ["boss"],
                    "escalation_timeout": 30,
                    "reminder_every": 1,
                },
            }
        ],
    },
    {},
)
CASES["sla-breaches"] = (
    {
        "workflow_id": "replay-sla",
        "sla_targets": {
            "max_duration_seconds": 1.5,
            "step_max_seconds": {"slow": 0.5, "quick": 30},
        },
        "steps": [
            {"step_id": "quick", "action": "std.echo"},
            {
                "step_id": "slow",
                "step_type": "wait",
                "wait": {"seconds": 2},
                "dependencies": ["quick"],
            },
        ],
    },
    {},
)
CASES["agent-research"] = (
    parse_document((ROOT / "examples/research_agent.yaml").read_bytes(), "agent.yaml"),
    {"question": "What is durable execution?"},
)
# the language, second edition: map, completion (a race), a milestone, terminate
CASES["map-race-milestone-terminate"] = (
    {
        "workflow_id": "replay-language",
        "retry_policy": FAST,
        "steps": [
            {
                "step_id": "each",
                "step_type": "map",
                "map": {
                    "items": "input.items",
                    "as": "order",
                    "max_concurrency": 2,
                    "step": {
                        "step_id": "charge",
                        "action": "std.echo",
                        "input_mapping": {"n": "order", "i": "index"},
                        "output_mapping": {"seen": "result.n"},
                    },
                },
            },
            {
                "step_id": "race",
                "step_type": "parallel",
                "completion": {"min_successes": 1},
                "parallel_steps": [
                    {"step_id": "fast", "action": "std.sleep", "input_mapping": {"seconds": "0.1"}},
                    {"step_id": "slow", "action": "std.sleep", "input_mapping": {"seconds": "30"}},
                ],
            },
            {"step_id": "milestone", "step_type": "wait", "wait": {"condition": "has(vars.seen)"}},
            {
                "step_id": "stop",
                "step_type": "terminate",
                "dependencies": ["each", "race", "milestone"],
                "conditions": [{"when": "input.stop"}],
                "terminate": {"status": "completed", "message": "recorded"},
            },
            {"step_id": "never", "action": "std.echo", "dependencies": ["stop"]},
        ],
    },
    {"items": [5, 6, 7, 8, 9], "stop": True},
)
CASES["map-batched"] = (
    {
        "workflow_id": "replay-map-batched",
        "max_parallel_steps": 4,
        "steps": [
            {
                "step_id": "each",
                "step_type": "map",
                "map": {"items": "input.items", "step": {"step_id": "one", "action": "std.echo"}},
            }
        ],
    },
    {"items": list(range(7))},
)
CASES["cancel-step"] = (
    {
        "workflow_id": "replay-cancel-step",
        "retry_policy": FAST,
        "steps": [
            {
                "step_id": "stuck",
                "action": "std.sleep",
                "input_mapping": {"seconds": "30"},
                "error_handlers": ["std.echo"],
            },
            {"step_id": "after", "action": "std.echo", "dependencies": ["stuck"]},
        ],
    },
    {},
)
CASES["event-subworkflow-mutex"] = (
    {
        "workflow_id": "replay-event-subworkflow-mutex",
        "retry_policy": FAST,
        "definitions": {
            "refund": {
                "steps": [
                    {"step_id": "pay_back", "action": "std.echo", "input_mapping": {"a": "input.a"}}
                ]
            }
        },
        "steps": [
            {
                "step_id": "paid",
                "step_type": "event",
                "event": {"name": "payment", "schema": {"type": "object", "required": ["a"]}},
            },
            {
                "step_id": "refund",
                "step_type": "workflow",
                "dependencies": ["paid"],
                "workflow": {"name": "refund"},
                "input_mapping": {"a": "steps.paid.output.data.a"},
            },
            {
                "step_id": "deploy",
                "action": "std.echo",
                "dependencies": ["refund"],
                "mutex": "'replay-deploy'",
            },
        ],
    },
    {},
)
CASES["local-by-default"] = (  # std.echo and std.log declared local; std.sleep an activity
    {
        "workflow_id": "replay-local-by-default",
        "retry_policy": FAST,
        "max_parallel_steps": 2,
        "steps": [
            {"step_id": "a", "action": "std.echo", "input_mapping": {"n": "input.n"}},
            {"step_id": "b", "action": "std.sleep", "input_mapping": {"seconds": "0.05"}},
            {
                "step_id": "c",
                "action": "std.fail",
                "dependencies": ["a", "b"],
                "retry_policy": {"max_attempts": 1},
                "error_handlers": ["std.log"],
            },
            {"step_id": "d", "action": "std.echo", "dependencies": ["c"], "execution": "activity"},
        ],
    },
    {"n": 1},
)
CASES["suspended-skipped"] = (
    {
        "workflow_id": "replay-suspended-skipped",
        "retry_policy": {**FAST, "max_attempts": 2, "on_exhausted": "suspend"},
        "steps": [
            {"step_id": "charge", "action": "std.echo", "rollback_actions": ["std.log"]},
            {"step_id": "sync", "action": "std.fail", "dependencies": ["charge"]},
            {
                "step_id": "notify",
                "action": "std.echo",
                "dependencies": ["sync"],
                "input_mapping": {"done": "steps.sync.output.done"},
            },
        ],
    },
    {},
)
# behind workflow.patched('tags-search-attribute'): the run upserts CadenzaTags at start
CASES["tags-search-attribute"] = (
    {
        "workflow_id": "replay-tags",
        "tags": ["billing", "team:payments"],
        "steps": [
            {"step_id": "charge", "action": "std.echo", "custom_metrics": ["orders:counter"]},
            {
                "step_id": "notify",
                "action": "std.echo",
                "dependencies": ["charge"],
                "metrics_enabled": False,
            },
        ],
    },
    {},
)
OPTIONS = {"children-batches-and-loop": SMALL, "map-batched": SMALL}
# behind workflow.patched('queue-allow-list'): a run with a routed step takes the workers'
# allowed queues into its history (a local activity); no worker polls the queue here, so the
# step fails with NoWorkerForCapability after a second
CASES["queue-allow-list"] = (
    {
        "workflow_id": "replay-queues",
        "steps": [{"step_id": "train", "action": "std.echo", "agent_capability": "replay-gpu"}],
    },
    {},
)
OPTIONS["queue-allow-list"] = ExecutionOptions(schedule_to_start_seconds=1)
# suspended steps: (step, seconds to wait, output of skip_step)
SKIPS = {"suspended-skipped": ("sync", 1.5, {"done": True})}
# event cases: (event name, data, seconds to wait before sending it)
EVENTS = {"event-subworkflow-mutex": ("payment", {"a": 1}, 0.5)}
# mutex workflows whose histories a case records too
MUTEXES = {"event-subworkflow-mutex": ["replay-deploy"]}
# cancel_step cases: (step, by, seconds to wait before cancelling)
CANCELS = {"cancel-step": ("stuck", "ops", 1.0)}
# agentic tasks (AgenticTaskRun): the task, and who approves it (None: no approval)
TASKS: dict[str, tuple[TaskInput, str | None]] = {
    "task-recovery": (
        TaskInput(
            task="Weekly report: sales and inventory",
            tools=["std.echo", "std.fail"],
            model="scripted:task-recovery",
            retry=EffectiveRetryPolicy(max_attempts=1),
        ),
        None,
    ),
    "task-approval": (
        TaskInput(
            task="Refund order 88 (240 EUR)",
            tools=["std.echo"],
            model="scripted:task-approval",
            approvers=["ana"],
        ),
        "ana",
    ),
    # behind workflow.patched('task-parallel-bound'): one subtask at a time, and 1 of 2
    # succeeding meets the default threshold (0.5), so the parallel route completes the task
    "task-parallel-bound": (
        TaskInput(
            task="Weekly report: sales and inventory",
            tools=["std.echo", "std.fail"],
            model="scripted:task-recovery",
            retry=EffectiveRetryPolicy(max_attempts=1),
            max_parallel_steps=1,
        ),
        None,
    ),
}
# behind workflow.patched('task-signed-decisions'): the task takes the workers' trusted approval
# keys at start (a local activity) and accepts only a signed decision (audit: verified_key);
# otherwise the case of task-approval, for another order
TASKS["task-signed-approval"] = (
    TASKS["task-approval"][0].model_copy(update={"task": "Refund order 89 (120 EUR)"}),
    "ana",
)
# cases recorded with trusted approval keys on the worker (a fresh pair; the client signs with it:
# any decision recorded in the same invocation is signed too)
SIGNED = {"task-signed-approval"}
# approval cases: (step, approver, seconds to wait before deciding)
DECISIONS = {
    "expense-approval": ("manager_approval", "maria", 0.5),
    "approval-reminders-escalation": ("sign_off", "boss", 4.0),
    "engine-patch-approval": ("sign", "ann", 0.5),
}
# a run begun with the engine patch (workflows/engine/versions.py): a local step, then an approval
# without a timeout, decided; no patch markers but the engine's
CASES["engine-patch-approval"] = (
    {
        "workflow_id": "replay-engine-patch",
        "steps": [
            {"step_id": "before", "action": "std.echo", "input_mapping": {"n": "input.n"}},
            {"step_id": "sign", "step_type": "approval", "dependencies": ["before"]},
            {"step_id": "after", "action": "std.log", "dependencies": ["sign"]},
        ],
    },
    {"n": 2},
)


async def save(name: str, handle: Any, index: dict[str, str]) -> Any:
    """Write the history of `handle` as NAME.json and index it under its workflow id."""
    history = await handle.fetch_history()
    (HISTORIES / f"{name}.json").write_text(history.to_json())
    index[f"{name}.json"] = handle.id
    return history


async def main() -> None:
    if "--force" in sys.argv or any(not (HISTORIES / f"{n}.json").exists() for n in SIGNED):
        signing, trusted = new_pair("replay")
        os.environ["CADENZA_APPROVAL_SIGNING_KEY"], os.environ["CADENZA_APPROVAL_KEYS"] = (
            signing,
            trusted,
        )
    async with scratch_session(default_registry()) as cadenza:
        client = cadenza.client
        index = json.loads(INDEX.read_text()) if INDEX.exists() else {}
        for name, (definition, run_input) in CASES.items():
            if (HISTORIES / f"{name}.json").exists() and "--force" not in sys.argv:
                continue
            handle = await cadenza.start(
                definition, run_input, execution_id=f"replay-{name}", options=OPTIONS.get(name)
            )
            if name in DECISIONS:
                step, by, delay = DECISIONS[name]
                await asyncio.sleep(delay)
                await cadenza.approve(handle.id, step, by, "recorded")
            if name in EVENTS:
                event, data, delay = EVENTS[name]
                await asyncio.sleep(delay)
                await cadenza.send_event(handle.id, event, data, "recorder")
            if name in SKIPS:
                step, delay, output = SKIPS[name]
                await asyncio.sleep(delay)
                await cadenza.skip_step(handle.id, step, "recorder", output)
            if name in CANCELS:
                step, by, delay = CANCELS[name]
                await asyncio.sleep(delay)
                await cadenza.cancel_step(handle.id, step, by, "recorded")
            result = await cadenza.result(handle.id)
            history = await save(name, handle, index)
            print(f"{name}: {result.status.value}, {len(history.events)} events")
            async for child in client.list_workflows(f"WorkflowId STARTS_WITH '{handle.id}.'"):
                child_handle = client.get_workflow_handle(child.id, run_id=child.run_id)
                child_history = await child_handle.fetch_history()
                suffix = f"{child.id[len(handle.id) + 1 :]}-{child.run_id[:8]}"
                (HISTORIES / f"{name}--{suffix}.json").write_text(child_history.to_json())
                index[f"{name}--{suffix}.json"] = child.id
                print(f"  child {suffix}: {len(child_history.events)} events")
            for mutex in MUTEXES.get(name, []):
                lock = client.get_workflow_handle(mutex_workflow_id(mutex))
                await lock.result()
                await save(f"{name}--mutex", lock, index)
        for name, (request, approver) in TASKS.items():
            if (HISTORIES / f"{name}.json").exists() and "--force" not in sys.argv:
                continue
            task = await cadenza.start_task(request, execution_id=f"replay-{name}")
            if approver is not None:
                await asyncio.sleep(1.0)
                await cadenza.approve(task.id, APPROVAL_NODE, approver, "recorded")
            outcome = await cadenza.task_result(task.id)
            history = await save(name, task, index)
            print(f"{name}: {outcome.status} {outcome.route}, {len(history.events)} events")
        INDEX.write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
