"""What a step type may do to the run it belongs to (`StepContext`), and what a step type is
(`StepHandler`). Deterministic code only.

The interpreter (`workflows.engine.interpreter.Interpreter`) owns the run's state and schedules
steps; each step type (`workflows.engine.steps`) is a `StepHandler` that runs one step through
the `StepContext` the interpreter hands it. A handler never touches the interpreter's private
state: what it may do is listed here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from activities.contracts import StepActivityResult
from workflows.contracts import (
    ChildResult,
    ErrorInfo,
    ExecutionOptions,
    ExecutionResult,
    ScopeSnapshot,
    StepDecision,
    StepRecord,
    StepStatus,
    Termination,
)
from workflows.dsl.models import AdvancedWorkflow, EffectiveRetryPolicy, WorkflowStep
from workflows.dsl.plan import Plan

Priority = tuple[float, int]
"""Slot priority of a step: lowest first (minus its critical-path length, definition order)."""


class Suspender(Protocol):
    """Where a step that used up its retries waits for an operator (`on_exhausted: suspend`;
    `workflows.engine.suspension.Suspensions`)."""

    async def suspend(
        self, ctx: StepContext, step: WorkflowStep, record: StepRecord, error: ErrorInfo
    ) -> StepDecision: ...


class StepContext(Protocol):
    """The run as a step type sees it."""

    @property
    def suspensions(self) -> Suspender:
        """Where a step that used up its retries waits (`on_exhausted: suspend`)."""

    definition: AdvancedWorkflow
    state: ExecutionResult
    input: dict[str, Any]
    options: ExecutionOptions
    loop_root: str | None
    """In a loop child workflow: the loop step that continues as new instead of handing off."""

    # -- expressions
    def evaluate(self, source: str, **extra: Any) -> Any:
        """Evaluate a CEL expression over input, vars, steps, now (and loop names in `extra`)."""

    def step_params(self, step: WorkflowStep, **extra: Any) -> dict[str, Any]:
        """The step's `input_mapping` evaluated; an expression error fails the step."""

    # -- the step's lifecycle
    def mark_running(self, step: WorkflowStep, record: StepRecord) -> None:
        """The step started running (span, SLA timer, status)."""

    def mark_waiting(self, step: WorkflowStep, record: StepRecord) -> None:
        """The step waits for people (not counted as running)."""

    def done_waiting(self, step: WorkflowStep, record: StepRecord) -> None:
        """The step no longer waits for people."""

    def set_status(self, record: StepRecord, status: StepStatus) -> None:
        """Change a step's status (the counts and everything that follows it)."""

    def changed(self) -> None:
        """Something visible changed (the Web UI's details, the waiting search attribute)."""

    def skip_later(self, step_id: str, reason: str) -> None:
        """When `step_id` becomes ready it is skipped with `reason` (a branch not taken)."""

    def reset(self, step_id: str) -> None:
        """Make a settled step pending again (the next loop iteration)."""

    def members(self, step: WorkflowStep) -> list[WorkflowStep]:
        """The steps inside `step` at any depth, a map's instances in place of its body."""

    def add_instances(self, body: WorkflowStep, indexes: range) -> list[WorkflowStep]:
        """The instances `<id>[i]` of a map's body for `indexes`, each with a pending record."""

    async def run_instance(
        self, instance: WorkflowStep, bindings: dict[str, Any], priority: Priority
    ) -> None:
        """Run one instance of a map's body (never raises but on cancellation)."""

    def terminate(self, termination: Termination) -> None:
        """End the run: every level stops, running steps are cancelled, the rest skipped."""

    @property
    def terminated(self) -> bool:
        """A terminate step has ended the run."""

    # -- activities and slots
    def slot(self, priority: Priority) -> AbstractAsyncContextManager[None]:
        """Hold one of `max_parallel_steps` slots to start a step's work (none while paused)."""

    async def call_activity(
        self,
        step: WorkflowStep,
        action: str,
        params: dict[str, Any],
        policy: EffectiveRetryPolicy,
        role: str,
    ) -> StepActivityResult:
        """Run `action` as an activity for `step` (the caller holds a slot)."""

    async def run_action(
        self,
        step: WorkflowStep,
        action: str,
        params: dict[str, Any],
        policy: EffectiveRetryPolicy,
        role: str,
        priority: Priority,
    ) -> StepActivityResult:
        """Run `action` as an activity for `step`, taking a slot for it."""

    # -- containers and child workflows
    def plan(self, key: str | None) -> Plan:
        """The dependency plan of container `key` (None: the top level)."""

    async def run_level(
        self, key: str | None, fail_fast: bool, until: Callable[[], bool] | None = None
    ) -> None:
        """Run the children of container `key` (None: the top level) until all are settled, or
        until `until()` holds (what runs then is cancelled, with status `cancelled`)."""

    def cancelling(self, step_id: str) -> None:
        """`step_id` is about to be cancelled because its container completed without it."""

    def cancel_unstarted(self, steps: Sequence[WorkflowStep], reason: str) -> None:
        """Mark the steps that never started `cancelled` (their container completed)."""

    def runs_in_batches(self, step: WorkflowStep) -> None:
        """`step`'s children run in batch child workflows (so they cannot be cancelled alone)."""

    def keep_running(self, work: asyncio.Future[Any], owner: str) -> None:
        """Work the run waits for before it ends, though its step (`owner`) has completed."""

    async def finish_kept(self, owners: Sequence[WorkflowStep]) -> None:
        """Wait for the work these steps left running (`keep_running`), e.g. before a loop
        runs its body again."""

    def snapshot(self) -> ScopeSnapshot:
        """What a child workflow's expressions may read."""

    async def run_child(
        self, workflow_type: str, request: Any, suffix: str, summary: str
    ) -> ChildResult:
        """Run a batch or loop child workflow (id: this run's id, `suffix`, a counter)."""

    def absorb(self, result: ChildResult) -> None:
        """Merge what a child workflow did into this run's state."""

    async def compensate(self, only: Sequence[WorkflowStep] | None = None) -> None:
        """Run the rollback actions of completed steps (of `only`), newest first."""


class StepHandler:
    """One step type: how a step of that type runs, and what the scheduler must know of it."""

    marks_running_itself = False
    """True when the step is running only once it holds a slot (an action step); otherwise the
    interpreter marks it running when it starts."""

    conditions_are_guards = True
    """False when the step's `conditions` choose a branch instead of guarding the step."""

    async def run(
        self,
        ctx: StepContext,
        step: WorkflowStep,
        record: StepRecord,
        policy: EffectiveRetryPolicy,
        priority: Priority,
    ) -> Any:
        """Run the step; return its output or raise `StepFailure`."""
        raise NotImplementedError

    def output_scope(self, output: Any) -> dict[str, Any]:
        """The names the step's `output_mapping` sees."""
        return {"result": output}


def descendants(step: WorkflowStep) -> list[WorkflowStep]:
    """Every step nested in a container, at any depth."""
    out: list[WorkflowStep] = []
    stack = list(step.children())
    while stack:
        child = stack.pop()
        out.append(child)
        stack.extend(child.children())
    return out
