"""Agentic tasks: `AgenticTaskRun` runs a free-form task through the seed's orchestrator graph
(`graph.py`; decisions in `strategy.py`, contracts in `models.py`)."""

from workflows.contracts import TASK_WORKFLOW
from workflows.orchestrator.graph import build_orchestrator_graph
from workflows.orchestrator.models import (
    APPROVAL_NODE,
    ORCHESTRATOR_GRAPH,
    TaskInput,
    TaskResult,
    TaskState,
)
from workflows.orchestrator.workflow import AgenticTaskRun

__all__ = [
    "APPROVAL_NODE",
    "ORCHESTRATOR_GRAPH",
    "TASK_WORKFLOW",
    "AgenticTaskRun",
    "TaskInput",
    "TaskResult",
    "TaskState",
    "build_orchestrator_graph",
]
