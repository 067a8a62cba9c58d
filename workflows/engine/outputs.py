"""The outputs of container steps as typed dicts (they travel as JSON in step records)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

from workflows.contracts import ExecutionResult, StepStatus
from workflows.dsl.models import WorkflowStep


class ChildFailure(TypedDict):
    step_id: str
    error: dict[str, Any] | None


class ContainerOutput(TypedDict):
    """A parallel step's output (and a loop body's per iteration): the seed's parallel result."""

    total_steps: int
    successful_steps: int
    failed_steps: int
    success_rate: float
    results: dict[str, Any]
    failures: list[ChildFailure]


class LoopOutput(TypedDict):
    iterations: int
    last: Any
    results: list[Any]
    results_offset: int


def container_output(state: ExecutionResult, children: Sequence[WorkflowStep]) -> ContainerOutput:
    """The seed's parallel result shape over a container's children."""
    results: dict[str, Any] = {}
    failures: list[ChildFailure] = []
    for child in children:
        record = state.steps[child.step_id]
        if record.status == StepStatus.FAILED:
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
    return {
        "total_steps": total,
        "successful_steps": total - len(failures),
        "failed_steps": len(failures),
        "success_rate": (total - len(failures)) / total if total else 1.0,
        "results": results,
        "failures": failures,
    }


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
