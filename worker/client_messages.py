"""What people and systems send to a run through `CadenzaClient`: approval decisions, events,
step cancellations and decisions on suspended steps, each a validated Temporal update whose
refusal comes back as `DecisionRefused` with the run's reason."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from cadenza.errors import EXIT_USAGE, CadenzaError
from worker.approval_keys import sign
from worker.settings import Settings
from workflows.contracts import (
    CancelStepInput,
    CancelStepResult,
    DecisionInput,
    DecisionResult,
    EventInput,
    EventResult,
    FailStepInput,
    RetryStepInput,
    SkipStepInput,
    StepDecision,
    StepDecisionResult,
)
from workflows.engine import AdvancedWorkflowRun

State = TypeVar("State")


class DecisionRefused(CadenzaError):
    """An approval decision, an event or a step cancellation the run refused; the message is
    the run's reason.

    Check the step id and who decides (`cadenza pending` lists waiting approvals; `cadenza
    status ID` shows which steps still run).
    """

    exit_code = EXIT_USAGE


class RunMessages:
    """The updates a run accepts from outside (a mixin of `CadenzaClient`)."""

    client: Client
    signing_key: str | None = None
    """ID:BASE64-PRIVATE that signs approval decisions; None: CADENZA_APPROVAL_SIGNING_KEY."""

    async def approve(
        self, execution_id: str, step_id: str, by: str, comment: str = ""
    ) -> DecisionResult:
        """Approve a waiting approval step through the validated `approve` update.

        Raises:
            DecisionRefused: the run refused it (unknown step, not waiting, not an approver,
                already decided), with the run's reason.
        """
        return await self._decide("approve", execution_id, step_id, by, comment)

    async def reject(
        self, execution_id: str, step_id: str, by: str, reason: str = ""
    ) -> DecisionResult:
        """Reject a waiting approval step (one rejection rejects); see `approve`."""
        return await self._decide("reject", execution_id, step_id, by, reason)

    async def cancel_step(
        self, execution_id: str, step_id: str, by: str, reason: str = ""
    ) -> CancelStepResult:
        """Cancel one step of a running run (a container with everything in it) through the
        validated `cancel_step` update: it ends `cancelled` (StepCancelled) and its failure
        handling applies; a step that has not started is skipped.

        Raises:
            DecisionRefused: the run refused it (no such step, it has ended), with the reason.
        """
        handle = self.client.get_workflow_handle_for(AdvancedWorkflowRun.run, execution_id)
        request = _message(CancelStepInput, step_id=step_id, by=by, reason=reason)
        return await _refusable(
            handle.execute_update(AdvancedWorkflowRun.cancel_step, request), execution_id
        )

    async def send_event(
        self, execution_id: str, name: str, data: Any = None, by: str = ""
    ) -> EventResult:
        """Send a named event to a run through the validated `event` update: it satisfies the
        event step that has waited longest for `name`, or is kept until one waits.

        Raises:
            DecisionRefused: the run refused it (no step waits or may wait for `name`, the data
                does not match the step's schema, too many events kept), with the reason.
        """
        handle = self.client.get_workflow_handle_for(AdvancedWorkflowRun.run, execution_id)
        request = _message(EventInput, name=name, data=data, by=by)
        return await _refusable(
            handle.execute_update(AdvancedWorkflowRun.event, request), execution_id
        )

    async def retry_step(self, execution_id: str, step_id: str, by: str) -> StepDecisionResult:
        """Run a suspended step again with a fresh retry budget (`retry_step` update).

        Raises:
            DecisionRefused: the step is not suspended (the run's reason says what it is).
        """
        return await self._step_decision(
            _message(RetryStepInput, step_id=step_id, by=by), execution_id
        )

    async def skip_step(
        self, execution_id: str, step_id: str, by: str, output: Any = None
    ) -> StepDecisionResult:
        """Treat a suspended step as completed with `output` (`skip_step` update); refused
        (DecisionRefused) when it is not suspended or `output` lacks a field later steps read."""
        request = _message(SkipStepInput, step_id=step_id, by=by, output=output)
        return await self._step_decision(request, execution_id)

    async def fail_step(
        self, execution_id: str, step_id: str, by: str, reason: str = ""
    ) -> StepDecisionResult:
        """Fail a suspended step as it would have failed (`fail_step` update)."""
        request = _message(FailStepInput, step_id=step_id, by=by, reason=reason)
        return await self._step_decision(request, execution_id)

    async def _step_decision(self, request: StepDecision, execution_id: str) -> StepDecisionResult:
        handle = self.client.get_workflow_handle_for(AdvancedWorkflowRun.run, execution_id)
        update: Any = {
            RetryStepInput: AdvancedWorkflowRun.retry_step,
            SkipStepInput: AdvancedWorkflowRun.skip_step,
            FailStepInput: AdvancedWorkflowRun.fail_step,
        }[type(request)]
        return await _refusable(handle.execute_update(update, request), execution_id)

    async def _decide(
        self, name: str, execution_id: str, step_id: str, by: str, comment: str
    ) -> DecisionResult:
        handle = self.client.get_workflow_handle_for(AdvancedWorkflowRun.run, execution_id)
        update = AdvancedWorkflowRun.approve if name == "approve" else AdvancedWorkflowRun.reject
        request = _message(DecisionInput, step_id=step_id, by=by, comment=comment)
        key = self.signing_key
        if key is None:
            key = Settings().approval_signing_key.get_secret_value()
        if key:  # proven, not claimed: the run verifies it against its trusted keys
            request = sign(key, execution_id, request, name)
        return await _refusable(handle.execute_update(update, request), execution_id)


Message = TypeVar("Message", bound=BaseModel)


def _message(model: type[Message], **fields: Any) -> Message:
    """A message to a run, built here: a field it refuses (too long, empty) is a
    DecisionRefused naming the field and the limit, as the run would refuse it."""
    try:
        return model(**fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise DecisionRefused(f"refused before sending: {problems}") from None


async def _refusable(update: Awaitable[State], execution_id: str) -> State:
    """An update's result; its refusal (a validator's reason) as DecisionRefused."""
    try:
        return await update
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        reason = cause.message if isinstance(cause, ApplicationError) else str(cause or exc)
        raise DecisionRefused(reason) from None
    except RPCError as exc:
        if "already completed" in exc.message:
            raise DecisionRefused(
                f"run {execution_id!r} has already ended: nothing waits for a decision"
            ) from None
        raise
