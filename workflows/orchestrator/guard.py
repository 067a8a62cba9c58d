"""Node exceptions of the orchestrator graph go to `error_recovery`, not to Temporal.

Deterministic code only. An exception escaping a node that runs in the workflow (a bug, or an
input no check foresaw) would fail the workflow task, which Temporal retries forever: the task
would hang. `guarded` turns it into the state's `error`, so the orchestrator routes to
`error_recovery` like any failed strategy; an exception in `error_recovery` itself, or in the
orchestrator once the task is failing, ends the task with a `WorkflowFailed` that names it.
What must reach the workflow untouched does: LangGraph's interrupt (GraphBubbleUp), Temporal's
own workflow errors (nondeterminism, read-only context) and cancellation (a BaseException).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import workflow

from activities.contracts import ErrorType
from workflows.orchestrator.models import TaskState

Node = Callable[[TaskState], Awaitable[dict[str, Any]]]
OnError = Callable[[TaskState, str], dict[str, Any]]


def _passes_through(exc: Exception) -> bool:
    from langgraph.errors import GraphBubbleUp

    return isinstance(
        exc, (GraphBubbleUp, workflow.NondeterminismError, workflow.ReadOnlyContextError)
    )


def guarded(name: str, node: Node, on_error: OnError | None = None) -> Node:
    """`node`, with an exception turned into `on_error(state, message)` (default: the state's
    `error`, so the next route is `error_recovery`). The message names the node."""

    @functools.wraps(node)
    async def run(state: TaskState) -> dict[str, Any]:
        try:
            return await node(state)
        except Exception as exc:
            if _passes_through(exc):
                raise
            message = f"{name}: {type(exc).__name__}: {exc}"[:500]
            workflow.logger.warning("orchestrator node failed: %s", message)
            return (on_error or node_error)(state, message)

    return run


def node_error(state: TaskState, message: str) -> dict[str, Any]:
    return {"error": message}


def orchestrator_error(state: TaskState, message: str) -> dict[str, Any]:
    """The orchestrator node failed: recovery, unless the task is already ending or has used
    up its recoveries (then the task ends, so a node that fails every time cannot loop)."""
    decisions = list(state.get("decisions", []))
    exhausted = state.get("error_count", 0) > state["config"].get("max_recoveries", 2)
    if state.get("failure") is not None or exhausted:
        failure = state.get("failure") or failed(
            f"{message}; after {state.get('error_count', 0)} recoveries"
        )
        decisions.append(_decision("complete", f"ended: {failure['message']}"))
        return {"strategy": "complete", "failure": failure, "decisions": decisions}
    decisions.append(_decision("error", message))
    return {"strategy": "error", "error": message, "decisions": decisions}


def _decision(strategy: str, reason: str) -> dict[str, Any]:
    at = workflow.now().isoformat()
    return {"at": at, "strategy": strategy, "complexity": 0.0, "reason": reason[:300]}


def recovery_error(state: TaskState, message: str) -> dict[str, Any]:
    """error_recovery itself failed: the task ends, naming both errors."""
    return {
        "error": None,
        "error_count": state.get("error_count", 0) + 1,
        "failure": failed(
            f"{message} (while recovering from: {state.get('error') or 'unknown error'})"
        ),
    }


def failed(message: str) -> dict[str, Any]:
    return {"type": ErrorType.WORKFLOW_FAILED, "message": message[:1000]}
