"""The engine's pure parts without a server: approvals, progress rows, failure classification,
payload trimming, batch packing and the level scheduler's decisions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    RetryState,
    TimeoutError,
    TimeoutType,
)

from workflows.contracts import (
    DecisionInput,
    ErrorInfo,
    ExecutionResult,
    StepRecord,
    StepStatus,
)
from workflows.dsl.models import EffectiveRetryPolicy, WorkflowStep
from workflows.dsl.plan import build_plan
from workflows.engine import approvals, scheduler
from workflows.engine.failures import activity_failure
from workflows.engine.outputs import container_output
from workflows.engine.payload import MAX_RESULT_BYTES, fit_payload
from workflows.engine.progress import markdown_table, progress_rows, sla_summary
from workflows.engine.steps.parallel import pack

AT = "2026-11-30T12:00:00+00:00"


def state_with(**records: StepRecord) -> ExecutionResult:
    return ExecutionResult(
        execution_id="run-1", workflow_id="w", version="1.0", steps=dict(records)
    )


def steps(spec: dict[str, list[str]]) -> list[WorkflowStep]:
    return [WorkflowStep(step_id=s, action="std.echo", dependencies=d) for s, d in spec.items()]


# ---------------------------------------------------------------------- approvals


def test_an_approval_counts_each_listed_approver_once_and_refuses_others() -> None:
    state = state_with(ok=StepRecord(status=StepStatus.WAITING))
    approvals.open_approval(state, "ok", ["maria", "mark"], 2, AT)
    maria = DecisionInput(step_id="ok", by="maria")
    assert approvals.refusal(state, maria, "approve") is None
    assert approvals.apply(state, maria, "approve", AT).outcome == "pending"
    assert "already decided" in (approvals.refusal(state, maria, "approve") or "")
    eve = DecisionInput(step_id="ok", by="eve")
    assert "may not decide" in (approvals.refusal(state, eve, "approve") or "")
    result = approvals.apply(state, DecisionInput(step_id="ok", by="mark"), "approve", AT)
    assert (result.outcome, result.approvals, result.required) == ("approved", 2, 2)
    assert [e.by for e in state.approvals] == ["maria", "mark"]


def test_a_decision_for_a_step_that_does_not_wait_names_the_waiting_ones() -> None:
    state = state_with(a=StepRecord(status=StepStatus.COMPLETED))
    approvals.open_approval(state, "b", [], 1, AT)
    assert "it is completed" in (
        approvals.refusal(state, DecisionInput(step_id="a", by="x"), "approve") or ""
    )
    why = approvals.refusal(state, DecisionInput(step_id="nope", by="x"), "reject") or ""
    assert "no step 'nope'" in why and "waiting for approval: b" in why


def test_an_invalid_signal_is_audited_and_changes_nothing() -> None:
    state = state_with(b=StepRecord(status=StepStatus.WAITING))
    pending = approvals.open_approval(state, "b", [], 1, AT)
    assert approvals.from_signal(state, {"step_id": "b"}, "approve", AT) is None
    assert approvals.from_signal(state, ["not", "an", "object"], "reject", AT) is None
    assert pending.votes == [] and pending.outcome is None
    assert [e.kind for e in state.approvals] == ["ignored", "ignored"]
    assert "by" in state.approvals[0].detail


# ---------------------------------------------------------------------- progress


def test_progress_rows_say_how_long_and_why() -> None:
    started = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    state = state_with(
        done=StepRecord(
            status=StepStatus.COMPLETED,
            attempts=2,
            started_at=started.isoformat(),
            ended_at=(started + timedelta(seconds=3)).isoformat(),
        ),
        failed=StepRecord(
            status=StepStatus.FAILED,
            error=ErrorInfo(type="StepFailed", message="boom | pipe"),
            started_at=started.isoformat(),
        ),
        skipped=StepRecord(status=StepStatus.SKIPPED, skip_reason="branch not chosen"),
    )
    now = started + timedelta(minutes=5)
    rows = {r.step_id: r for r in progress_rows(state, now)}
    assert rows["done"].cells()[2:4] == ("2", "3.00s")
    assert rows["failed"].cells()[3] == "5.0m"  # still counted to now: it has no end
    assert rows["failed"].detail == "StepFailed: boom | pipe"
    assert rows["skipped"].detail == "branch not chosen"
    table = markdown_table(progress_rows(state, now, ["failed"]))
    assert table[2] == "| `failed` | failed | 0 | 5.0m | StepFailed: boom \\| pipe |"
    assert sla_summary(state) == "no SLA"


# ---------------------------------------------------------------------- failures


def activity_error(cause: BaseException) -> ActivityError:
    error = ActivityError(
        "activity failed",
        scheduled_event_id=1,
        started_event_id=2,
        identity="w",
        activity_type="std.fail",
        activity_id="1",
        retry_state=RetryState.MAXIMUM_ATTEMPTS_REACHED,
    )
    error.__cause__ = cause
    return error


def test_activity_failures_are_classified_with_their_attempts() -> None:
    policy = EffectiveRetryPolicy(max_attempts=4)
    app = ApplicationError("card declined", {"attempt": 3}, type="PaymentDeclined")
    error, attempts = activity_failure(activity_error(app), "pay", policy)
    assert (error.type, error.message, error.step_id, attempts) == (
        "PaymentDeclined",
        "card declined",
        "pay",
        3,
    )
    timeout = TimeoutError("late", type=TimeoutType.START_TO_CLOSE, last_heartbeat_details=[])
    error, attempts = activity_failure(activity_error(timeout), "pay", policy)
    assert error.type == "Timeout" and "START_TO_CLOSE" in error.message and attempts == 4
    error, _ = activity_failure(activity_error(CancelledError("stop")), "pay", policy)
    assert error.type == "Cancelled"


# ---------------------------------------------------------------------- outputs and payloads


def test_container_output_is_the_seeds_parallel_result() -> None:
    state = state_with(
        a=StepRecord(status=StepStatus.COMPLETED, output={"x": 1}),
        b=StepRecord(status=StepStatus.FAILED, error=ErrorInfo(type="StepFailed", message="m")),
        c=StepRecord(status=StepStatus.SKIPPED),
    )
    out = container_output(state, steps({"a": [], "b": [], "c": []}))
    assert out["total_steps"] == 3 and out["failed_steps"] == 1
    assert out["results"] == {"a": {"x": 1}, "c": None}
    assert out["failures"][0]["step_id"] == "b"
    assert abs(out["success_rate"] - 2 / 3) < 1e-9


def test_a_result_over_the_payload_limit_loses_its_largest_values_first() -> None:
    import random

    rng = random.Random(7)  # incompressible values: compression alone cannot make them fit
    noise = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(900_000))
    state = state_with(
        big=StepRecord(status=StepStatus.COMPLETED, output=noise[:600_000]),
        bigger=StepRecord(status=StepStatus.COMPLETED, output=noise * 2, input={"n": noise}),
        small=StepRecord(status=StepStatus.COMPLETED, output={"keep": True}),
    )
    fitted = fit_payload(state)
    assert len(fitted.model_dump_json()) < 2 * MAX_RESULT_BYTES
    assert fitted.steps["bigger"].output["truncated"] is True
    assert fitted.steps["bigger"].input is None
    assert fitted.steps["big"].output == noise[:600_000]
    assert fitted.steps["small"].output == {"keep": True}
    assert state.steps["bigger"].output != fitted.steps["bigger"].output  # the state is kept
    assert fit_payload(state_with(a=StepRecord(output={"x": 1}))).steps["a"].output == {"x": 1}


def test_batches_keep_connected_steps_together() -> None:
    plan = build_plan(steps({"a": [], "b": ["a"], "c": [], "d": [], "e": ["d"], "f": []}))
    batches = pack(plan, 2)
    assert sorted(s for b in batches for s in b) == ["a", "b", "c", "d", "e", "f"]
    assert all(len(b) <= 2 for b in batches) and len(batches) == 4
    for batch in batches:
        assert ("a" in batch) == ("b" in batch) and ("d" in batch) == ("e" in batch)


# ---------------------------------------------------------------------- the scheduler


class Recorder:
    """Decisions that start steps in order, fail or settle some unstarted."""

    def __init__(self, fail: set[str] = frozenset(), unstarted: set[str] = frozenset()) -> None:
        self.started: list[str] = []
        self.fail = fail
        self.unstarted = unstarted
        self.has_failed = False
        self.cancelled: list[str] = []

    def cancelling(self, sid: str) -> None:
        self.cancelled.append(sid)

    def stop(self, fail_fast: bool) -> bool:
        return fail_fast and self.has_failed

    def settle_unstarted(self, plan: Any, sid: str) -> bool:
        return sid in self.unstarted

    async def start(self, sid: str, priority: Any) -> None:
        self.started.append(sid)
        await asyncio.sleep(0)
        if sid in self.fail:
            self.has_failed = True


async def test_the_scheduler_starts_a_step_after_its_dependencies_by_critical_path() -> None:
    plan = build_plan(steps({"a": [], "short": [], "b": ["a"], "c": ["b"], "d": ["short", "c"]}))
    decide = Recorder()
    await scheduler.run_level(plan, decide, fail_fast=True, optimize=True)
    assert decide.started[:2] == ["a", "short"]  # the longer path first
    assert decide.started.index("d") == 4
    decide = Recorder()
    await scheduler.run_level(plan, decide, fail_fast=True, optimize=False)
    assert decide.started[:2] == ["a", "short"]  # definition order: also a first


async def test_a_settled_unstarted_step_releases_its_dependents() -> None:
    plan = build_plan(steps({"a": [], "b": ["a"], "c": ["b"]}))
    decide = Recorder(unstarted={"b"})
    await scheduler.run_level(plan, decide, fail_fast=False, optimize=True)
    assert decide.started == ["a", "c"]


async def test_a_fail_fast_level_starts_nothing_after_a_failure() -> None:
    plan = build_plan(steps({"a": [], "b": ["a"]}))
    decide = Recorder(fail={"a"})
    await scheduler.run_level(plan, decide, fail_fast=True, optimize=True)
    assert decide.started == ["a"]
    decide = Recorder(fail={"a"})
    await scheduler.run_level(plan, decide, fail_fast=False, optimize=True)
    assert decide.started == ["a", "b"]


def test_priority_and_blocking_decisions() -> None:
    plan = build_plan(steps({"a": [], "b": ["a"], "c": []}))
    position = {sid: i for i, sid in enumerate(plan.order)}
    assert scheduler.priority(plan, position, "a", True) < scheduler.priority(
        plan, position, "c", True
    )
    records = {
        "a": StepRecord(status=StepStatus.FAILED),
        "b": StepRecord(),
        "c": StepRecord(status=StepStatus.SKIPPED),
    }
    assert scheduler.blocked_by(plan, "b", records, tolerated=set()) == "a"
    assert scheduler.blocked_by(plan, "b", records, tolerated={"a"}) is None
    assert not scheduler.all_dependencies_skipped(plan, "b", records)
