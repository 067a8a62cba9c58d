"""Reruns of an ended run (`cadenza rerun ID [--from STEP]`): which of the original's steps are
taken over instead of run again, and how a rerun takes them over. Deterministic code only.

A step is reused when it completed in the original and was not compensated there, and it is not
STEP, downstream of STEP, inside one of those, or a container holding one of those (`--from`).
A reused step is settled without starting: its record (and the records of everything inside it)
is copied with `reused_from`, its `output_mapping` writes `vars` again, and it joins the saga,
so a rerun that fails compensates it like any completed step.
"""

from __future__ import annotations

from typing import Any, Protocol

from workflows.contracts import ExecutionResult, StepRecord, StepStatus
from workflows.dsl.expressions import ExpressionError
from workflows.dsl.models import AdvancedWorkflow, WorkflowStep
from workflows.dsl.plan import build_plan
from workflows.engine.context import descendants
from workflows.engine.records import Records
from workflows.engine.saga import Saga
from workflows.engine.steps import HANDLERS


def reusable(
    definition: AdvancedWorkflow, original: ExecutionResult, from_step: str | None = None
) -> dict[str, StepRecord]:
    """The records of `original` a rerun takes over (see the module)."""
    compensated = {c.step_id for c in original.compensations}
    again = _downstream_closure(definition, from_step) if from_step else set()
    out: dict[str, StepRecord] = {}
    for sid, record in original.steps.items():
        base = sid.split("[")[0]
        if record.status != StepStatus.COMPLETED or sid in compensated:
            continue
        if sid in again or base in again or _truncated(record.output):
            continue
        out[sid] = record.model_copy(update={"reused_from": original.execution_id})
    return out


def _downstream_closure(definition: AdvancedWorkflow, from_step: str) -> set[str]:
    """`from_step`, what depends on it (transitively, level by level), everything inside those,
    and the containers holding any of them (with what depends on those in turn)."""
    parents: dict[str, WorkflowStep] = {}
    for step in definition.all_steps():
        for child in step.children():
            parents[child.step_id] = step
    plans = {None: build_plan(definition.steps)} | {
        s.step_id: build_plan(s.parallel_steps) for s in definition.all_steps() if s.parallel_steps
    }
    by_id = {s.step_id: s for s in definition.all_steps()}
    todo, seen = [from_step], set[str]()
    while todo:
        sid = todo.pop()
        if sid in seen:
            continue
        seen.add(sid)
        todo += [d.step_id for d in descendants(by_id[sid])]
        parent = parents.get(sid)
        plan = plans.get(parent.step_id if parent else None)
        if plan is not None and sid in plan.downstream:
            todo += list(plan.downstream[sid])
        if parent is not None:
            todo.append(parent.step_id)
    return seen


def _truncated(output: Any) -> bool:
    """An output the original's result replaced by a marker (too large): run it again."""
    return isinstance(output, dict) and set(output) == {"truncated", "bytes", "reason"}


class RerunTarget(Protocol):
    """What of the interpreter a rerun's reuse needs."""

    steps: dict[str, WorkflowStep]
    state: ExecutionResult
    records: Records
    saga: Saga

    def evaluate(self, source: str, **extra: Any) -> Any: ...

    def add_instances(self, body: WorkflowStep, indexes: range) -> list[WorkflowStep]: ...


class Reuse:
    """The original's records a rerun takes over, taken as their steps become ready."""

    def __init__(self, records: dict[str, StepRecord]) -> None:
        self.records = records

    def settle(self, run: RerunTarget, sid: str) -> bool:
        """Settle `sid` from the original, with everything inside it; False when it runs."""
        if sid not in self.records:
            return False
        step = run.steps[sid]
        inside = [sid, *(d.step_id for d in descendants(step))]
        bodies = {s.map.step for s in (step, *descendants(step)) if s.map is not None}
        for body in bodies:
            for iid in self.records:
                if iid.startswith(f"{body.step_id}[") and iid.endswith("]"):
                    index = int(iid[len(body.step_id) + 1 : -1])
                    run.add_instances(body, range(index, index + 1))
                    inside.append(iid)
        taken = sorted(
            (i for i in inside if i in self.records and i in run.state.steps),
            key=lambda i: self.records[i].ended_at or "",
        )
        for iid in taken:
            run.records.replace(iid, self.records[iid])
            self._write_vars(run, run.steps[iid], self.records[iid])
        run.saga.completed(taken)
        return True

    @staticmethod
    def _write_vars(run: RerunTarget, step: WorkflowStep, record: StepRecord) -> None:
        """The step's output_mapping on its reused output (a mapping that reads names bound
        only while the step ran, a map's item, writes nothing)."""
        scope = HANDLERS[step.step_type].output_scope(record.output)
        if record.recovered_by:
            scope = {"result": record.output}
        for name, expression in step.output_mapping.items():
            try:
                run.state.vars[name] = run.evaluate(expression, **scope)
            except ExpressionError:
                continue
