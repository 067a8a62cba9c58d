"""Approval decisions: who may decide what, and the audit trail. Pure and deterministic.

The pending approvals live in the execution state (`ExecutionResult.pending_approvals`), which
the workflow creates in `@workflow.init`, so update validators can read them even when they run
before `run()` has done anything.
"""

from __future__ import annotations

from typing import Any, Literal

from temporalio import workflow

from workflows.contracts import (
    AuditEntry,
    DecisionInput,
    DecisionResult,
    ExecutionResult,
    PendingApproval,
    Vote,
    parse_signal,
)
from workflows.dsl.rules import same_person
from workflows.engine.signatures import Signing

Decision = Literal["approve", "reject"]


def refusal(
    state: ExecutionResult,
    request: DecisionInput,
    decision: Decision,
    signing: Signing | None = None,
) -> str | None:
    """Why `request` may not be applied now, or None when it may (with `signing`: only a
    decision signed by a trusted key, for this run and step, not expired, not used before)."""
    pending = state.pending_approvals.get(request.step_id)
    if pending is None:
        if request.step_id in state.steps:
            status = state.steps[request.step_id].status.value
            return f"step {request.step_id!r} is not waiting for a decision (it is {status})"
        waiting = ", ".join(sorted(state.pending_approvals)) or "none"
        return f"no step {request.step_id!r} in this run; steps waiting for approval: {waiting}"
    why = approver_refusal(pending, request.by)
    if why is None and signing is not None:
        why = signing.refusal(state.execution_id, request, decision, workflow.now())
    return why


def approver_refusal(pending: PendingApproval, by: str) -> str | None:
    """Why `by` may not decide `pending` (not a listed approver, or already decided), or None.
    Shared by approval steps and the approval of agentic tasks."""
    who = same_person(by)
    if not who:
        return "`by` is empty once spaces are stripped: say who decides"
    if pending.approvers and who not in {same_person(a) for a in pending.approvers}:
        return f"{by!r} may not decide step {pending.step_id!r}; approvers: " + ", ".join(
            pending.approvers
        )
    if any(same_person(v.by) == who for v in pending.votes):
        return f"{by!r} has already decided step {pending.step_id!r}"
    return None


def apply(
    state: ExecutionResult,
    request: DecisionInput,
    decision: Decision,
    at: str,
    signing: Signing | None = None,
) -> DecisionResult:
    """Record a valid decision (check `refusal` first) and return where the step stands."""
    pending = state.pending_approvals[request.step_id]
    pending.votes.append(Vote(by=request.by, decision=decision, comment=request.comment, at=at))
    verified = signing.accept(request) if signing is not None else None
    entry = AuditEntry(at=at, kind=decision, by=request.by, detail=request.comment)
    state.approvals.append(
        entry.model_copy(update={"step_id": request.step_id, "verified_key": verified})
    )
    return DecisionResult(
        step_id=request.step_id,
        outcome=pending.outcome or "pending",
        approvals=pending.approvals,
        required=pending.required,
    )


def from_signal(
    state: ExecutionResult,
    payload: Any,
    decision: Decision,
    at: str,
    signing: Signing | None = None,
) -> DecisionResult | None:
    """Apply a decision that came as a signal; an invalid one is audited and ignored."""
    request, problem = parse_signal(DecisionInput, payload, decision)
    if request is None:
        step_id = payload.get("step_id") if isinstance(payload, dict) else None
        by = payload.get("by") if isinstance(payload, dict) else None
        _ignored(state, at, problem, str(by or ""), step_id if isinstance(step_id, str) else None)
        return None
    why = refusal(state, request, decision, signing)
    if why is not None:
        _ignored(state, at, f"{decision} signal ignored: {why}", request.by, request.step_id)
        return None
    return apply(state, request, decision, at, signing)


def _ignored(state: ExecutionResult, at: str, reason: str, by: str, step_id: str | None) -> None:
    state.approvals.append(AuditEntry(at=at, kind="ignored", by=by, detail=reason, step_id=step_id))


def open_approval(
    state: ExecutionResult, step_id: str, approvers: list[str], required: int, at: str
) -> PendingApproval:
    """Start waiting for decisions on `step_id`."""
    pending = PendingApproval(step_id=step_id, approvers=approvers, required=required, since=at)
    state.pending_approvals[step_id] = pending
    return pending


def note(
    state: ExecutionResult, step_id: str, kind: str, at: str, detail: str, by: str = ""
) -> None:
    """Add a reminder, escalation or timeout to the audit trail."""
    state.approvals.append(AuditEntry(at=at, kind=kind, by=by, detail=detail, step_id=step_id))
