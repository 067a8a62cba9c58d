"""The runtime contracts of cadenza's workflows: what travels between a client, the workflows,
their child workflows and their updates, signals and queries (the execution result, step records,
decisions, batch and loop inputs), plus the names history keeps (workflow types, search
attributes). Definitions (the DSL) are in `workflows.dsl.models`.

New fields get defaults, so that running workflows keep decoding their inputs.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio.common import SearchAttributeKey
from typing_extensions import TypedDict  # pydantic needs it for TypedDict fields before 3.12

from activities.contracts import Execution

# Workflow types: names history keeps (never derived from module paths).
# What people and systems send to a run, and what they get back (workflows/messages.py),
# importable from here as before.
from workflows.messages import (
    CancelStepInput as CancelStepInput,
    CancelStepResult as CancelStepResult,
    DecisionInput as DecisionInput,
    DecisionResult as DecisionResult,
    EventInput as EventInput,
    EventResult as EventResult,
    FailStepInput as FailStepInput,
    PauseInput as PauseInput,
    RetryStepInput as RetryStepInput,
    SkipStepInput as SkipStepInput,
    StepDecision as StepDecision,
    StepDecisionResult as StepDecisionResult,
)

RUN_WORKFLOW = "AdvancedWorkflowRun"
BATCH_WORKFLOW = "CadenzaBatchRun"
LOOP_WORKFLOW = "CadenzaLoopRun"
TASK_WORKFLOW = "AgenticTaskRun"
KEYS_ACTIVITY = "cadenza.approvals.keys"
"""The local activity that gives a run with approval steps the workers' trusted approval keys."""
RESOLVE_ACTIVITY = "cadenza.definitions.resolve"
"""The local activity that gives a run started by name its definition (recorded in history)."""


# Search attributes cadenza's workflows set (registered by `cadenza server` and `cadenza setup`).
SA_WORKFLOW_ID = SearchAttributeKey.for_keyword("CadenzaWorkflowId")
SA_VERSION = SearchAttributeKey.for_keyword("CadenzaVersion")
SA_STATE = SearchAttributeKey.for_keyword("CadenzaState")
SA_RERUN_OF = SearchAttributeKey.for_keyword("CadenzaRerunOf")
SA_SCHEDULE_ID = SearchAttributeKey.for_keyword("CadenzaScheduleId")
SA_TAGS = SearchAttributeKey.for_keyword_list("CadenzaTags")
"""The definition's `tags`, upserted at start: `CadenzaTags = 'billing'` finds its runs."""


class StepStatus(StrEnum):
    """Lifecycle of a step in one execution."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    WAITING = "waiting"
    RETRYING = "retrying"
    CANCELLED = "cancelled"
    SUSPENDED = "suspended"


class WorkflowState(StrEnum):
    """Lifecycle of one execution."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    SUSPENDED = "suspended"
    """Running, but a step has used up its retries and waits for an operator's decision."""


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
    mutex: str | None = Field(None, description="The mutex name the step holds or waits for.")
    mutex_holder: str | None = Field(
        None, description="While the step waits for its mutex: the holder's execution id."
    )
    reused_from: str | None = Field(
        None, description="A rerun: the run whose completed step this record was copied from."
    )
    mutex_wait_seconds: float | None = Field(
        None, description="How long the step waited for its mutex (started_at is when it got it)."
    )


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
        description="pause, resume, approve, reject, reminder, escalation, timeout, event, "
        "cancel_step, ignored"
    )
    by: str = ""
    detail: str = ""
    step_id: str | None = None
    verified_key: str | None = Field(
        None, description="A signed decision: the trusted key its signature was verified with."
    )


class SuspendedStep(BaseModel):
    """A step that used up its retries and waits for an operator (`on_exhausted: suspend`)."""

    model_config = ConfigDict(extra="forbid")

    step_id: str
    since: str
    error: ErrorInfo
    attempts: int = 0


class ReceivedEvent(BaseModel):
    """An event the run accepted: consumed by a step, or buffered until one waits for it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    data: Any = None
    by: str = ""
    received_at: str


class PendingEvent(BaseModel):
    """An event step waiting for its event."""

    model_config = ConfigDict(extra="forbid")

    step_id: str
    name: str
    since: str
    transient: bool = False
    received: ReceivedEvent | None = None


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


class SlaBreach(TypedDict):
    """One SLA target missed: recorded and alerted, never failing the run."""

    rule: str
    """`sla.run` or `sla.step`."""
    step_id: str | None
    target_seconds: float
    at: str
    alert: str
    """`pending`, `sent` or `failed: <why>`."""


class SlaState(TypedDict, total=False):
    """A run's SLA: its targets (the definition's `sla_targets`) and the breaches so far."""

    targets: dict[str, Any]
    breaches: list[SlaBreach]


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
    sla: SlaState = Field(
        default_factory=lambda: SlaState(), description="SLA targets and breaches; {} without."
    )
    started_at: str | None = None
    ended_at: str | None = None
    paused: bool = False
    audit: list[AuditEntry] = Field(default_factory=list)
    pending_approvals: dict[str, PendingApproval] = Field(default_factory=dict)
    rerun_of: str | None = Field(None, description="The run this one reruns (cadenza rerun).")
    pending_events: dict[str, PendingEvent] = Field(
        default_factory=dict, description="Event steps waiting now, by step id."
    )
    suspended: dict[str, SuspendedStep] = Field(
        default_factory=dict, description="Steps waiting for retry_step, skip_step or fail_step."
    )
    buffered_events: list[ReceivedEvent] = Field(
        default_factory=list,
        description="Events accepted while no step waited for them, in arrival order.",
    )


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
    depth: int = Field(
        0, ge=0, description="How deeply this run is nested in sub-workflows (0: top level)."
    )
    mutex_check_seconds: float = Field(
        30,
        gt=0,
        le=3600,
        description="How often a mutex checks that the run holding it still runs (a terminated"
        " holder releases it within this time).",
    )
    schedule_to_start_seconds: float = Field(
        300,
        gt=0,
        le=31_536_000,
        description="How long an activity of a step with `agent_capability` may wait for a"
        " worker polling its queue `cadenza.<capability>` (each attempt): then the step fails"
        " with NoWorkerForCapability.",
    )
    activity_summaries: bool = Field(
        False,
        description="Label each step's activity with its step id in the Web UI. Each label is"
        " one more payload for the SDK to convert: about 0.2-0.3 ms of worker CPU per step,"
        " 5-10% of a short step's cost (docs/benchmarks.md).",
    )
    action_execution: dict[str, Execution] | None = Field(
        None,
        description="Set by the run: each action's declared execution, as its workers told it at"
        " start (workflows/engine/facts.py); None in runs that predate declarations.",
    )
    step_seconds: dict[str, float] = Field(
        default_factory=dict,
        description="Set by the run: step id -> median seconds in recent runs, which orders"
        " steps waiting for a slot (longest measured path first).",
    )


class RunInput(BaseModel):
    """Input of the `AdvancedWorkflowRun` workflow.

    The definition travels as a plain dict and is validated inside the workflow: a payload that
    failed to decode into a model would stall the workflow task instead of failing the run.
    """

    model_config = ConfigDict(extra="forbid")

    definition: dict[str, Any] = Field(
        default_factory=dict, description="The definition; empty when started by `workflow`."
    )
    workflow: str | None = Field(
        None,
        description="Start by name: a workflow_id the workers serve (cadenza worker "
        "--definitions DIR); the definition used is recorded in the history at start.",
    )
    version: str | None = Field(
        None, description="With `workflow`: its version (default the highest)."
    )
    input: dict[str, Any] = Field(default_factory=dict)
    known_actions: list[str] | None = Field(
        None, description="Action names the starter knew of; unknown actions fail validation."
    )
    options: ExecutionOptions = Field(default_factory=ExecutionOptions)
    rerun_of: str | None = Field(None, description="A rerun: the run it reruns.")
    reuse: dict[str, StepRecord] = Field(
        default_factory=dict,
        description="A rerun: the original's records of completed steps it does not run again.",
    )


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
    map_items: list[Any] | None = Field(
        None, description="A map's batch: these items (steps: the map step) from map_offset on."
    )
    map_offset: int = Field(0, ge=0, description="The index of the first of map_items.")


class Termination(BaseModel):
    """A `terminate` step ended the run (status completed or failed)."""

    model_config = ConfigDict(extra="forbid")

    step_id: str
    status: Literal["completed", "failed"]
    message: str = ""
    error_type: str = "Terminated"


class ChildResult(BaseModel):
    """What a child workflow hands back: step records, completions, vars it wrote."""

    model_config = ConfigDict(extra="forbid")

    records: dict[str, StepRecord] = Field(default_factory=dict)
    completion_order: list[str] = Field(default_factory=list)
    vars: dict[str, Any] = Field(default_factory=dict)
    output: Any = None
    error: ErrorInfo | None = None
    termination: Termination | None = Field(
        None, description="A terminate step in the child ended the run."
    )


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


Message = TypeVar("Message", bound=BaseModel)


def parse_signal(model: type[Message], payload: Any, signal: str) -> tuple[Message | None, str]:
    """A signal's payload as `model`, or (None, why it is ignored): a signal cannot be refused
    like an update, so an invalid one is audited instead (decisions, `cancel_step`)."""
    try:
        return model.model_validate(payload), ""
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        fields = ", ".join(
            name + ("" if field.is_required() else "?")
            for name, field in model.model_fields.items()
        )
        return None, f"{signal} signal ignored: {problems} (expected {{{fields}}})"
