"""What people and systems send to a run (the payloads of its updates and signals), and what
they get back: approval decisions, events, step cancellations, pause and resume, decisions on
suspended steps. Re-exported by `workflows.contracts`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Sizes of what a message carries into the run's state and result: bounded, so no number of
# messages of ordinary count can push the result past Temporal's 2 MB payload limit, and an
# over-long one is refused by the update (nothing reaches history) or dropped as a signal.
MAX_STEP_ID = 300
"""A step id in a message (map instances `<id>[<index>]` included)."""
MAX_NAME = 200
"""Who decides, pauses, cancels or sends."""
MAX_TEXT = 2000
"""A comment or a reason."""


class DecisionInput(BaseModel):
    """Payload of the `approve` / `reject` updates and signals."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    step_id: str = Field(max_length=MAX_STEP_ID, description="The approval step decided.")
    by: str = Field(min_length=1, max_length=MAX_NAME, description="Who decides.")
    comment: str = Field("", max_length=MAX_TEXT, description="Why (for a rejection: the reason).")
    key_id: str | None = Field(None, max_length=64, description="Signed: the signing key's id.")
    expires_at: str | None = Field(
        None, max_length=64, description="Signed: until when the signature holds (ISO 8601)."
    )
    signature: str | None = Field(
        None,
        max_length=200,
        description="Signed: base64 Ed25519 signature over run, step, decision, by, comment and "
        "expires_at (required when the workers trust approval keys).",
    )


class RetryStepInput(BaseModel):
    """Payload of the `retry_step` update: run a suspended step again, fresh retry budget."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    step_id: str = Field(max_length=MAX_STEP_ID)
    by: str = Field(min_length=1, max_length=MAX_NAME, description="Who decides.")


class SkipStepInput(BaseModel):
    """Payload of the `skip_step` update: treat a suspended step as completed with `output`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    step_id: str = Field(max_length=MAX_STEP_ID)
    by: str = Field(min_length=1, max_length=MAX_NAME, description="Who decides.")
    output: Any = Field(None, description="The step's output, as later steps read it.")


class FailStepInput(BaseModel):
    """Payload of the `fail_step` update: fail a suspended step as it would have failed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    step_id: str = Field(max_length=MAX_STEP_ID)
    by: str = Field(min_length=1, max_length=MAX_NAME, description="Who decides.")
    reason: str = Field("", max_length=MAX_TEXT, description="Why (kept in the audit trail).")


class StepDecisionResult(BaseModel):
    """What became of a suspended step after `retry_step`, `skip_step` or `fail_step`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    step_id: str
    decision: Literal["retry", "skip", "fail"]


class EventInput(BaseModel):
    """Payload of the `event` update and signal: a named event from outside the run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME, description="The event's name.")
    data: Any = Field(None, description="The event's data (checked against the step's schema).")
    by: str = Field("", max_length=MAX_NAME, description="Who or what sent it.")


class EventResult(BaseModel):
    """What became of an event sent with the `event` update."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    consumed_by: str | None = Field(None, description="The step it satisfied; None: buffered.")
    buffered: int = Field(0, description="Events of the run waiting for a step, this one included.")


class DecisionResult(BaseModel):
    """What an `approve` / `reject` update returns."""

    model_config = ConfigDict(extra="forbid")

    step_id: str
    outcome: Literal["pending", "approved", "rejected"]
    approvals: int
    required: int


class CancelStepInput(BaseModel):
    """Input of the `cancel_step` update and signal: cancel one step (or a container with
    everything in it) of a running run."""

    model_config = ConfigDict(extra="forbid")

    step_id: str = Field(min_length=1, max_length=MAX_STEP_ID)
    by: str = Field(min_length=1, max_length=MAX_NAME, description="Who cancels.")
    reason: str = Field("", max_length=MAX_TEXT)


class CancelStepResult(BaseModel):
    """What a `cancel_step` update did."""

    step_id: str
    was: str = Field(description="The step's status when it was cancelled.")


class PauseInput(BaseModel):
    """Payload of the `pause` and `resume` signals (both fields optional)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    by: str = Field("", max_length=MAX_NAME, description="Who pauses or resumes.")
    reason: str = Field("", max_length=MAX_TEXT, description="Why (kept in the audit trail).")


StepDecision = RetryStepInput | SkipStepInput | FailStepInput
