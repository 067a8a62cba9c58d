"""The saga of a run: completed steps in completion order, and their compensation (the steps'
`rollback_actions`, newest first) when the run fails, times out or is cancelled, or when a
container fails (its own children only). Deterministic code only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from activities.contracts import StepActivityResult
from workflows.contracts import CompensationRecord, ExecutionResult
from workflows.dsl.models import EffectiveRetryPolicy, StepType, WorkflowStep
from workflows.engine.context import Priority, descendants
from workflows.engine.failures import StepFailure

RunAction = Callable[
    [WorkflowStep, str, dict[str, Any], EffectiveRetryPolicy, str, Priority],
    Awaitable[StepActivityResult],
]


class Saga:
    """What to compensate, in order. Steps inside loop bodies are not compensated one by one
    (an iteration's body is not a saga step of the run)."""

    def __init__(self, loop_members: set[str]) -> None:
        self.order: list[str] = []
        self._loop_members = loop_members

    @classmethod
    def of(cls, steps: Iterable[WorkflowStep]) -> Saga:
        """The saga of a run of these steps."""
        members: set[str] = set()
        for step in steps:
            if step.step_type == StepType.LOOP:
                members.update(s.step_id for s in descendants(step))
        return cls(members)

    def completed(self, step_ids: Iterable[str]) -> None:
        self.order.extend(s for s in step_ids if s not in self._loop_members)

    async def compensate(
        self,
        state: ExecutionResult,
        steps: dict[str, WorkflowStep],
        policy: Callable[[WorkflowStep], EffectiveRetryPolicy],
        run_action: RunAction,
        on_change: Callable[[], None],
        only: Sequence[WorkflowStep] | None = None,
    ) -> None:
        """Run rollback_actions of completed steps in reverse completion order.

        Args:
            only: restrict to these steps (a failed container's children); they are then taken
                out of the saga so that they are not compensated twice.
        """
        subset = None if only is None else {s.step_id for s in only}
        for sid in reversed(self.order):
            if subset is not None and sid not in subset:
                continue
            step = steps[sid]
            record = state.steps[sid]
            for action in step.rollback_actions:
                payload = {"step_id": sid, "input": record.input, "output": record.output}
                try:
                    await run_action(step, action, payload, policy(step), "rollback", (0, 0))
                    entry = CompensationRecord(step_id=sid, action=action, status="completed")
                except StepFailure as failure:
                    entry = CompensationRecord(
                        step_id=sid, action=action, status="failed", error=failure.error
                    )
                state.compensations.append(entry)
                on_change()
        if subset is not None:
            self.order = [s for s in self.order if s not in subset]
