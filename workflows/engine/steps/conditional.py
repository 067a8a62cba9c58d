"""`conditional` steps: CEL conditions choose a branch, or a model router constrained to the
declared branches (`router`, with `adaptive_routing`); the branches not taken are skipped."""

from __future__ import annotations

from typing import Any

from workflows.agent.graph import choose_branch
from workflows.contracts import StepRecord
from workflows.dsl.expressions import ExpressionError
from workflows.dsl.models import EffectiveRetryPolicy, WorkflowStep
from workflows.engine.context import Priority, StepContext, StepHandler
from workflows.engine.failures import StepFailure, expression_failure
from workflows.engine.steps.agent import step_model_config


class ConditionalStep(StepHandler):
    conditions_are_guards = False  # its conditions choose a branch

    async def run(
        self,
        ctx: StepContext,
        step: WorkflowStep,
        record: StepRecord,
        policy: EffectiveRetryPolicy,
        priority: Priority,
    ) -> Any:
        routed: dict[str, Any] | None = None
        if step.router is not None and ctx.definition.adaptive_routing:
            branches = [f"when {c.when} -> {', '.join(c.next_steps)}" for c in step.conditions]
            choice, routed, _ = await choose_branch(
                step_model_config(ctx, step, step.router.model, policy),
                step.router.instructions,
                branches,
                {"input": ctx.input, "vars": ctx.state.vars},
            )
            if choice is not None:
                index = None if choice == "default" else int(choice)
                return _take_branch(ctx, step, index, [], {**routed, "routed_by": "model"})
            routed["fallback"] = "the model's answer is not a declared branch: conditions decide"
            routed["routed_by"] = "conditions"
        evaluated: list[dict[str, Any]] = []
        chosen: int | None = None
        for k, cond in enumerate(step.conditions):
            try:
                value = ctx.evaluate(cond.when)
            except ExpressionError as exc:
                raise StepFailure(expression_failure(exc, step.step_id)) from None
            evaluated.append({"when": cond.when, "value": value})
            if value is True:
                chosen = k
                break
        return _take_branch(ctx, step, chosen, evaluated, routed)


def _take_branch(
    ctx: StepContext,
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
        ctx.skip_later(target, f"branch not chosen by '{step.step_id}' ({label} won)")
    output: dict[str, Any] = {
        "branch": chosen if chosen is not None else "default",
        "next_steps": list(targets),
        "conditions": evaluated,
    }
    if routed is not None:
        output["router"] = routed
    return output
