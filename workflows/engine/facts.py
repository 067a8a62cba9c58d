"""What a run learns from its workers when it starts, and how a step's execution follows from it.

Two facts live on the workers, not in the definition: how each action declared it runs
(`@action(..., execution="local")` for short idempotent actions) and how long each step took in
recent runs (the monitor's baselines). A run that needs either asks once, through the local
activity `cadenza.run.facts`, so the answer is in its history and a replay never asks again.
The answer travels in `ExecutionOptions` to the run's batch and loop children.

A run needs no question when every action it runs is built in (`STD_EXECUTION`), when the
definition sets `default_execution` or each step its `execution`, and when it has no slot limit
to order steps for.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field
from temporalio import workflow

from activities.contracts import Execution
from workflows.contracts import ExecutionOptions
from workflows.dsl import plan
from workflows.dsl.models import AdvancedWorkflow, StepType, WorkflowStep
from workflows.engine import versions

FACTS_ACTIVITY = "cadenza.run.facts"
"""The local activity a run asks at start (worker/run_facts.py)."""

FACTS_PATCH = "run-facts"
"""Runs started before actions could declare their execution run every action as an activity."""


class FactsRequest(BaseModel):
    """Input of `cadenza.run.facts`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    workflow_id: str = Field(description="The definition whose step durations are wanted.")
    actions: list[str] = Field(default_factory=list, description="Actions to describe.")
    steps: list[str] = Field(
        default_factory=list, description="Steps whose recent durations are wanted (p50)."
    )


class RunFacts(BaseModel):
    """Result of `cadenza.run.facts`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    executions: dict[str, Execution] = Field(
        default_factory=dict, description="Declared execution of each described action served."
    )
    seconds: dict[str, float] = Field(
        default_factory=dict, description="step id -> median duration in recent runs."
    )


def _actions(step: WorkflowStep) -> list[str]:
    names = [*step.error_handlers, *step.rollback_actions]
    if step.action:
        names.append(step.action)
    if step.approval is not None:
        names.append(step.approval.reminder_action)
    return names


def _undecided(
    definition: AdvancedWorkflow, steps: list[WorkflowStep], known: dict[str, Execution]
) -> list[str]:
    """Actions whose execution only the workers' declarations decide, and not known yet."""
    names = {
        name
        for step in steps
        for name in _actions(step)
        if plan.execution_of(definition, step, name, None) is None
    }
    return sorted(names - known.keys())


def _wants_durations(definition: AdvancedWorkflow, steps: list[WorkflowStep]) -> bool:
    """Priorities decide something only when steps wait for a slot."""
    if not definition.optimization_enabled:
        return False
    runnable = [s for s in steps if s.step_type != StepType.PARALLEL]
    return len(runnable) > definition.max_parallel_steps


async def learn(definition: AdvancedWorkflow, options: ExecutionOptions) -> ExecutionOptions:
    """The run's options with what its workers know, asking them only what the run needs (a
    sub-workflow inherits what its parent learned of actions). A run whose history predates
    `FACTS_PATCH` keeps its options: every action an activity, priorities by step counts."""
    everything = definition.all_steps()
    known = dict(options.action_execution or {})
    actions = _undecided(definition, everything, known)
    steps = [s.step_id for s in everything] if _wants_durations(definition, everything) else []
    defaults = any(s.execution is None and not s.agent_capability for s in everything)
    if not (actions or steps or defaults) or not versions.patched(FACTS_PATCH):
        return options
    facts = RunFacts()
    if actions or steps:
        facts = await workflow.execute_local_activity(
            FACTS_ACTIVITY,
            FactsRequest(workflow_id=definition.workflow_id, actions=actions, steps=steps),
            result_type=RunFacts,
            start_to_close_timeout=timedelta(seconds=10),
            summary="actions' execution and steps' durations",
        )
    return options.model_copy(
        update={"action_execution": {**known, **facts.executions}, "step_seconds": facts.seconds}
    )


def execution_of(
    definition: AdvancedWorkflow, step: WorkflowStep, action: str, options: ExecutionOptions
) -> Execution:
    """How `action` runs for `step` (`workflows.dsl.plan.execution_of` over what the workers
    declared); in a run that predates declarations, as the step says or as an activity."""
    if options.action_execution is None:
        return step.execution or "activity"
    return plan.execution_of(definition, step, action, options.action_execution) or "activity"
