"""Cancelling steps while a run goes on: children a container no longer needs (its
`completion` was decided) and steps an operator cancels (`cancel_step`). Deterministic code."""

from __future__ import annotations

import asyncio
import difflib

from activities.contracts import ErrorType
from workflows.contracts import CancelStepInput, ErrorInfo, ExecutionResult, StepStatus
from workflows.dsl.models import WorkflowStep
from workflows.engine.context import descendants

ENDED = (StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED)


class Cancellation:
    """The tasks of running steps, and which of them are being cancelled and why."""

    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Future[None]] = {}
        """Running steps' tasks, by step id."""
        self.unneeded: set[str] = set()
        """Steps cancelled because their container no longer needs them (status cancelled)."""
        self.requests: dict[str, CancelStepInput] = {}
        """Operator cancellations on their way to the step (StepCancelled)."""
        self.batched: list[str] = []
        """Containers and maps whose children run in batch child workflows (in order)."""

    def _elsewhere(self, step_id: str, steps: dict[str, WorkflowStep]) -> str | None:
        """Why `step_id` cannot be cancelled from this run: it runs in a batch child workflow."""
        for container in self.batched:
            inside = {c.step_id for c in descendants(steps[container])}
            if step_id in inside or step_id.startswith(_instance_prefix(steps[container])):
                return (
                    f"step {step_id!r} runs in a batch child workflow of {container!r}: cancel "
                    f"{container!r} instead"
                )
        return None

    def refusal(
        self,
        state: ExecutionResult,
        steps: dict[str, WorkflowStep],
        request: CancelStepInput,
        skipping: bool,
    ) -> str | None:
        """Why `request` may not cancel its step now, or None (the update's validator)."""
        record = state.steps.get(request.step_id)
        if record is None:
            near = difflib.get_close_matches(request.step_id, list(state.steps), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            return f"no step {request.step_id!r} in this run{hint}"
        if record.status in ENDED:
            return (
                f"step {request.step_id!r} has already ended ({record.status.value}): a step "
                "that has ended cannot be cancelled"
            )
        if request.step_id in self.requests or skipping:
            return f"step {request.step_id!r} is already being cancelled or skipped"
        return self._elsewhere(request.step_id, steps)

    def request(self, step: WorkflowStep, request: CancelStepInput, inside: list[str]) -> bool:
        """Cancel the running `step` (its `inside` steps end cancelled too); False when it has
        no running task (it has not started: the caller skips it instead)."""
        task = self.tasks.get(step.step_id)
        if task is None or task.done():
            return False
        self.requests[step.step_id] = request
        self.unneeded.update(inside)
        task.cancel()
        return True

    def operator_failure(self, step: WorkflowStep) -> str | None:
        """The reason of an operator's cancellation that just reached `step`, if one did."""
        request = self.requests.pop(step.step_id, None)
        if request is None:
            return None
        return f"cancelled by {request.by}" + (f": {request.reason}" if request.reason else "")


def unneeded_error(step: WorkflowStep) -> ErrorInfo:
    return ErrorInfo(
        type=ErrorType.CANCELLED,
        message="cancelled: its container completed without it",
        step_id=step.step_id,
        non_retryable=True,
    )


def _instance_prefix(step: WorkflowStep) -> str:
    return f"{step.map.step.step_id}[" if step.map is not None else "\0"
