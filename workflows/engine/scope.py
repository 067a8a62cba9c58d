"""What a run's expressions see: `input`, `vars`, `steps.<id>.{status, output}`, `now`, and in
loops `iteration` and `result`. Deterministic code only."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from workflows.contracts import ExecutionResult, ScopeSnapshot
from workflows.dsl.expressions import ExpressionError, compile_expression
from workflows.dsl.models import WorkflowStep
from workflows.engine.failures import StepFailure, expression_failure


class Scope:
    """The names of one run (or of a child workflow, seeded from its parent's snapshot)."""

    def __init__(
        self, run_input: dict[str, Any], state: ExecutionResult, seed: ScopeSnapshot | None
    ) -> None:
        self.input = run_input
        self.state = state
        self.steps: dict[str, dict[str, Any]] = dict(seed.steps) if seed is not None else {}
        """`steps.<id>` as expressions see it: settled steps' status and output."""
        self.bound: dict[str, dict[str, Any]] = {}

    def settled(self, step_id: str, status: str, output: Any) -> None:
        self.steps[step_id] = {"status": status, "output": output}

    def bind(self, step_id: str, names: dict[str, Any]) -> None:
        """Names one step's expressions see besides the run's (a map instance's item, index)."""
        self.bound[step_id] = names

    def snapshot(self) -> ScopeSnapshot:
        """What a child workflow's expressions may read."""
        return ScopeSnapshot(input=self.input, vars=self.state.vars, steps=self.steps)

    def evaluate(self, source: str, **extra: Any) -> Any:
        expression = compile_expression(source)
        scope: dict[str, Any] = {}
        for name in expression.names:
            if name == "input":
                scope[name] = self.input
            elif name == "vars":
                scope[name] = self.state.vars
            elif name == "steps":
                if expression.steps_dynamic:
                    scope[name] = self.steps
                else:  # only what it reads: converting every step's output costs O(steps)
                    view = self.steps
                    scope[name] = {s: view[s] for s in expression.step_references if s in view}
            elif name == "now":
                scope[name] = workflow.now()
            elif name in extra:  # loop names, a map's item and index (validated per step)
                scope[name] = extra[name]
        return expression.evaluate(scope)

    def step_params(self, step: WorkflowStep, **extra: Any) -> dict[str, Any]:
        """The step's input_mapping evaluated; an expression error fails the step."""
        extra = {**self.bound.get(step.step_id, {}), **extra}
        try:
            return {k: self.evaluate(e, **extra) for k, e in step.input_mapping.items()}
        except ExpressionError as exc:
            raise StepFailure(expression_failure(exc, step.step_id)) from None
