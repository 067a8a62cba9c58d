"""What the inbox asks Temporal through `CadenzaClient`: the approvals waiting for one approver
across runs (a visibility query on `CadenzaState`, then each run's `status` query), the
approver's past decisions (the runs' audit trails), and a decision sent as a signed update."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio.client import WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.service import RPCError

from cadenza.errors import CadenzaError
from worker.client import CadenzaClient, DecisionRefused
from workflows.contracts import RunInput
from workflows.dsl.expressions import ExpressionError, evaluate, to_json
from workflows.dsl.models import ExecutionResult, PendingApproval, WorkflowStep
from workflows.dsl.rules import same_person
from workflows.dsl.validate import validate_cached
from workflows.engine import WORKFLOW_NAME

QUERY_SECONDS = 3.0
MAX_RUNS = 500
HISTORY_RUNS = 100


class WaitingApproval(BaseModel):
    """An approval step waiting for the signed-in approver."""

    run: str = Field(description="The run's execution id.")
    step: str = Field(description="The approval step's id.")
    definition: str = Field(description="The definition's name (or workflow_id) and version.")
    step_name: str = Field("", description="The step's human-readable name, if it has one.")
    approvers: list[str] = Field(description="Who may decide; empty: anyone.")
    approvals: int = Field(description="Approvals so far.")
    required: int = Field(description="Approvals needed; one rejection rejects.")
    since: str = Field(description="When the step started waiting (ISO 8601).")
    deadline: str | None = Field(None, description="When the time to decide ends, if it does.")
    escalated: bool = False
    input: dict[str, Any] = Field(
        default_factory=dict, description="The step's mapped input, evaluated now."
    )


class PastDecision(BaseModel):
    """One decision of the approver, from a run's audit trail."""

    run: str
    step: str | None
    definition: str
    decision: Literal["approve", "reject"]
    comment: str = ""
    at: str
    verified_key: str | None = Field(None, description="The key its signature verified with.")
    run_status: str = Field(description="The run's status now.")


class Decided(BaseModel):
    """Where the step stands after a decision."""

    run: str
    step: str
    outcome: Literal["pending", "approved", "rejected"]
    approvals: int
    required: int


class Refused(CadenzaError):
    """A decision or a page the inbox refuses, in plain words with its HTTP status; the routes
    turn it into a page or a JSON answer (it never leaves the app)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def plain_refusal(reason: str) -> Refused:
    """The run's reason for refusing a decision, as an approver would say it."""
    if "has already decided" in reason:
        return Refused(409, "You have already decided this step.")
    if "may not decide" in reason:
        return Refused(403, "You are not one of the approvers of this step.")
    if "is not waiting for a decision" in reason:
        return Refused(
            409,
            "This step no longer waits for a decision: it was decided meanwhile (the quorum "
            "was reached, or someone rejected it) or its time ran out.",
        )
    if "has already ended" in reason:
        return Refused(409, "This run has ended: nothing waits for a decision any more.")
    if reason.startswith("no step"):
        return Refused(404, "This run has no such approval step.")
    return Refused(409, f"The run refused the decision: {reason}")


class ApprovalQueries:
    """The inbox's questions to Temporal.

    Args:
        connect: makes the `CadenzaClient` (connected once, on first use, in the app's loop).
        signing_key: ID:BASE64-PRIVATE; decisions are signed with it (empty: unsigned).
    """

    def __init__(
        self, connect: Callable[[], Awaitable[CadenzaClient]], signing_key: str = ""
    ) -> None:
        self._connect = connect
        self._cadenza: CadenzaClient | None = None
        self._lock = asyncio.Lock()
        self.signing_key = signing_key
        self._definitions: dict[str, tuple[str, dict[str, WorkflowStep]]] = {}
        self._inputs: dict[str, RunInput] = {}

    async def cadenza(self) -> CadenzaClient:
        async with self._lock:
            if self._cadenza is None:
                self._cadenza = await self._connect()
                self._cadenza.signing_key = self.signing_key
            return self._cadenza

    async def waiting_for(self, approver: str) -> list[WaitingApproval]:
        """Every approval waiting for `approver` (listed, or anyone), not yet decided by them."""
        cadenza = await self.cadenza()
        query = (
            f"WorkflowType = '{WORKFLOW_NAME}' AND CadenzaState = 'waiting' AND "
            f"ExecutionStatus = 'Running' AND TaskQueue = '{cadenza.task_queue}'"
        )
        found: list[WaitingApproval] = []
        for run_id, state in await self._states(query, MAX_RUNS, running=True):
            if state is None:
                continue
            for pending in state.pending_approvals.values():
                if may_decide(pending, approver):
                    found.append(await self._describe(run_id, state, pending))
        return sorted(found, key=lambda w: w.since)

    async def waiting_one(self, approver: str, run_id: str, step_id: str) -> WaitingApproval:
        """One waiting approval for the decision page.

        Raises:
            Refused: the run or step is unknown, not waiting, or not the approver's to decide.
        """
        cadenza = await self.cadenza()
        try:
            described = await cadenza.client.get_workflow_handle(run_id).describe()
        except RPCError:
            raise Refused(404, "There is no such run.") from None
        if described.status != WorkflowExecutionStatus.RUNNING:  # no replay to query it
            raise plain_refusal("has already ended")
        try:
            state = await cadenza.status(run_id, timeout=QUERY_SECONDS)
        except (RPCError, WorkflowQueryFailedError):
            raise Refused(503, "The run does not answer now (is a worker running?).") from None
        pending = state.pending_approvals.get(step_id)
        if pending is None:
            raise plain_refusal("is not waiting for a decision")
        if not may_decide(pending, approver):
            voted = any(same_person(v.by) == same_person(approver) for v in pending.votes)
            raise plain_refusal("has already decided" if voted else "may not decide")
        return await self._describe(run_id, state, pending)

    async def decide(
        self, approver: str, run_id: str, step_id: str, decision: str, comment: str
    ) -> Decided:
        """Send the decision as a (signed) update; a refusal as `Refused` in plain words."""
        cadenza = await self.cadenza()
        try:
            if decision == "approve":
                result = await cadenza.approve(run_id, step_id, approver, comment)
            else:
                result = await cadenza.reject(run_id, step_id, approver, comment)
        except DecisionRefused as exc:
            raise plain_refusal(str(exc)) from None
        except RPCError:
            raise Refused(404, "There is no such run, or it cannot be reached now.") from None
        return Decided(
            run=run_id,
            step=step_id,
            outcome=result.outcome,
            approvals=result.approvals,
            required=result.required,
        )

    async def history_of(self, approver: str) -> list[PastDecision]:
        """The approver's decisions in the latest runs that waited for someone."""
        cadenza = await self.cadenza()
        query = (
            f"WorkflowType = '{WORKFLOW_NAME}' AND CadenzaState IS NOT NULL AND "
            f"TaskQueue = '{cadenza.task_queue}'"
        )
        me = same_person(approver)
        decisions: list[PastDecision] = []
        for run_id, state in await self._states(query, HISTORY_RUNS, running=False):
            if state is None:
                continue
            decisions += [
                PastDecision(
                    run=run_id,
                    step=entry.step_id,
                    definition=f"{state.workflow_id} v{state.version}",
                    decision="approve" if entry.kind == "approve" else "reject",
                    comment=entry.detail,
                    at=entry.at,
                    verified_key=entry.verified_key,
                    run_status=state.status.value,
                )
                for entry in state.approvals
                if entry.kind in ("approve", "reject") and same_person(entry.by) == me
            ]
        return sorted(decisions, key=lambda d: d.at, reverse=True)

    async def _states(
        self, query: str, limit: int, running: bool
    ) -> list[tuple[str, ExecutionResult | None]]:
        cadenza = await self.cadenza()
        runs = [r async for r in cadenza.client.list_workflows(query, limit=limit)]
        gate = asyncio.Semaphore(16)

        async def state_of(run_id: str, open_: bool) -> ExecutionResult | None:
            async with gate:
                try:
                    if open_:
                        return await cadenza.status(run_id, timeout=QUERY_SECONDS)
                    return await asyncio.wait_for(cadenza.result(run_id), QUERY_SECONDS * 3)
                except (RPCError, WorkflowQueryFailedError, TimeoutError):
                    return None

        states = await asyncio.gather(
            *(state_of(r.id, running or r.close_time is None) for r in runs)
        )
        return [(r.id, s) for r, s in zip(runs, states, strict=True)]

    async def _describe(
        self, run_id: str, state: ExecutionResult, pending: PendingApproval
    ) -> WaitingApproval:
        name, steps = await self._definition_of(run_id)
        step = steps.get(pending.step_id)
        deadline = None
        if step is not None and "timeout" in step.model_fields_set and not pending.escalated:
            since = datetime.fromisoformat(pending.since)
            deadline = (since + timedelta(seconds=step.timeout)).isoformat()
        return WaitingApproval(
            run=run_id,
            step=pending.step_id,
            definition=f"{name or state.workflow_id} v{state.version}",
            step_name=(step.name or "") if step is not None else "",
            approvers=pending.approvers,
            approvals=pending.approvals,
            required=pending.required,
            since=pending.since,
            deadline=deadline,
            escalated=pending.escalated,
            input=mapped_input(step, state, await self._run_input(run_id)),
        )

    async def _run_input(self, run_id: str) -> dict[str, Any]:
        return (await self._original(run_id)).input

    async def _definition_of(self, run_id: str) -> tuple[str, dict[str, WorkflowStep]]:
        """The run's definition name and steps by id, from its first history event (cached)."""
        if run_id not in self._definitions:
            run = await self._original(run_id)
            report = validate_cached(run.definition, run.known_actions)
            model = report.definition if report.ok else None
            steps = {s.step_id: s for s in model.all_steps()} if model is not None else {}
            if len(self._definitions) > 1000:
                self._definitions.clear()
            self._definitions[run_id] = (model.name if model is not None else "", steps)
        return self._definitions[run_id]

    async def _original(self, run_id: str) -> RunInput:
        if run_id not in self._inputs:
            run = await (await self.cadenza()).original_input(run_id)
            if len(self._inputs) > 1000:
                self._inputs.clear()
            self._inputs[run_id] = run
        return self._inputs[run_id]


def may_decide(pending: PendingApproval, approver: str) -> bool:
    """`approver` is listed (or anyone may decide) and has not decided yet."""
    me = same_person(approver)
    if not me:
        return False
    if pending.approvers and me not in {same_person(a) for a in pending.approvers}:
        return False
    return all(same_person(v.by) != me for v in pending.votes)


def mapped_input(
    step: WorkflowStep | None, state: ExecutionResult, run_input: dict[str, Any]
) -> dict[str, Any]:
    """The step's input_mapping evaluated over the run's state now (what the approver decides
    on); an expression that cannot be evaluated shows why."""
    if step is None:
        return {}
    scope = {
        "input": run_input,
        "vars": state.vars,
        "steps": {
            sid: {"status": r.status.value, "output": r.output} for sid, r in state.steps.items()
        },
        "now": datetime.now(UTC),
    }
    values: dict[str, Any] = {}
    for key, source in step.input_mapping.items():
        try:
            values[key] = to_json(evaluate(source, scope))
        except ExpressionError as exc:
            values[key] = f"(cannot be shown: {exc})"
    return values
