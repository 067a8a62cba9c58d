"""Pure analysis of a definition's step graph: edges, cycles, order, critical path, width.

Edges run from a step to the steps it waits for: its `dependencies`, and for targets of a
conditional step, the conditional step itself. The analysis is iterative (no recursion), so a
definition with tens of thousands of steps cannot exhaust the stack.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from activities.contracts import STD_EXECUTION, Execution
from workflows.dsl.models import AdvancedWorkflow, StepType, WorkflowStep


@dataclass(frozen=True)
class Plan:
    """The analysed graph of one level of steps (the top level of a definition)."""

    order: list[str]
    """Step ids in a topological order that keeps definition order where it can."""
    upstream: dict[str, list[str]]
    """step id -> the steps it waits for."""
    downstream: dict[str, list[str]]
    """step id -> the steps that wait for it."""
    critical_path: dict[str, int]
    """step id -> number of steps on the longest path from it to the end, itself included."""
    critical_seconds: dict[str, float]
    """step id -> the longest path from it to the end in measured seconds (each step its median
    of recent runs; a step not measured counts as the median of those measured); with nothing
    measured, the step counts of `critical_path`."""
    width: int
    """Most steps that can run at once if every step took the same time."""

    @property
    def length(self) -> int:
        """Steps on the longest path of the whole graph."""
        return max(self.critical_path.values(), default=0)


def upstream_edges(steps: Sequence[WorkflowStep]) -> dict[str, list[str]]:
    """Map each step id to the ids it waits for (unknown ids are kept; validation reports them)."""
    edges: dict[str, list[str]] = {s.step_id: list(dict.fromkeys(s.dependencies)) for s in steps}
    for step in steps:
        if step.step_type != StepType.CONDITIONAL:
            continue
        targets = [t for c in step.conditions for t in c.next_steps] + list(step.next_steps)
        for target in targets:
            if target in edges and step.step_id not in edges[target]:
                edges[target].append(step.step_id)
    return edges


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Return one cycle as a list of ids (first id repeated at the end), or None."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(edges, white)
    for root in edges:
        if color[root] != white:
            continue
        path: list[str] = []
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            node, index = stack.pop()
            if index == 0:
                color[node] = grey
                path.append(node)
            successors = [d for d in edges[node] if d in edges]
            if index < len(successors):
                stack.append((node, index + 1))
                nxt = successors[index]
                if color[nxt] == grey:
                    cycle = path[path.index(nxt) :]
                    # edges point at what a step waits for; report in execution order
                    cycle.reverse()
                    return [*cycle, cycle[0]]
                if color[nxt] == white:
                    stack.append((nxt, 0))
            else:
                color[node] = black
                path.pop()
    return None


def build_plan(steps: Sequence[WorkflowStep], seconds: Mapping[str, float] | None = None) -> Plan:
    """Analyse a validated, acyclic level of steps (`seconds`: measured step durations).

    Raises:
        ValueError: the graph has a cycle (validation reports it with a better message).
    """
    upstream = upstream_edges(steps)
    for deps in upstream.values():
        deps[:] = [d for d in deps if d in upstream]
    downstream: dict[str, list[str]] = {sid: [] for sid in upstream}
    for sid, deps in upstream.items():
        for dep in deps:
            downstream[dep].append(sid)

    position = {sid: i for i, sid in enumerate(upstream)}
    indegree = {sid: len(deps) for sid, deps in upstream.items()}
    ready = [sid for sid, n in indegree.items() if n == 0]
    order: list[str] = []
    level: dict[str, int] = {}
    heap = [(position[s], s) for s in ready]
    heapq.heapify(heap)
    while heap:
        _, sid = heapq.heappop(heap)
        order.append(sid)
        level[sid] = 1 + max((level[d] for d in upstream[sid]), default=0)
        for nxt in downstream[sid]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                heapq.heappush(heap, (position[nxt], nxt))
    if len(order) != len(upstream):
        raise ValueError("the step graph has a cycle")

    critical: dict[str, int] = {}
    for sid in reversed(order):
        critical[sid] = 1 + max((critical[n] for n in downstream[sid]), default=0)
    weighted: dict[str, float] = {sid: float(n) for sid, n in critical.items()}
    if seconds:
        known = sorted(seconds.values())
        typical = known[len(known) // 2]
        for sid in reversed(order):
            longest = max((weighted[n] for n in downstream[sid]), default=0.0)
            weighted[sid] = seconds.get(sid, typical) + longest
    per_level: dict[int, int] = {}
    for lvl in level.values():
        per_level[lvl] = per_level.get(lvl, 0) + 1
    return Plan(
        order=order,
        upstream=upstream,
        downstream=downstream,
        critical_path=critical,
        critical_seconds=weighted,
        width=max(per_level.values(), default=0),
    )


def execution_of(
    definition: AdvancedWorkflow,
    step: WorkflowStep,
    action: str,
    declared: Mapping[str, Execution] | None,
) -> Execution | None:
    """How `action` runs for `step`: the step's `execution`, else the definition's
    `default_execution`, else the action's declaration (`declared`: the workers' answer; None
    when not known here, then the result is None). A step routed to a capability queue runs
    there, as an activity."""
    if step.execution is not None:
        return step.execution
    if step.agent_capability:
        return "activity"
    if definition.default_execution is not None:
        return definition.default_execution
    if action in STD_EXECUTION:
        return STD_EXECUTION[action]
    return None if declared is None else declared.get(action, "activity")


def executions(
    definition: AdvancedWorkflow, declared: Mapping[str, Execution] | None = None
) -> dict[str, str]:
    """step id -> how each action step runs: `local`, `activity`, or `declared by ACTION` when
    only the workers know (no `declared`)."""
    out: dict[str, str] = {}
    for step in definition.all_steps():
        if step.action:
            how = execution_of(definition, step, step.action, declared)
            out[step.step_id] = how or f"declared by {step.action}"
    return out


@dataclass(frozen=True)
class Analysis:
    """What the seed's orchestrator works out before running: size, shape, strategy."""

    steps: int
    depth: int
    width: int
    critical_path: list[str]
    complexity: float
    strategy: str
    counts: dict[str, int]
    executions: dict[str, str]
    """step id -> local, activity, or `declared by ACTION` (see `executions`)."""

    def as_dict(self) -> dict[str, object]:
        return {
            "steps": self.steps,
            "depth": self.depth,
            "width": self.width,
            "critical_path": self.critical_path,
            "complexity": self.complexity,
            "strategy": self.strategy,
            "step_types": self.counts,
            "execution": self.executions,
        }


def analyse(
    definition: AdvancedWorkflow, declared: Mapping[str, Execution] | None = None
) -> Analysis:
    """Analyse a validated definition (top level; nested steps count in size and complexity;
    `declared`: the actions' declared execution, when the caller has the registry)."""
    plan = build_plan(definition.steps)
    path: list[str] = []
    roots = [sid for sid in plan.order if not plan.upstream[sid]]
    current = max(roots, key=lambda s: plan.critical_path[s], default=None)
    while current is not None:
        path.append(current)
        current = max(plan.downstream[current], key=lambda s: plan.critical_path[s], default=None)
    everything = definition.all_steps()
    counts: dict[str, int] = {}
    for step in everything:
        counts[step.step_type.value] = counts.get(step.step_type.value, 0) + 1
    edges = sum(len(d) for d in plan.upstream.values())
    # A 0..1 score: size, coupling and the control-flow constructs that make a run hard to follow.
    raw = (
        len(everything)
        + edges
        + 3 * counts.get("loop", 0)
        + 2 * counts.get("conditional", 0)
        + 2 * counts.get("parallel", 0)
        + 4 * counts.get("agent", 0)
        + 2 * counts.get("approval", 0)
    )
    complexity = round(raw / (raw + 50), 3)
    if counts.get("approval"):
        strategy = "approval"
    elif counts.get("agent"):
        strategy = "react"
    elif counts.get("conditional"):
        strategy = "conditional"
    elif plan.width > 1 or counts.get("parallel"):
        strategy = "parallel"
    else:
        strategy = "sequential"
    return Analysis(
        steps=len(everything),
        depth=plan.length,
        width=plan.width,
        critical_path=path,
        complexity=complexity,
        strategy=strategy,
        counts=counts,
        executions=executions(definition, declared),
    )
