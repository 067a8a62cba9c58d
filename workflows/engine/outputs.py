"""The outputs of container steps as typed dicts (they travel as JSON in step records)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

from workflows.contracts import ExecutionResult, StepStatus
from workflows.dsl.models import WorkflowStep


class ChildFailure(TypedDict):
    step_id: str
    error: dict[str, Any] | None


class ContainerOutput(TypedDict, total=False):
    """A parallel step's output (and a loop body's per iteration): the seed's parallel result."""

    total_steps: int
    successful_steps: int
    failed_steps: int
    success_rate: float
    results: dict[str, Any]
    failures: list[ChildFailure]
    cancelled_steps: int
    """Children cancelled because the container completed without them (`completion`)."""
    running_steps: int
    """Children still running when it completed (`completion` with `cancel_remaining: false`):
    neither successful nor failed, and not in `results`."""


UNFINISHED = (StepStatus.PENDING, StepStatus.RUNNING, StepStatus.WAITING, StepStatus.RETRYING)


class LoopOutput(TypedDict):
    iterations: int
    last: Any
    results: list[Any]
    results_offset: int


def container_output(state: ExecutionResult, children: Sequence[WorkflowStep]) -> ContainerOutput:
    """The seed's parallel result shape over a container's children."""
    results: dict[str, Any] = {}
    failures: list[ChildFailure] = []
    cancelled = unfinished = 0
    for child in children:
        record = state.steps[child.step_id]
        if record.status == StepStatus.CANCELLED:  # its container completed without it
            cancelled += 1
        elif record.status in UNFINISHED:  # still running (completion, cancel_remaining: false)
            unfinished += 1
        elif record.status == StepStatus.FAILED:
            error = record.error
            failures.append(
                {
                    "step_id": child.step_id,
                    "error": error.model_dump(mode="json") if error else None,
                }
            )
        else:
            results[child.step_id] = record.output
    total = len(children)
    successful = total - len(failures) - cancelled - unfinished
    output: ContainerOutput = {
        "total_steps": total,
        "successful_steps": successful,
        "failed_steps": len(failures),
        "success_rate": successful / total if total else 1.0,
        "results": results,
        "failures": failures,
    }
    if cancelled:
        output["cancelled_steps"] = cancelled
    if unfinished:
        output["running_steps"] = unfinished
    return output


def completion_reached(
    state: ExecutionResult, children: Sequence[WorkflowStep], min_successes: int
) -> bool:
    """A `completion` is decided: enough children completed, or too few can still."""
    completed = lost = 0
    for child in children:
        status = state.steps[child.step_id].status
        if status == StepStatus.COMPLETED:
            completed += 1
        elif status in (StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED):
            lost += 1
    return completed >= min_successes or len(children) - lost < min_successes


def completed_count(state: ExecutionResult, children: Sequence[WorkflowStep]) -> int:
    return sum(state.steps[c.step_id].status == StepStatus.COMPLETED for c in children)


class MapFailure(TypedDict):
    index: int
    error: dict[str, Any] | None


class MapOutput(TypedDict):
    """A map step's output: each instance's output in item order (null where it did not
    complete), the failures, and the counts."""

    results: list[Any]
    failed: list[MapFailure]
    completed: int
    total: int


def map_output(state: ExecutionResult, instances: Sequence[WorkflowStep]) -> MapOutput:
    results: list[Any] = []
    failed: list[MapFailure] = []
    completed = 0
    for index, instance in enumerate(instances):
        record = state.steps[instance.step_id]
        if record.status == StepStatus.COMPLETED:
            completed += 1
            results.append(record.output)
            continue
        results.append(None)
        if record.status == StepStatus.FAILED:
            error = record.error.model_dump(mode="json") if record.error else None
            failed.append({"index": index, "error": error})
    return {"results": results, "failed": failed, "completed": completed, "total": len(instances)}
