"""Definition models (the DSL contract) and execution-state models of cadenza.

Field names follow the seed's `AdvancedWorkflow` / `WorkflowStep` dataclasses and
`shared/DESIGN.md`; they are a public contract. Every field carries a description so that
`cadenza schema` yields a JSON Schema editors can use for YAML.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

WORKFLOW_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
STEP_ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]*$"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StepType(StrEnum):
    """What a step does. `action` runs one registered action as a Temporal activity."""

    ACTION = "action"
    PARALLEL = "parallel"
    LOOP = "loop"
    CONDITIONAL = "conditional"
    APPROVAL = "approval"
    AGENT = "agent"
    WAIT = "wait"


class RetryPolicySpec(_Model):
    """Retry settings. Unset keys inherit from the workflow's policy, then from the defaults."""

    max_attempts: int | None = Field(
        None, ge=1, le=1000, description="Attempts in all, the first included (default 3)."
    )
    initial_interval: float | None = Field(
        None, gt=0, le=86400, description="Seconds before the first retry (default 1)."
    )
    backoff_coefficient: float | None = Field(
        None,
        ge=1,
        le=100,
        description="Multiplier applied to the interval per retry (default 2.0).",
    )
    maximum_interval: float | None = Field(
        None,
        gt=0,
        le=86400,
        description="Upper bound of the retry interval in seconds (default 60).",
    )
    non_retryable_errors: list[str] | None = Field(
        None, description="Error type names that fail the step at once, without retries."
    )
    continue_on_failure: bool | None = Field(
        None,
        description="When the step fails after its retries, the workflow goes on and its "
        "dependents still run (default false).",
    )
    parallel_failure_threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Fraction of a parallel container's children that must succeed (default 0.5).",
    )


class EffectiveRetryPolicy(_Model):
    """A retry policy with every key resolved (step over workflow over defaults)."""

    max_attempts: int = 3
    initial_interval: float = 1.0
    backoff_coefficient: float = 2.0
    maximum_interval: float = 60.0
    non_retryable_errors: list[str] = Field(default_factory=list)
    continue_on_failure: bool = False
    parallel_failure_threshold: float = 0.5

    @classmethod
    def merge(cls, *policies: RetryPolicySpec | None) -> EffectiveRetryPolicy:
        """Resolve policies key by key; later policies override earlier ones."""
        values: dict[str, Any] = {}
        for policy in policies:
            if policy is not None:
                values.update(policy.model_dump(exclude_none=True))
        return cls(**values)


class Condition(_Model):
    """A CEL condition. On a conditional step it selects `next_steps`; elsewhere it is a guard."""

    when: str = Field(description="CEL expression over input, vars, steps and now.")
    next_steps: list[str] = Field(
        default_factory=list, description="Steps to run when this condition is the first true one."
    )


class ApprovalSpec(_Model):
    """Settings of an `approval` step (see DESIGN.md, approval steps)."""

    approvers: list[str] = Field(default_factory=list, description="Who may decide; empty: anyone.")
    required_approvals: int = Field(1, ge=1, description="Approvals needed; one rejection rejects.")
    on_timeout: Literal["reject", "approve", "escalate"] = Field(
        "reject", description="What happens when the step's timeout passes without a decision."
    )
    escalate_to: list[str] = Field(
        default_factory=list, description="Approvers asked after an escalation."
    )
    reminder_every: float | None = Field(
        None, gt=0, description="Seconds between reminders while the step waits."
    )
    reminder_action: str = Field(
        "std.log",
        description="Action run for each reminder and escalation, with {step_id, message, "
        "approvers, waiting_seconds} (std.log, std.http or your own).",
    )
    escalation_timeout: float | None = Field(
        None, gt=0, description="Seconds the escalation approvers get; default: the step timeout."
    )


class AgentSpec(_Model):
    """Settings of an `agent` step: a LangGraph ReAct loop whose tools are actions."""

    instructions: str = Field(description="System instructions of the agent.")
    tools: list[str] = Field(default_factory=list, description="Action names offered as tools.")
    max_iterations: int = Field(10, ge=1, le=1000, description="Model turns before failing.")
    model: str | None = Field(None, description="Chat model name; the worker's default if unset.")
    max_context_bytes: int = Field(
        32_000,
        ge=2_000,
        le=1_000_000,
        description="Bytes of the conversation one model call sends: the instructions, the task"
        " and the latest messages that fit (keeps each call's history cost bounded).",
    )


class RouterSpec(_Model):
    """A model that picks a conditional step's branch (with `adaptive_routing`)."""

    instructions: str = Field(description="How to choose; the branches are listed for the model.")
    model: str | None = Field(None, description="Chat model name; the worker's default if unset.")


class WaitSpec(_Model):
    """Settings of a `wait` step: a durable timer."""

    seconds: float | None = Field(None, ge=0, description="Wait this many seconds.")
    until: str | None = Field(None, description="CEL expression giving a timestamp to wait for.")


class SlaTargets(_Model):
    """Service-level targets: breaches are recorded and alerted, never fail the run."""

    max_duration_seconds: float | None = Field(None, gt=0, description="Whole-run target.")
    step_max_seconds: dict[str, float] = Field(
        default_factory=dict, description="Per-step targets, by step id."
    )


class WorkflowStep(_Model):
    """One step of a workflow definition."""

    step_id: str = Field(
        pattern=STEP_ID_PATTERN,
        max_length=128,
        description="Unique id across the whole definition, nested steps included.",
    )
    name: str = Field("", description="Human-readable name.")
    step_type: StepType = Field(StepType.ACTION, description="What the step does.")
    action: str | None = Field(None, description="Registered action name (for action steps).")
    agent_capability: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9_.-]*$",
        description="Routes the step's activities to task queue `cadenza.<capability>`.",
    )
    timeout: float = Field(300, gt=0, le=31_536_000, description="Step timeout in seconds.")
    execution: Literal["activity", "local"] = Field(
        "activity",
        description="`local` runs the action as a Temporal local activity: one history event "
        "instead of about six, for short idempotent actions (no heartbeats; retried by the "
        "workflow worker).",
    )
    input_mapping: dict[str, str] = Field(
        default_factory=dict, description="param -> CEL expression building the action's input."
    )
    output_mapping: dict[str, str] = Field(
        default_factory=dict, description="var -> CEL expression over `result`, written to vars."
    )
    input_validation: dict[str, Any] = Field(
        default_factory=dict, description="JSON Schema the mapped input must satisfy."
    )
    dependencies: list[str] = Field(
        default_factory=list, description="Steps that must be satisfied before this one starts."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Conditional step: branches (first true wins). "
        "Other steps: guards (all must hold).",
    )
    next_steps: list[str] = Field(
        default_factory=list, description="Conditional step: the default branch."
    )
    error_handlers: list[str] = Field(
        default_factory=list, description="Action names run in order when the step fails."
    )
    retry_policy: RetryPolicySpec | None = Field(
        None, description="Overrides the workflow's retry policy key by key."
    )
    rollback_actions: list[str] = Field(
        default_factory=list, description="Action names that compensate the step (saga)."
    )
    parallel_steps: list[WorkflowStep] = Field(
        default_factory=list, description="Children of a parallel container or loop body."
    )
    loop_condition: str | None = Field(
        None, description="CEL: the loop repeats while it is true (over result, iteration, vars)."
    )
    loop_max_iterations: int = Field(
        100, ge=1, le=1_000_000, description="Iterations before LoopLimitExceeded."
    )
    metrics_enabled: bool = Field(True, description="Record metrics for this step.")
    custom_metrics: list[str] = Field(default_factory=list, description="Extra metric names.")
    approval: ApprovalSpec | None = Field(None, description="Settings of an approval step.")
    agent: AgentSpec | None = Field(None, description="Settings of an agent step.")
    router: RouterSpec | None = Field(
        None, description="A conditional step's model router (used with adaptive_routing)."
    )
    wait: WaitSpec | None = Field(None, description="Settings of a wait step.")


class AdvancedWorkflow(_Model):
    """A workflow definition: steps with dependencies, run as one Temporal workflow execution."""

    workflow_id: str = Field(
        pattern=WORKFLOW_ID_PATTERN, max_length=200, description="Stable id of the definition."
    )
    name: str = Field("", description="Human-readable name.")
    description: str = Field("", description="What the workflow does.")
    version: str = Field("1.0", max_length=64, description="Version of the definition.")
    steps: list[WorkflowStep] = Field(default_factory=list, description="The steps.")
    global_variables: dict[str, Any] = Field(
        default_factory=dict, description="Initial `vars`, visible to every expression."
    )
    timeout: float = Field(3600, gt=0, le=31_536_000, description="Whole-run timeout in seconds.")
    max_parallel_steps: int = Field(
        10, ge=1, le=2000, description="Steps running at once, at most."
    )
    retry_policy: RetryPolicySpec | None = Field(None, description="Default retry policy of steps.")
    sla_targets: SlaTargets | None = Field(None, description="Service-level targets.")
    optimization_enabled: bool = Field(
        True, description="Start the ready step with the longest remaining critical path first."
    )
    adaptive_routing: bool = Field(True, description="Let conditional steps route with a model.")
    created_at: str | None = Field(None, description="When the definition was written.")
    created_by: str | None = Field(None, description="Who wrote it.")
    tags: list[str] = Field(default_factory=list, description="Free-form labels.")

    def all_steps(self) -> list[WorkflowStep]:
        """Every step, nested ones included, depth first in definition order."""
        out: list[WorkflowStep] = []
        stack = list(reversed(self.steps))
        while stack:
            step = stack.pop()
            out.append(step)
            stack.extend(reversed(step.parallel_steps))
        return out


# --------------------------------------------------------------------------- execution state


class StepStatus(StrEnum):
    """Lifecycle of a step in one execution."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    WAITING = "waiting"
    RETRYING = "retrying"


class WorkflowState(StrEnum):
    """Lifecycle of one execution."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"


class ErrorInfo(BaseModel):
    """An error as recorded in the execution state."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="Error type name, e.g. StepFailed, InputValidationError.")
    message: str
    step_id: str | None = None
    non_retryable: bool = False


class StepRecord(BaseModel):
    """What happened to one step in one execution."""

    model_config = ConfigDict(extra="forbid")

    status: StepStatus = StepStatus.PENDING
    attempts: int = 0
    retry_count: int = 0
    input: Any = None
    output: Any = None
    error: ErrorInfo | None = None
    started_at: str | None = None
    ended_at: str | None = None
    recovered_by: str | None = Field(None, description="Error handler that recovered the step.")
    skip_reason: str | None = None


class CompensationRecord(BaseModel):
    """One rollback action run during saga compensation."""

    model_config = ConfigDict(extra="forbid")

    step_id: str
    action: str
    status: Literal["completed", "failed"]
    error: ErrorInfo | None = None


class AuditEntry(BaseModel):
    """Something a person or the engine did to a run: a pause, a resume, a decision."""

    model_config = ConfigDict(extra="forbid")

    at: str = Field(description="Workflow time, ISO 8601.")
    kind: str = Field(
        description="pause, resume, approve, reject, reminder, escalation, timeout, ignored"
    )
    by: str = ""
    detail: str = ""
    step_id: str | None = None


class DecisionInput(BaseModel):
    """Payload of the `approve` / `reject` updates and signals."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    step_id: str = Field(description="The approval step decided.")
    by: str = Field(min_length=1, description="Who decides.")
    comment: str = Field("", description="Why (for a rejection: the reason).")


class Vote(BaseModel):
    """One approver's decision."""

    model_config = ConfigDict(extra="forbid")

    by: str
    decision: Literal["approve", "reject"]
    comment: str = ""
    at: str


class PendingApproval(BaseModel):
    """An approval step waiting for decisions."""

    model_config = ConfigDict(extra="forbid")

    step_id: str
    approvers: list[str] = Field(description="Who may decide now; empty: anyone.")
    required: int
    votes: list[Vote] = Field(default_factory=list)
    since: str
    escalated: bool = False

    @property
    def approvals(self) -> int:
        return sum(v.decision == "approve" for v in self.votes)

    @property
    def outcome(self) -> Literal["approved", "rejected"] | None:
        if any(v.decision == "reject" for v in self.votes):
            return "rejected"
        return "approved" if self.approvals >= self.required else None


class DecisionResult(BaseModel):
    """What an `approve` / `reject` update returns."""

    model_config = ConfigDict(extra="forbid")

    step_id: str
    outcome: Literal["pending", "approved", "rejected"]
    approvals: int
    required: int


class PauseInput(BaseModel):
    """Payload of the `pause` and `resume` signals (both fields optional)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    by: str = ""
    reason: str = ""


class ExecutionResult(BaseModel):
    """The execution result and live state (`cadenza run --json`, `cadenza status --json`)."""

    model_config = ConfigDict(extra="forbid")

    execution_id: str
    workflow_id: str
    version: str
    status: WorkflowState = WorkflowState.RUNNING
    vars: dict[str, Any] = Field(default_factory=dict)
    error: ErrorInfo | None = None
    steps: dict[str, StepRecord] = Field(default_factory=dict)
    compensations: list[CompensationRecord] = Field(default_factory=list)
    approvals: list[AuditEntry] = Field(
        default_factory=list, description="Every decision, reminder, escalation, ignored signal."
    )
    sla: dict[str, Any] = Field(default_factory=dict)
    started_at: str | None = None
    ended_at: str | None = None
    paused: bool = False
    audit: list[AuditEntry] = Field(default_factory=list)
    pending_approvals: dict[str, PendingApproval] = Field(default_factory=dict)


class ExecutionOptions(BaseModel):
    """How the engine keeps histories bounded (the seed's `execution_options`), and what the
    Web UI shows of each step.

    The defaults keep every execution's history well under Temporal's 10k-event guidance; tests
    lower them to exercise child workflows and continue-as-new on small definitions.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch_threshold: int = Field(
        1000, ge=1, description="Parallel containers with more children run them in batches."
    )
    batch_size: int = Field(1000, ge=1, description="Children per batch child workflow.")
    loop_inline_iterations: int = Field(
        200, ge=1, description="Iterations run in the workflow before a loop moves to a child."
    )
    continue_as_new_every: int = Field(
        500, ge=1, description="Iterations per run of a loop child before it continues as new."
    )
    max_kept_results: int = Field(
        1000, ge=1, description="Iteration outputs a loop keeps (the latest ones)."
    )
    activity_summaries: bool = Field(
        False,
        description="Label each step's activity with its step id in the Web UI. Each label is"
        " one more payload for the SDK to convert: about 0.2-0.3 ms of worker CPU per step,"
        " 5-10% of a short step's cost (docs/benchmarks.md).",
    )


class RunInput(BaseModel):
    """Input of the `AdvancedWorkflowRun` workflow.

    The definition travels as a plain dict and is validated inside the workflow: a payload that
    failed to decode into a model would stall the workflow task instead of failing the run.
    """

    model_config = ConfigDict(extra="forbid")

    definition: dict[str, Any]
    input: dict[str, Any] = Field(default_factory=dict)
    known_actions: list[str] | None = Field(
        None, description="Action names the starter knew of; unknown actions fail validation."
    )
    options: ExecutionOptions = Field(default_factory=ExecutionOptions)


class ScopeSnapshot(BaseModel):
    """What a child workflow's expressions see of its parent."""

    model_config = ConfigDict(extra="forbid")

    input: dict[str, Any] = Field(default_factory=dict)
    vars: dict[str, Any] = Field(default_factory=dict)
    steps: dict[str, dict[str, Any]] = Field(default_factory=dict)


class BatchInput(BaseModel):
    """Input of `CadenzaBatchRun`: some children of a large parallel container."""

    model_config = ConfigDict(extra="forbid")

    definition: dict[str, Any] = Field(description="The parent's settings; steps: the batch.")
    scope: ScopeSnapshot
    options: ExecutionOptions = Field(default_factory=ExecutionOptions)


class ChildResult(BaseModel):
    """What a child workflow hands back: step records, completions, vars it wrote."""

    model_config = ConfigDict(extra="forbid")

    records: dict[str, StepRecord] = Field(default_factory=dict)
    completion_order: list[str] = Field(default_factory=list)
    vars: dict[str, Any] = Field(default_factory=dict)
    output: Any = None
    error: ErrorInfo | None = None


class LoopProgress(BaseModel):
    """Where a loop stands; carried into its child workflow and across continue-as-new."""

    model_config = ConfigDict(extra="forbid")

    iterations: int = 0
    results: list[Any] = Field(default_factory=list)
    results_offset: int = Field(0, description="Iteration index of results[0].")
    last: Any = None
    attempts: int = 0


class LoopInput(BaseModel):
    """Input of `CadenzaLoopRun`: one loop step, continued from `progress`."""

    model_config = ConfigDict(extra="forbid")

    definition: dict[str, Any] = Field(description="The parent's settings; steps: the loop.")
    scope: ScopeSnapshot
    progress: LoopProgress
    options: ExecutionOptions = Field(default_factory=ExecutionOptions)
