"""Why a ready step does not start: blocked by a dependency that failed (and was not
tolerated), or skipped (a branch not taken, `cancel_step` before it started, every dependency
skipped, a guard condition not true). Deterministic code only.

A guard that fails to evaluate does not skip the step: the error is kept and reported as the
step's failure when it runs (`guard_errors`).
"""

from __future__ import annotations

from workflows.contracts import ExecutionResult
from workflows.dsl.expressions import ExpressionError
from workflows.dsl.models import WorkflowStep
from workflows.dsl.plan import Plan
from workflows.engine import scheduler
from workflows.engine.records import Records
from workflows.engine.scope import Scope
from workflows.engine.steps import HANDLERS


class Readiness:
    """The run's decisions on ready steps that must not start."""

    def __init__(
        self,
        state: ExecutionResult,
        steps: dict[str, WorkflowStep],
        records: Records,
        scope: Scope,
    ) -> None:
        self.state = state
        self.steps = steps
        self.records = records
        self.scope = scope
        self.branch_skips: dict[str, str] = {}
        """Steps to skip when they become ready, with the reason (branches, cancel_step)."""
        self.guard_errors: dict[str, ExpressionError] = {}
        """Guards that failed to evaluate: the step fails with the error when it runs."""
        self.tolerated: set[str] = set()
        """Failed steps whose dependents still run (continue_on_failure, a tolerant child)."""

    def settle(self, plan: Plan, sid: str) -> bool:
        """Settle `sid` if it must not start (failed unstarted, or skipped); True if it was."""
        blocked = scheduler.blocked_by(plan, sid, self.state.steps, self.tolerated)
        if blocked is not None:
            self.records.fail_unstarted(sid, blocked)
            return True
        reason = self._skip_reason(plan, sid)
        if reason is not None:
            self.records.skip(sid, reason)
            return True
        return False

    def reset(self, step_id: str) -> None:
        """The step runs again (a loop's next iteration): forget what was decided for it."""
        self.branch_skips.pop(step_id, None)
        self.tolerated.discard(step_id)

    def _skip_reason(self, plan: Plan, sid: str) -> str | None:
        if sid in self.branch_skips:
            return self.branch_skips[sid]
        if scheduler.all_dependencies_skipped(plan, sid, self.state.steps):
            return "all of its dependencies were skipped"
        return self.guard_reason(self.steps[sid])

    def guard_reason(self, step: WorkflowStep) -> str | None:
        """Why the step's guard conditions skip it, or None (an error is kept for the run)."""
        sid = step.step_id
        if not HANDLERS[step.step_type].conditions_are_guards:
            return None
        for k, cond in enumerate(step.conditions):
            try:
                value = self.scope.evaluate(cond.when, **self.scope.bound.get(sid, {}))
            except ExpressionError as exc:
                self.guard_errors[sid] = exc  # reported as the step's failure when it runs
                return None
            if value is not True:
                return f"guard conditions[{k}] ({cond.when}) was {value!r}"
        return None
