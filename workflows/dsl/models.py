"""Definition models of cadenza: the DSL contract (execution-state models: workflows.contracts).

Field names follow the seed's `AdvancedWorkflow` / `WorkflowStep` dataclasses and
`shared/DESIGN.md`; they are a public contract. Every field carries a description so that
`cadenza schema` yields a JSON Schema editors can use for YAML.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# The execution-state models live in workflows/contracts.py (runtime contracts, not the DSL);
# re-exported here because shared/DESIGN.md's layout names this module for them.
from workflows.contracts import (
    AuditEntry as AuditEntry,
    BatchInput as BatchInput,
    ChildResult as ChildResult,
    CompensationRecord as CompensationRecord,
    DecisionInput as DecisionInput,
    DecisionResult as DecisionResult,
    ErrorInfo as ErrorInfo,
    ExecutionOptions as ExecutionOptions,
    ExecutionResult as ExecutionResult,
    LoopInput as LoopInput,
    LoopProgress as LoopProgress,
    PauseInput as PauseInput,
    PendingApproval as PendingApproval,
    RunInput as RunInput,
    ScopeSnapshot as ScopeSnapshot,
    StepRecord as StepRecord,
    StepStatus as StepStatus,
    Vote as Vote,
    WorkflowState as WorkflowState,
)

WORKFLOW_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
STEP_ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]*$"

MAX_SECONDS = 315_360_000
"""The longest duration a definition may name (10 years): Temporal's timers accept it and
`timedelta` holds it; beyond it (or inf, NaN) a timer would fail the workflow task on every
retry instead of the definition failing validation. Every number of a definition is finite
(`allow_inf_nan=False`) and bounded (tests/unit/test_numbers.py walks them all)."""
MIN_REMINDER_SECONDS = 1
"""The shortest `reminder_every`: timers have about 1 s granularity, and each reminder runs an
activity (a tighter loop floods the history)."""
MAX_APPROVALS = 100
"""The most approvals one approval step may require (each vote keeps a comment in the result)."""

Seconds = Annotated[float, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)]
"""A positive, finite duration in seconds, at most MAX_SECONDS."""


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
    TERMINATE = "terminate"
    MAP = "map"
    WORKFLOW = "workflow"
    EVENT = "event"


class RetryPolicySpec(_Model):
    """Retry settings. Unset keys inherit from the workflow's policy, then from the defaults."""

    max_attempts: int | None = Field(
        None, ge=1, le=1000, description="Attempts in all, the first included (default 3)."
    )
    initial_interval: float | None = Field(
        None,
        gt=0,
        le=86400,
        allow_inf_nan=False,
        description="Seconds before the first retry (default 1).",
    )
    backoff_coefficient: float | None = Field(
        None,
        ge=1,
        le=100,
        allow_inf_nan=False,
        description="Multiplier applied to the interval per retry (default 2.0).",
    )
    maximum_interval: float | None = Field(
        None,
        gt=0,
        le=86400,
        allow_inf_nan=False,
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
        allow_inf_nan=False,
        description="Fraction of a parallel container's children that must succeed (default 0.5).",
    )
    on_exhausted: Literal["fail", "suspend"] | None = Field(
        None,
        description="When the step has used up its retries (and no error handler recovered it): "
        "fail (default), or suspend: the run waits for an operator's retry_step, skip_step or "
        "fail_step.",
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
    on_exhausted: Literal["fail", "suspend"] = "fail"

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
    required_approvals: int = Field(
        1, ge=1, le=MAX_APPROVALS, description="Approvals needed; one rejection rejects."
    )
    on_timeout: Literal["reject", "approve", "escalate"] = Field(
        "reject", description="What happens when the step's timeout passes without a decision."
    )
    escalate_to: list[str] = Field(
        default_factory=list, description="Approvers asked after an escalation."
    )
    reminder_every: float | None = Field(
        None,
        ge=MIN_REMINDER_SECONDS,
        le=MAX_SECONDS,
        allow_inf_nan=False,
        description="Seconds between reminders while the step waits (at least 1).",
    )
    reminder_action: str = Field(
        "std.log",
        description="Action run for each reminder and escalation, with {step_id, message, "
        "approvers, waiting_seconds} (std.log, std.http or your own).",
    )
    escalation_timeout: Seconds | None = Field(
        None, description="Seconds the escalation approvers get; default: the step timeout."
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
    """Settings of a `wait` step: a durable timer, or a condition (a milestone). Exactly one."""

    seconds: float | None = Field(
        None,
        ge=0,
        le=MAX_SECONDS,
        allow_inf_nan=False,
        description="Wait this many seconds (at most 10 years).",
    )
    until: str | None = Field(None, description="CEL expression giving a timestamp to wait for.")
    condition: str | None = Field(
        None,
        description="CEL over input, vars and steps: wait until it is true; evaluated again "
        "whenever the run's state changes; the step's timeout bounds it (WaitTimeout).",
    )


class TerminateSpec(_Model):
    """Settings of a `terminate` step: end the run now."""

    status: Literal["completed", "failed"] = Field(
        "completed",
        description="completed: the run completes with what it has (no compensation); failed: "
        "it fails with error_type and compensates.",
    )
    message: str = Field("", max_length=10_000, description="Why the run ends here.")
    error_type: str = Field(
        "Terminated", min_length=1, max_length=200, description="The run's error type (failed)."
    )


class MapSpec(_Model):
    """Settings of a `map` step: one instance of `step` per item of a list known at run time."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    items: str = Field(description="CEL giving the list, evaluated when the step starts.")
    as_: str = Field(
        "item",
        alias="as",
        pattern=r"^[a-z_][a-z0-9_]*$",
        max_length=64,
        description="The item's name in the body's expressions (`index` is its position).",
    )
    max_concurrency: int | None = Field(
        None, ge=1, le=10_000, description="Instances at once; default max_parallel_steps."
    )
    step: WorkflowStep = Field(
        description="The body: one step (not a container); instance ids are `<id>[<index>]`."
    )


class SubWorkflowSpec(_Model):
    """Settings of a `workflow` step: run another definition as a Temporal child workflow."""

    name: str | None = Field(
        None,
        pattern=WORKFLOW_ID_PATTERN,
        max_length=200,
        description="A key of the document's top-level `definitions`.",
    )
    file: str | None = Field(
        None,
        max_length=1000,
        description="A definition file, relative to this one; the loader inlines it into "
        "`definitions` (and replaces `file` by `name`) before the run starts.",
    )
    wait: bool = Field(
        True,
        description="true: the step's output is the child's execution result; false: the step "
        "completes once the child started (output {execution_id}) and the child outlives the run.",
    )


EVENT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"


class EventSpec(_Model):
    """Settings of an `event` step: wait for a named event sent from outside."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: str = Field(
        pattern=EVENT_NAME_PATTERN, max_length=200, description="The event's name, e.g. payment."
    )
    schema_: dict[str, Any] = Field(
        default_factory=dict,
        alias="schema",
        description="JSON Schema the event's data must match (checked before it is accepted).",
    )
    transient: bool = Field(
        False,
        description="true: an event sent while no step waits for it is refused (a transient "
        "trigger); false: it is kept for the first step that waits (a persistent trigger).",
    )


class CompletionSpec(_Model):
    """When a `parallel` or `map` step completes before all its children have."""

    min_successes: int = Field(ge=1, le=100_000, description="Children that must complete.")
    cancel_remaining: bool = Field(
        True, description="Cancel the others once enough completed (else they go on)."
    )


class SlaTargets(_Model):
    """Service-level targets: breaches are recorded and alerted, never fail the run."""

    max_duration_seconds: Seconds | None = Field(None, description="Whole-run target.")
    step_max_seconds: dict[str, Seconds] = Field(
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
    timeout: float = Field(
        300, gt=0, le=31_536_000, allow_inf_nan=False, description="Step timeout in seconds."
    )
    execution: Literal["activity", "local"] | None = Field(
        None,
        description="`local` runs the action as a Temporal local activity: one history event "
        "instead of about six, for short idempotent actions (no heartbeats; retried by the "
        "workflow worker). Unset: the definition's `default_execution`, else the action's own "
        "declaration (`@action(..., execution=...)`; std.echo and std.log are local), else "
        "`activity`.",
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
    terminate: TerminateSpec | None = Field(None, description="Settings of a terminate step.")
    map: MapSpec | None = Field(None, description="Settings of a map step.")
    completion: CompletionSpec | None = Field(
        None,
        description="parallel and map: complete once min_successes children completed "
        "(partial joins, races); without it the step waits for every child.",
    )
    workflow: SubWorkflowSpec | None = Field(None, description="Settings of a workflow step.")
    max_depth: int | None = Field(
        None,
        ge=1,
        le=100,
        description="workflow steps: how deeply sub-workflows may nest below the top run "
        "(default 10); beyond it the step fails with RecursionLimitExceeded.",
    )
    event: EventSpec | None = Field(None, description="Settings of an event step.")
    mutex: str | None = Field(
        None,
        max_length=10_000,
        description="CEL giving a mutex name: at most one step holding a name runs at a time "
        "across every run of the namespace; the others wait in arrival order.",
    )

    def children(self) -> list[WorkflowStep]:
        """The steps nested in this one: a container's children, a map's body."""
        if self.map is None:
            return self.parallel_steps
        return [*self.parallel_steps, self.map.step]


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
    timeout: float = Field(
        3600, gt=0, le=31_536_000, allow_inf_nan=False, description="Whole-run timeout in seconds."
    )
    max_parallel_steps: int = Field(
        10, ge=1, le=2000, description="Steps running at once, at most."
    )
    retry_policy: RetryPolicySpec | None = Field(None, description="Default retry policy of steps.")
    sla_targets: SlaTargets | None = Field(None, description="Service-level targets.")
    optimization_enabled: bool = Field(
        True,
        description="Start the ready step with the longest remaining critical path first "
        "(in measured seconds when the workers have recent durations of its steps).",
    )
    default_execution: Literal["activity", "local"] | None = Field(
        None,
        description="How steps that do not set `execution` run their actions; unset: each "
        "action's own declaration.",
    )
    adaptive_routing: bool = Field(True, description="Let conditional steps route with a model.")
    created_at: str | None = Field(None, description="When the definition was written.")
    created_by: str | None = Field(None, description="Who wrote it.")
    tags: list[str] = Field(default_factory=list, description="Free-form labels.")
    definitions: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Named definitions (AdvancedWorkflow without workflow_id) that workflow "
        "steps call by name; a definition may call itself or any other one here.",
    )

    def all_steps(self) -> list[WorkflowStep]:
        """Every step, nested ones included, depth first in definition order."""
        out: list[WorkflowStep] = []
        stack = list(reversed(self.steps))
        while stack:
            step = stack.pop()
            out.append(step)
            stack.extend(reversed(step.children()))
        return out


# --------------------------------------------------------------------------- execution state

MapSpec.model_rebuild()
