"""Payload models and error types shared by workflows and activities (safe to import anywhere)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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


class StepActivityInput(BaseModel):
    """What the step-executor activity receives; its activity type is the action name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    workflow_id: str = Field(description="The definition's workflow_id.")
    step_id: str
    params: dict[str, Any] = Field(default_factory=dict, description="The mapped input.")
    input_schema: dict[str, Any] | None = Field(
        None, description="JSON Schema the params must satisfy (the step's input_validation)."
    )
    role: Literal["step", "error_handler", "rollback", "reminder", "escalation"] = "step"


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
