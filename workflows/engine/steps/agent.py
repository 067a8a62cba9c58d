"""`agent` steps: the LangGraph ReAct loop of `workflows.agent.graph`, whose model and tool
calls are activities retried and timed out with the step's policy."""

from __future__ import annotations

import json
from typing import Any

from temporalio.exceptions import ActivityError

from activities.contracts import ErrorType
from workflows.agent.graph import AgentState, ModelCallConfig, model_call_config, run_agent
from workflows.contracts import StepRecord
from workflows.dsl.models import EffectiveRetryPolicy, WorkflowStep
from workflows.engine.context import Priority, StepContext, StepHandler
from workflows.engine.failures import StepFailure, activity_failure


class AgentStep(StepHandler):
    async def run(
        self,
        ctx: StepContext,
        step: WorkflowStep,
        record: StepRecord,
        policy: EffectiveRetryPolicy,
        priority: Priority,
    ) -> Any:
        spec = step.agent
        assert spec is not None  # validated
        params = ctx.step_params(step)
        record.input = params
        strings = [v for v in params.values() if isinstance(v, str)]
        task = strings[0] if len(params) == 1 and strings else json.dumps(params, default=str)
        config = step_model_config(ctx, step, spec.model, policy)
        config["tools"] = list(spec.tools)
        config["max_iterations"] = spec.max_iterations
        config["max_context_bytes"] = spec.max_context_bytes
        initial: AgentState = {
            "messages": [
                {"role": "system", "content": spec.instructions},
                {"role": "user", "content": task or "Begin."},
            ],
            "iterations": 0,
            "usage": {},
            "trace": [],
            "config": config,
        }
        async with ctx.slot(priority):
            try:
                final = await run_agent(initial, spec.max_iterations)
            except ActivityError as exc:
                raise StepFailure(*activity_failure(exc, step.step_id, policy)) from None
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


def step_model_config(
    ctx: StepContext, step: WorkflowStep, model: str | None, policy: EffectiveRetryPolicy
) -> ModelCallConfig:
    """How a step's model and tool activities run (`workflows.agent.graph`)."""
    return model_call_config(
        step_id=step.step_id,
        workflow_id=ctx.definition.workflow_id,
        model=model,
        timeout=step.timeout,
        capability=step.agent_capability,
        retry=policy,
    )
