"""Payload models and error types shared by workflows and activities (safe to import anywhere)."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)


class ErrorType(StrEnum):
    """cadenza's own error types. User actions may raise further types of their own."""

    STEP_FAILED = "StepFailed"
    INPUT_VALIDATION = "InputValidationError"
    ACTION_NOT_FOUND = "ActionNotFound"
    PAYLOAD_TOO_LARGE = "PayloadTooLarge"
    HTTP_ERROR = "HttpError"
    TIMEOUT = "Timeout"
    EXPRESSION_ERROR = "ExpressionError"
    DEFINITION_INVALID = "DefinitionInvalid"
    WORKFLOW_FAILED = "WorkflowFailed"
    WORKFLOW_TIMEOUT = "WorkflowTimeout"
    CANCELLED = "Cancelled"
    DEPENDENCY_FAILED = "DependencyFailed"
    PARALLEL_THRESHOLD = "ParallelThresholdNotMet"
    LOOP_LIMIT_EXCEEDED = "LoopLimitExceeded"
    APPROVAL_REJECTED = "ApprovalRejected"
    APPROVAL_TIMEOUT = "ApprovalTimeout"
    AGENT_LIMIT_EXCEEDED = "AgentLimitExceeded"
    MODEL_ERROR = "ModelError"
    WAIT_TIMEOUT = "WaitTimeout"
    TERMINATED = "Terminated"
    STEP_CANCELLED = "StepCancelled"
    FORBIDDEN = "Forbidden"
    """An action was refused what it asked for (std.http: an address the egress policy denies)."""
    EVENT_TIMEOUT = "EventTimeout"
    RECURSION_LIMIT_EXCEEDED = "RecursionLimitExceeded"
    NO_WORKER_FOR_CAPABILITY = "NoWorkerForCapability"
    """A step routed to `cadenza.<capability>` waited longer than `schedule_to_start_seconds`
    for a worker polling that queue."""


class StepActivityInput(BaseModel):
    """What the step-executor activity receives; its activity type is the action name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    workflow_id: str = Field(description="The definition's workflow_id.")
    step_id: str
    params: dict[str, Any] = Field(default_factory=dict, description="The mapped input.")
    input_schema: dict[str, Any] | None = Field(
        None, description="JSON Schema the params must satisfy (the step's input_validation)."
    )
    role: Literal["step", "error_handler", "rollback", "reminder", "escalation", "tool"] = "step"
    custom_metrics: list[str] = Field(
        default_factory=list, description="The step's declared metrics (ctx.metrics records them)."
    )
    metrics_enabled: bool = Field(True, description="The step's metrics_enabled.")

    @model_serializer(mode="wrap")
    def _without_defaults(self, handler: SerializerFunctionWrapHandler) -> Any:
        """Fields at their defaults are not sent (they decode to the same): every activity's
        scheduled event in history carries this input, and the defaults were half its bytes."""
        data = handler(self)
        if isinstance(data, dict):
            for name in _QUIET_DEFAULTS:
                if name in data and data[name] == _QUIET_DEFAULTS[name]:
                    del data[name]
        return data


_QUIET_DEFAULTS: dict[str, Any] = {
    "input_schema": None,
    "role": "step",
    "custom_metrics": [],
    "metrics_enabled": True,
}


class StepActivityResult(BaseModel):
    """What an action returned, and on which attempt."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    output: Any = None
    attempt: int = 1


ALERT_ACTIVITY = "cadenza.alert"
"""The activity that hands an alert to the worker's alert sinks (activities/alerts.py)."""


class AlertInput(BaseModel):
    """An alert raised by a run (an SLA breach) or by the monitor (an anomaly).

    Alerts are de-duplicated per run and rule: `key` is what makes one alert the same as another.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str = Field(description="sla.run, sla.step, anomaly.run or anomaly.step.")
    execution_id: str = Field(description="The workflow execution the alert is about.")
    workflow_id: str = Field(description="The definition's workflow_id.")
    step_id: str | None = None
    message: str
    severity: Literal["info", "warning", "critical"] = "warning"
    target_seconds: float | None = None
    observed_seconds: float | None = None
    at: str = Field(description="When the condition was detected (ISO 8601).")

    @property
    def key(self) -> str:
        return f"{self.execution_id}/{self.rule}/{self.step_id or '-'}"


TASK_QUEUE_PREFIX = "cadenza."
"""Activities of steps with `agent_capability: X` (and tasks with `capability: X`) run on the
task queue `cadenza.X`, served by workers started with `--task-queue cadenza.X`."""

Execution = Literal["activity", "local"]
"""How an action runs: a Temporal activity, or a local activity on the workflow's worker."""

STD_EXECUTION: dict[str, Execution] = {
    "std.echo": "local",
    "std.log": "local",
    "std.sleep": "activity",
    "std.fail": "activity",
    "std.http": "activity",
}
"""How the built-in actions run (`activities/std.py` registers them so; echo and log are short
and idempotent): workflows know these without asking a worker."""

MODEL_PROVIDERS = ("scripted", "openai", "ollama")
"""Providers a model name `provider:name` may use (activities/reasoning/llm.py)."""


SCRIPT_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")
"""A scripted model's NAME: a file name in the scripts folder, never a path."""


def model_problem(name: str) -> str | None:
    """What is wrong with a model name, or None: `scripted:NAME`, `openai:MODEL` (any
    OpenAI-compatible server) or `ollama:MODEL`."""
    provider, _, model = name.partition(":")
    if provider == "scripted" and model and not SCRIPT_NAME.fullmatch(model):
        return (
            f"model {name[:120]!r}: a scripted model's NAME is letters, digits, '_' and '-' "
            "(the file NAME.yaml in the worker's scripts folder), not a path"
        )
    if provider in MODEL_PROVIDERS and model:
        return None
    return (
        f"model {name!r} is not provider:name with a provider of {', '.join(MODEL_PROVIDERS)}; "
        "e.g. `openai:gpt-4o-mini`, `ollama:llama3.1` or `scripted:NAME`"
    )


CHAT_ACTIVITY = "cadenza.llm.chat"
"""The activity that makes one chat-model call of an agent step (activities/reasoning/llm.py)."""


class ChatRequest(BaseModel):
    """One model call: the conversation so far and the tools (action names) on offer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str | None = Field(None, description="Model name; the worker's default if None.")
    messages: list[dict[str, Any]] = Field(
        description="{role: system|user|assistant|tool, content, tool_calls?, tool_call_id?}"
    )
    tools: list[str] = Field(default_factory=list, description="Action names offered as tools.")
    turn: int = Field(
        0,
        ge=0,
        description="Model turns before this one in the conversation, counting turns left out"
        " of `messages` for length (a scripted model answers with its turn `turn`).",
    )


class ChatResponse(BaseModel):
    """The model's message and what it cost."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message: dict[str, Any] = Field(description="{role: assistant, content, tool_calls: [...]}")
    usage: dict[str, int] = Field(default_factory=dict, description="input/output tokens.")
    model: str = ""
