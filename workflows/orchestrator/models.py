"""The contracts of agentic tasks: what `cadenza task` starts (TaskInput), what a run shows and
returns (TaskResult), and the graph's state (TaskState)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from activities.contracts import model_problem
from workflows.agent.graph import ModelCall, ModelCallConfig, ToolCall
from workflows.contracts import AuditEntry, ErrorInfo
from workflows.dsl.models import EffectiveRetryPolicy

ORCHESTRATOR_GRAPH = "cadenza-orchestrator"
APPROVAL_NODE = "human_approval"
"""The `step_id` approvers name in their `approve`/`reject` update (`cadenza approve ID
human_approval --by NAME`)."""

ROUTES: dict[str, str] = {
    "parallel": "parallel_executor",
    "conditional": "conditional_router",
    "react": "react_agent",
    "approval": APPROVAL_NODE,
    "error": "error_recovery",
}


class TaskInput(BaseModel):
    """What `cadenza task` starts: a free-form task and the actions it may use as tools."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=1, max_length=20_000, description="The task, in words.")
    tools: list[str] = Field(default_factory=list, description="Action names it may call.")
    model: str | None = Field(None, description="provider:name; the worker's default if unset.")
    capability: str | None = Field(
        None, description="Route model and tool activities to task queue cadenza.<capability>."
    )
    capabilities: list[
        Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=100)]
    ] = Field(
        default_factory=list,
        max_length=50,
        description="Capability queues the analysis may route subtasks to: a subtask with "
        "`capability: X` runs its tool on task queue cadenza.X.",
    )
    max_parallel_steps: int = Field(
        10, ge=1, le=2000, description="Subtasks of the parallel and conditional routes at once."
    )
    schedule_to_start_seconds: float = Field(
        300.0,
        gt=0,
        le=31_536_000,
        allow_inf_nan=False,
        description="How long a subtask routed to a capability queue waits for a worker (each "
        "attempt) before it fails with NoWorkerForCapability.",
    )
    require_approval: bool = Field(False, description="Ask a human before any tool runs.")
    approvers: list[str] = Field(default_factory=list, description="Who may decide (any: []).")
    approval_timeout: float = Field(86_400.0, gt=0, description="Seconds to wait for a decision.")
    max_iterations: int = Field(10, ge=1, le=1000, description="Model turns of the react route.")
    max_recoveries: int = Field(2, ge=0, le=10, description="error_recovery attempts.")
    timeout: float = Field(300.0, gt=0, description="Timeout of each model and tool call (s).")
    retry: EffectiveRetryPolicy = Field(
        default_factory=lambda: EffectiveRetryPolicy(max_attempts=3, backoff_coefficient=2.0),
        description="Retries of each model and tool call (the seed's: 3, exponential).",
    )

    @field_validator("model")
    @classmethod
    def _known_provider(cls, value: str | None) -> str | None:
        problem = model_problem(value) if value is not None else None
        if problem is not None:
            raise ValueError(problem)
        return value


class Decision(BaseModel):
    """One routing decision of the orchestrator node."""

    at: str
    strategy: str
    complexity: float
    reason: str


class TaskResult(BaseModel):
    """The live state (query `status`) and the result of an AgenticTaskRun."""

    execution_id: str
    task: str
    status: Literal["running", "waiting", "completed", "failed"] = "running"
    analysis: dict[str, Any] | None = None
    route: list[str] = Field(default_factory=list, description="Strategies taken, in order.")
    decisions: list[Decision] = Field(default_factory=list)
    answer: str | None = None
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    iterations: int = 0
    usage: dict[str, int] = Field(default_factory=dict)
    model_calls: list[dict[str, Any]] = Field(
        default_factory=list, description="Every model call: {purpose, model, usage}."
    )
    waiting: dict[str, Any] | None = Field(None, description="The approval asked for, if any.")
    approval_requests: int = 0
    approvals: list[AuditEntry] = Field(default_factory=list)
    error: ErrorInfo | None = None
    started_at: str = ""
    ended_at: str | None = None


class TaskConfig(ModelCallConfig, total=False):
    """Model and tool call settings, plus the task's own."""

    require_approval: bool
    max_recoveries: int
    capabilities: list[str]


class TaskState(TypedDict, total=False):
    task: str
    config: TaskConfig
    messages: list[dict[str, Any]]
    analysis: dict[str, Any] | None
    strategy: str
    forced: str | None
    tried: list[str]
    approved: bool | None
    done: bool
    error: str | None
    error_count: int
    failure: dict[str, Any] | None
    decisions: list[dict[str, Any]]
    trace: list[ToolCall]
    usage: dict[str, int]
    calls: list[ModelCall]
    iterations: int
    answer: str | None
