"""`approval` steps: wait durably (holding no worker resources) for people's decisions, with
reminders, escalation and a timeout. Decisions arrive as updates or signals of the run
(`workflows.engine.approvals` checks and records them)."""

from __future__ import annotations

import builtins
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

from activities.contracts import ErrorType
from workflows.contracts import PendingApproval, StepRecord
from workflows.dsl.models import ApprovalSpec, EffectiveRetryPolicy, WorkflowStep
from workflows.engine import approvals, versions
from workflows.engine.context import Priority, StepContext, StepHandler
from workflows.engine.failures import StepFailure, unreachable

NO_DEFAULT_DEADLINE = "approval-no-default-deadline"
"""The patch under which an approval without its own `timeout` waits with no deadline."""


class ApprovalStep(StepHandler):
    async def run(
        self,
        ctx: StepContext,
        step: WorkflowStep,
        record: StepRecord,
        policy: EffectiveRetryPolicy,
        priority: Priority,
    ) -> Any:
        cut_off = unreachable(step, "decisions")
        if cut_off is not None:
            raise cut_off
        spec = step.approval or ApprovalSpec()
        pending = approvals.open_approval(
            ctx.state,
            step.step_id,
            list(spec.approvers),
            spec.required_approvals,
            _iso(workflow.now()),
        )
        ctx.mark_waiting(step, record)
        evicted = False
        try:
            approved_on_timeout = await _decisions(ctx, step, spec, pending, policy)
        except GeneratorExit:  # evicted from the worker's cache: touch nothing
            evicted = True
            raise
        finally:
            if not evicted:
                ctx.state.pending_approvals.pop(step.step_id, None)
                ctx.done_waiting(step, record)
        if approved_on_timeout:
            return approval_output(pending, "approved", by=["timeout"])
        if pending.outcome == "rejected":
            vote = next(v for v in pending.votes if v.decision == "reject")
            raise StepFailure.of(
                step,
                ErrorType.APPROVAL_REJECTED,
                f"rejected by {vote.by}" + (f": {vote.comment}" if vote.comment else ""),
            )
        approvers = [v.by for v in pending.votes if v.decision == "approve"]
        return approval_output(pending, "approved", by=approvers)


async def _decisions(
    ctx: StepContext,
    step: WorkflowStep,
    spec: ApprovalSpec,
    pending: PendingApproval,
    policy: EffectiveRetryPolicy,
) -> bool:
    """Wait until the step is decided (False), or approved by `on_timeout` (True); send
    reminders and escalate on the way; a timeout that rejects raises ApprovalTimeout."""
    sid = step.step_id
    deadline = _deadline(step)
    every = timedelta(seconds=spec.reminder_every) if spec.reminder_every else None
    next_reminder = workflow.now() + every if every else None
    while pending.outcome is None:
        wakes = [moment for moment in (deadline, next_reminder) if moment is not None]
        if not wakes:  # no deadline, no reminders: only a decision (or the run's end) ends it
            await workflow.wait_condition(lambda: pending.outcome is not None)
            break
        seconds = (min(wakes) - workflow.now()).total_seconds()
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
            if deadline is None or now < deadline:
                await _notify(ctx, step, spec, pending, "reminder", policy)
                continue
        if deadline is None or now < deadline:
            continue
        if spec.on_timeout == "approve":
            approvals.note(ctx.state, sid, "timeout", _iso(now), "approved on timeout")
            return True
        if spec.on_timeout == "escalate" and not pending.escalated:
            pending.escalated = True
            pending.approvers = list(spec.escalate_to)
            deadline = now + timedelta(seconds=spec.escalation_timeout or step.timeout)
            ctx.changed()
            await _notify(ctx, step, spec, pending, "escalation", policy)
            continue
        approvals.note(
            ctx.state, sid, "timeout", _iso(now), f"no decision in time: {spec.on_timeout}"
        )
        raise StepFailure.of(
            step,
            ErrorType.APPROVAL_TIMEOUT,
            f"no decision on {sid!r} in time ({pending.approvals} of {pending.required} approvals)",
        )
    return False


def _deadline(step: WorkflowStep) -> datetime | None:
    """When the time to decide ends: `timeout` set on the step, else none of its own (the run's
    timeout bounds the wait). Runs recorded before this rule waited the default 300 s."""
    if "timeout" in step.model_fields_set or not versions.patched(NO_DEFAULT_DEADLINE):
        return workflow.now() + timedelta(seconds=step.timeout)
    return None


def approval_output(pending: PendingApproval, decision: str, by: list[str]) -> dict[str, Any]:
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
    ctx: StepContext,
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
        await ctx.run_action(step, spec.reminder_action, params, policy, kind, (0, 0))
    except StepFailure as failure:
        detail += f" (the {spec.reminder_action} action failed: {failure.error.message})"
    approvals.note(ctx.state, step.step_id, kind, _iso(workflow.now()), detail)
    ctx.changed()


def _iso(moment: datetime) -> str:
    return moment.isoformat()
