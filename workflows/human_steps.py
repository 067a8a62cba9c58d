"""Steps that wait for people and time: `approval` (decisions, reminders, escalation,
timeout) and `wait` (a durable timer). Deterministic code only; a mixin of `Runner`."""

from __future__ import annotations

import builtins
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contracts import ErrorType
    from workflows import approvals
    from workflows.dsl.expressions import ExpressionError
    from workflows.dsl.models import (
        ApprovalSpec,
        EffectiveRetryPolicy,
        PendingApproval,
        StepRecord,
        StepStatus,
        WorkflowStep,
    )
    from workflows.failures import StepFailure

if TYPE_CHECKING:
    from workflows.runner import Runner


async def approval(
    runner: Runner, step: WorkflowStep, record: StepRecord, policy: EffectiveRetryPolicy
) -> dict[str, Any]:
    """Wait (durably, holding no worker resources) for decisions on an approval step."""
    spec = step.approval or ApprovalSpec()
    sid = step.step_id
    pending = approvals.open_approval(
        runner.state, sid, list(spec.approvers), spec.required_approvals, _iso(workflow.now())
    )
    runner.set_status(record, StepStatus.WAITING)
    runner.running.discard(sid)
    runner.on_change()
    deadline = workflow.now() + timedelta(seconds=step.timeout)
    every = timedelta(seconds=spec.reminder_every) if spec.reminder_every else None
    next_reminder = workflow.now() + every if every else None
    evicted = False
    try:
        while pending.outcome is None:
            wake = min(deadline, next_reminder) if next_reminder else deadline
            seconds = (wake - workflow.now()).total_seconds()
            if seconds > 0:
                try:
                    await workflow.wait_condition(
                        lambda: pending.outcome is not None,
                        timeout=seconds,
                        timeout_summary=f"{sid}: approval",
                    )
                    break
                except builtins.TimeoutError:
                    pass
            now = workflow.now()
            if next_reminder is not None and every is not None and next_reminder <= now:
                next_reminder = now + every
                if now < deadline:
                    await _notify(runner, step, spec, pending, "reminder", policy)
                    continue
            if now < deadline:
                continue
            if spec.on_timeout == "approve":
                approvals.note(runner.state, sid, "timeout", _iso(now), "approved on timeout")
                return approval_output(runner, pending, "approved", by=["timeout"])
            if spec.on_timeout == "escalate" and not pending.escalated:
                pending.escalated = True
                pending.approvers = list(spec.escalate_to)
                escalation = spec.escalation_timeout or step.timeout
                deadline = now + timedelta(seconds=escalation)
                runner.on_change()
                await _notify(runner, step, spec, pending, "escalation", policy)
                continue
            approvals.note(
                runner.state, sid, "timeout", _iso(now), f"no decision in time: {spec.on_timeout}"
            )
            raise StepFailure.of(
                step,
                ErrorType.APPROVAL_TIMEOUT,
                f"no decision on {sid!r} in time ({pending.approvals} of "
                f"{pending.required} approvals)",
            )
    except GeneratorExit:  # evicted from the worker's cache: touch nothing
        evicted = True
        raise
    finally:
        if not evicted:
            runner.state.pending_approvals.pop(sid, None)
            runner.set_status(record, StepStatus.RUNNING)
            runner.on_change()
    if pending.outcome == "rejected":
        vote = next(v for v in pending.votes if v.decision == "reject")
        raise StepFailure.of(
            step,
            ErrorType.APPROVAL_REJECTED,
            f"rejected by {vote.by}" + (f": {vote.comment}" if vote.comment else ""),
        )
    return approval_output(
        runner, pending, "approved", by=[v.by for v in pending.votes if v.decision == "approve"]
    )


def approval_output(
    runner: Runner, pending: PendingApproval, decision: str, by: list[str]
) -> dict[str, Any]:
    comments = [v.comment for v in pending.votes if v.comment]
    return {
        "decision": decision,
        "decided_by": by,
        "comment": "; ".join(comments),
        "decided_at": _iso(workflow.now()),
        "votes": [v.model_dump(mode="json") for v in pending.votes],
        "escalated": pending.escalated,
    }


async def _notify(
    runner: Runner,
    step: WorkflowStep,
    spec: ApprovalSpec,
    pending: PendingApproval,
    kind: str,
    policy: EffectiveRetryPolicy,
) -> None:
    """Run the reminder action for a reminder or an escalation, and audit it."""
    waited = (workflow.now() - datetime.fromisoformat(pending.since)).total_seconds()
    who = ", ".join(pending.approvers) or "anyone"
    message = (
        f"{kind}: step {step.step_id!r} of {workflow.info().workflow_id} waits for "
        f"{who} ({pending.approvals}/{pending.required} approvals, {waited:.0f} s)"
    )
    if kind == "escalation":
        message = f"escalated to {who} after {waited:.0f} s without a decision: " + message
    params = {
        "step_id": step.step_id,
        "message": message,
        "approvers": pending.approvers,
        "waiting_seconds": waited,
    }
    detail = message
    try:
        await runner.action(step, spec.reminder_action, params, policy, kind, (0, 0))
    except StepFailure as failure:
        detail += f" (the {spec.reminder_action} action failed: {failure.error.message})"
    approvals.note(runner.state, step.step_id, kind, _iso(workflow.now()), detail)
    runner.on_change()


async def wait(runner: Runner, step: WorkflowStep) -> dict[str, Any]:
    spec = step.wait
    assert spec is not None  # validated
    now = workflow.now()
    if spec.until is not None:
        try:
            value = runner.evaluate(spec.until)
            until = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            seconds = (until - now).total_seconds()
        except (ExpressionError, ValueError, TypeError) as exc:
            raise StepFailure.of(
                step, ErrorType.EXPRESSION_ERROR, f"wait.until must give a timestamp: {exc}"
            ) from None
    else:
        seconds = spec.seconds or 0.0
    if seconds > 0:
        await workflow.sleep(seconds, summary=f"{step.step_id}: wait")
    return {
        "waited_seconds": max(seconds, 0.0),
        "until": (now + timedelta(seconds=max(seconds, 0.0))).isoformat(),
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat()
