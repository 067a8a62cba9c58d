"""Steps a model may decide: `conditional` (CEL conditions, or a model router constrained to
the declared branches) and `agent` (the LangGraph ReAct loop of workflows/reasoning.py).
Deterministic code only; a mixin of `Runner`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.contracts import TASK_QUEUE_PREFIX, ErrorType
    from workflows.dsl.expressions import ExpressionError
    from workflows.dsl.models import EffectiveRetryPolicy, StepRecord, WorkflowStep
    from workflows.failures import StepFailure, activity_failure, expression_failure
    from workflows.reasoning import AgentState, choose_branch, run_agent

if TYPE_CHECKING:
    from workflows.runner import Priority, Runner


async def conditional(
    runner: Runner, step: WorkflowStep, policy: EffectiveRetryPolicy
) -> dict[str, Any]:
    routed: dict[str, Any] | None = None
    if step.router is not None and runner.definition.adaptive_routing:
        branches = [f"when {c.when} -> {', '.join(c.next_steps)}" for c in step.conditions]
        choice, routed, _ = await choose_branch(
            model_config(runner, step, step.router.model, policy),
            step.router.instructions,
            branches,
            {"input": runner.input, "vars": runner.state.vars},
        )
        if choice is not None:
            index = None if choice == "default" else int(choice)
            return _take_branch(runner, step, index, [], {**routed, "routed_by": "model"})
        routed["fallback"] = "the model's answer is not a declared branch: conditions decide"
        routed["routed_by"] = "conditions"
    evaluated: list[dict[str, Any]] = []
    chosen: int | None = None
    for k, cond in enumerate(step.conditions):
        try:
            value = runner.evaluate(cond.when)
        except ExpressionError as exc:
            raise StepFailure(expression_failure(exc, step.step_id)) from None
        evaluated.append({"when": cond.when, "value": value})
        if value is True:
            chosen = k
            break
    return _take_branch(runner, step, chosen, evaluated, routed)


def _take_branch(
    runner: Runner,
    step: WorkflowStep,
    chosen: int | None,
    evaluated: list[dict[str, Any]],
    routed: dict[str, Any] | None,
) -> dict[str, Any]:
    """Skip the branches not taken; the conditional step's output."""
    targets = step.conditions[chosen].next_steps if chosen is not None else step.next_steps
    every = {t for c in step.conditions for t in c.next_steps} | set(step.next_steps)
    label = f"conditions[{chosen}]" if chosen is not None else "the default branch"
    for target in sorted(every - set(targets)):
        runner.branch_skips[target] = f"branch not chosen by '{step.step_id}' ({label} won)"
    output: dict[str, Any] = {
        "branch": chosen if chosen is not None else "default",
        "next_steps": list(targets),
        "conditions": evaluated,
    }
    if routed is not None:
        output["router"] = routed
    return output


async def agent(
    runner: Runner,
    step: WorkflowStep,
    record: StepRecord,
    policy: EffectiveRetryPolicy,
    prio: Priority,
) -> dict[str, Any]:
    """A LangGraph ReAct loop (workflows/reasoning.py): model and tool calls are activities."""
    spec = step.agent
    assert spec is not None  # validated
    params = runner.step_params(step)
    record.input = params
    strings = [v for v in params.values() if isinstance(v, str)]
    task = strings[0] if len(params) == 1 and strings else json.dumps(params, default=str)
    initial: AgentState = {
        "messages": [
            {"role": "system", "content": spec.instructions},
            {"role": "user", "content": task or "Begin."},
        ],
        "iterations": 0,
        "usage": {},
        "trace": [],
        "config": {
            **model_config(runner, step, spec.model, policy),
            "tools": list(spec.tools),
            "max_iterations": spec.max_iterations,
            "max_context_bytes": spec.max_context_bytes,
        },
    }
    await runner.slot_for_step(prio)
    try:
        final = await run_agent(initial, spec.max_iterations)
    except ActivityError as exc:
        raise StepFailure(*activity_failure(exc, step.step_id, policy)) from None
    finally:
        runner.slots.release()
    record.attempts = 1
    if final.get("limit_hit"):
        raise StepFailure.of(
            step,
            ErrorType.AGENT_LIMIT_EXCEEDED,
            f"the model still called tools after max_iterations={spec.max_iterations} turns",
            attempts=1,
        )
    replies = [m for m in final["messages"] if m.get("role") == "assistant"]
    answer: dict[str, Any] = replies[-1] if replies else {}
    return {
        "answer": answer.get("content", ""),
        "iterations": final.get("iterations", 0),
        "tool_calls": final.get("trace", []),
        "usage": final.get("usage", {}),
        "model_calls": final.get("calls", []),
    }


def model_config(
    runner: Runner, step: WorkflowStep, model: str | None, policy: EffectiveRetryPolicy
) -> dict[str, Any]:
    """How a step's model and tool activities run (workflows/reasoning.py)."""
    capability = step.agent_capability
    return {
        "step_id": step.step_id,
        "workflow_id": runner.definition.workflow_id,
        "model": model,
        "timeout": step.timeout,
        "task_queue": TASK_QUEUE_PREFIX + capability if capability else None,
        "retry": policy.model_dump(mode="json"),
    }
