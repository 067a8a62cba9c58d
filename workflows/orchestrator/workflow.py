"""AgenticTaskRun: a free-form task run by the orchestrator graph (workflows/orchestrator/graph.py).

Deterministic code only. The workflow compiles the registered graph with an in-memory
checkpointer (it lives in the workflow's memory; replay rebuilds it from the history) and
invokes it. When `human_approval` interrupts, the run shows what it waits for (`status`
query, the Web UI's current details), waits for an `approve` or `reject` update (validated:
only while waiting, only listed approvers), and resumes the graph with the decision.

Signed decisions (as for approval steps, `workflows.engine.signatures`): a task takes the
workers' trusted approval keys into its history when it starts (the local activity
`cadenza.approvals.keys`; every task, since the model's analysis decides whether it needs a
human); with keys, a decision must be signed by one of them, for this run, unexpired, unused.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, cast

from pydantic import ValidationError
from temporalio import workflow
from temporalio.exceptions import ApplicationError

from activities.contracts import TASK_QUEUE_PREFIX, ErrorType
from workflows.agent.graph import model_call_config
from workflows.contracts import (
    SA_STATE,
    TASK_WORKFLOW,
    AuditEntry,
    DecisionInput,
    DecisionResult,
    ErrorInfo,
    PendingApproval,
    parse_signal,
)
from workflows.engine import approvals, queues, signatures
from workflows.engine.approvals import Decision as Verdict
from workflows.engine.signatures import Signing
from workflows.orchestrator.models import (
    APPROVAL_NODE,
    ORCHESTRATOR_GRAPH,
    Decision,
    TaskInput,
    TaskResult,
    TaskState,
)

SIGNED_DECISIONS = "task-signed-decisions"
"""Patch: a task begun with it takes the trusted approval keys at start (a local activity)."""
TASK_QUEUES = "task-queue-allow-list"
"""Patch: a task routed to capability queues checks them against CADENZA_QUEUES_ALLOW first."""


def task_routes(request: TaskInput) -> dict[str, str]:
    """The capability queues a task may send work to: its own `capability` and those its
    analysis may route subtasks to."""
    names = ([request.capability] if request.capability else []) + list(request.capabilities)
    return {name: TASK_QUEUE_PREFIX + name for name in names}


@workflow.defn(name=TASK_WORKFLOW, failure_exception_types=[ValidationError])
class AgenticTaskRun:
    """Runs one agentic task durably. Query `status` for its live state.

    An input that is not a valid TaskInput (a client other than CadenzaClient) fails the run
    with pydantic's message instead of failing its workflow task forever."""

    @workflow.init
    def __init__(self, request: TaskInput) -> None:
        self._result = TaskResult(
            execution_id=workflow.info().workflow_id,
            task=request.task,
            started_at=workflow.now().isoformat(),
        )
        self._approvers = list(request.approvers)
        self._decision: dict[str, Any] | None = None
        self._signing: Signing | None = None

    @workflow.query(name="status")
    def status(self) -> TaskResult:
        return self._result

    @workflow.update(name="approve")
    def approve(self, request: DecisionInput) -> DecisionResult:
        """Approve the plan the task waits on (step_id `human_approval`)."""
        return self._decide(request, "approve")

    @approve.validator
    def _check_approve(self, request: DecisionInput) -> None:
        self._refuse(request, "approve")

    @workflow.update(name="reject")
    def reject(self, request: DecisionInput) -> DecisionResult:
        """Reject the plan: the task ends failed with ApprovalRejected."""
        return self._decide(request, "reject")

    @reject.validator
    def _check_reject(self, request: DecisionInput) -> None:
        self._refuse(request, "reject")

    @workflow.signal(name="approve")
    def approve_signal(self, payload: Any) -> None:
        """The decision as a signal (what the Web UI can send): an invalid one is audited and
        ignored."""
        self._signalled(payload, "approve")

    @workflow.signal(name="reject")
    def reject_signal(self, payload: Any) -> None:
        self._signalled(payload, "reject")

    def _signalled(self, payload: Any, decision: Verdict) -> None:
        request, why = parse_signal(DecisionInput, payload, decision)
        if request is not None:
            try:
                self._refuse(request, decision)
            except ValueError as exc:
                why = f"{decision} signal ignored: {exc}"
        if request is None or why:
            who = payload.get("by", "") if isinstance(payload, dict) else ""
            self._result.approvals.append(
                AuditEntry(
                    at=workflow.now().isoformat(),
                    kind="ignored",
                    by=str(who),
                    detail=why[:300],
                    step_id=APPROVAL_NODE,
                )
            )
            return
        self._decide(request, decision)

    def _refuse(self, request: DecisionInput, decision: Verdict) -> None:
        """Raise ValueError with the reason `request` may not decide now (with trusted keys:
        unless signed by one of them for this run, step and decision, unexpired, unused)."""
        if request.step_id != APPROVAL_NODE:
            raise ValueError(
                f"an agentic task has one approval, {APPROVAL_NODE!r}; not {request.step_id!r}"
            )
        if self._result.waiting is None or self._decision is not None:
            raise ValueError(f"task {self._result.execution_id!r} is not waiting for a decision")
        pending = PendingApproval(
            step_id=APPROVAL_NODE, approvers=self._approvers, required=1, since=""
        )
        why = approvals.approver_refusal(pending, request.by)
        if why is None and self._signing is not None:
            execution_id = self._result.execution_id
            why = self._signing.refusal(execution_id, request, decision, workflow.now())
        if why is not None:
            raise ValueError(why)

    def _decide(self, request: DecisionInput, decision: Verdict) -> DecisionResult:
        at = workflow.now().isoformat()
        self._decision = {"decision": decision, "by": request.by, "reason": request.comment}
        verified = self._signing.accept(request) if self._signing is not None else None
        self._result.approvals.append(
            AuditEntry(
                at=at,
                kind=decision,
                by=request.by,
                detail=request.comment,
                step_id=APPROVAL_NODE,
                verified_key=verified,
            )
        )
        outcome = "approved" if decision == "approve" else "rejected"
        return DecisionResult(step_id=APPROVAL_NODE, outcome=outcome, approvals=1, required=1)

    @workflow.run
    async def run(self, request: TaskInput) -> TaskResult:
        # first, before anything that waits (workflows/engine/versions.py says why)
        signed = workflow.patched(SIGNED_DECISIONS)
        routes = task_routes(request)
        checked = bool(routes) and workflow.patched(TASK_QUEUES)
        from langgraph.checkpoint.memory import InMemorySaver
        from langgraph.errors import GraphRecursionError
        from langgraph.types import Command
        from temporalio.langgraph import graph

        app = graph(ORCHESTRATOR_GRAPH).compile(checkpointer=InMemorySaver())
        config: Any = {
            "configurable": {"thread_id": self._result.execution_id},
            "recursion_limit": 8 * (request.max_recoveries + 3),
        }
        self._show()
        if checked:
            error = queues.refusal(routes, await queues.allowed_queues(), steps=False)
            if error is not None:  # before any model or tool call
                failure = {"type": error.type, "message": error.message}
                return self._finish({"failure": failure})  # type: ignore[typeddict-item]
        if signed:
            self._signing = await signatures.trusted()
        try:
            output = await app.ainvoke(_initial(request), config, version="v2")
            while output.interrupts:
                asked = output.interrupts[0].value  # never its id: not replay-stable
                await self._wait_for_decision(asked, request.approval_timeout)
                decision, self._decision = self._decision, None
                output = await app.ainvoke(Command(resume=decision), config, version="v2")
        except GraphRecursionError as exc:  # a route that never ends: fail, do not hang
            failure = {"type": ErrorType.WORKFLOW_FAILED, "message": f"the graph looped: {exc}"}
            return self._finish({"failure": failure})  # type: ignore[typeddict-item]
        return self._finish(output.value)

    async def _wait_for_decision(self, asked: dict[str, Any], timeout: float) -> None:
        self._result.status = "waiting"
        self._result.waiting = {
            **asked,
            "since": workflow.now().isoformat(),
            "approvers": self._approvers,
        }
        self._result.approval_requests += 1
        # `cadenza pending` finds waiting runs by this attribute (as for approval steps)
        workflow.upsert_search_attributes([SA_STATE.value_set("waiting")])
        self._show()
        try:
            await workflow.wait_condition(
                lambda: self._decision is not None,
                timeout=timedelta(seconds=timeout),
                timeout_summary="approval timeout",
            )
        except TimeoutError:
            reason = f"no decision within {timeout:g} s"
            self._decision = {"decision": "timeout", "by": "", "reason": reason}
            self._result.approvals.append(
                AuditEntry(
                    at=workflow.now().isoformat(),
                    kind="timeout",
                    detail=reason,
                    step_id=APPROVAL_NODE,
                )
            )
        self._result.status = "running"
        self._result.waiting = None
        workflow.upsert_search_attributes([SA_STATE.value_set("running")])
        self._show()

    def _finish(self, final: TaskState) -> TaskResult:
        result = self._result
        result.analysis = final.get("analysis")
        result.decisions = [Decision(**d) for d in final.get("decisions", [])]
        result.route = [d.strategy for d in result.decisions]
        result.answer = final.get("answer")
        result.tool_calls = cast(list[dict[str, Any]], final.get("trace", []))
        result.iterations = final.get("iterations", 0)
        result.usage = final.get("usage", {})
        result.model_calls = cast(list[dict[str, Any]], final.get("calls", []))
        result.ended_at = workflow.now().isoformat()
        failure = final.get("failure")
        if failure is None and not final.get("done"):
            failure = {"type": ErrorType.WORKFLOW_FAILED, "message": "the graph ended undone"}
        if failure is None:
            result.status = "completed"
            self._show()
            return result
        result.status = "failed"
        result.error = ErrorInfo(
            type=failure["type"], message=failure["message"], non_retryable=True
        )
        self._show()
        raise ApplicationError(
            f"{failure['type']}: {failure['message']}",
            result.model_dump(mode="json"),
            type=str(failure["type"]),
            non_retryable=True,
        )

    def _show(self) -> None:
        """The Web UI's current details: status, route so far, what the task waits for."""
        result = self._result
        lines = [f"**{result.status}**: {result.task[:200]}"]
        if result.route:
            lines.append("route: " + " -> ".join(result.route))
        if result.waiting is not None:
            lines.append(
                f"waiting for approval: `cadenza approve {result.execution_id} {APPROVAL_NODE} "
                "--by NAME` (or reject)"
            )
            lines.append(
                "```json\n" + json.dumps(result.waiting.get("plan"), indent=1)[:2000] + "\n```"
            )
        workflow.set_current_details("\n\n".join(lines))


def _initial(request: TaskInput) -> TaskState:
    config = model_call_config(
        step_id="task",
        workflow_id=TASK_WORKFLOW,
        model=request.model,
        timeout=request.timeout,
        capability=request.capability,
        retry=request.retry,
    )
    return {
        "task": request.task,
        "config": {
            **config,
            "tools": list(request.tools),
            "max_iterations": request.max_iterations,
            "require_approval": request.require_approval,
            "max_recoveries": request.max_recoveries,
            "capabilities": list(request.capabilities),
            "max_parallel_steps": request.max_parallel_steps,
            "schedule_to_start": request.schedule_to_start_seconds,
        },
        "messages": [],
        "analysis": None,
        "tried": [],
        "decisions": [],
        "trace": [],
        "usage": {},
        "calls": [],
        "iterations": 0,
        "error_count": 0,
    }
