"""The step-executor activity: one dynamic activity serves every action, named by its type.

It validates the mapped input (the step's JSON Schema, then the action's input model), runs the
action with heartbeats, bounds the output size, and turns every failure into an
`ApplicationError` of a known type carrying the attempt number.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import pydantic
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from temporalio import activity
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

from activities.circuit import CIRCUIT_OPEN, CircuitBreaker
from activities.contracts import ErrorType, StepActivityInput, StepActivityResult
from activities.egress import EgressPolicy
from activities.metrics import StepMetrics
from activities.registry import ActionContext, ActionError, ActionRegistry, ActionSpec
from activities.schema_engine import schema_validator

MAX_OUTPUT_BYTES = 1_048_576


class StepExecutor:
    """Runs registered actions as Temporal activities.

    Args:
        registry: the actions this worker serves.
        http: an `httpx.AsyncClient` handed to actions (the worker owns and closes it).
        egress: where `std.http` may connect; default: public addresses only.
        reminder_links: approvers -> {approver: sign-in link to the approval inbox}; given,
            reminders and escalations carry one link per approver (never their result).
        max_output_bytes: outputs above this size fail with PayloadTooLarge (history keeps them).
    """

    def __init__(
        self,
        registry: ActionRegistry,
        http: Any,
        max_output_bytes: int = MAX_OUTPUT_BYTES,
        breaker: CircuitBreaker | None = None,
        egress: EgressPolicy | None = None,
        reminder_links: Callable[[list[str]], dict[str, str]] | None = None,
    ) -> None:
        self.registry = registry
        self.http = http
        self.egress = egress or EgressPolicy()
        self.max_output_bytes = max_output_bytes
        self.breaker = breaker or CircuitBreaker(failure_threshold=0)
        self.reminder_links = reminder_links

    @activity.defn(dynamic=True)
    async def execute(self, args: Sequence[RawValue]) -> StepActivityResult:
        """Execute the action named by this activity's type, in a `cadenza.attempt` span (a
        child of the step's span when the worker traces)."""
        info = activity.info()
        attributes: dict[str, str | int] = {
            "cadenza.execution_id": info.workflow_id or "",
            "cadenza.action": info.activity_type,
            "cadenza.attempt": info.attempt,
        }
        with trace.get_tracer("cadenza").start_as_current_span(
            "cadenza.attempt", attributes=attributes, record_exception=False
        ) as span:
            try:
                result = await self._execute(args, info)
            except ApplicationError as exc:
                span.set_attributes(
                    {"cadenza.status": "failed", "cadenza.error_type": exc.type or ""}
                )
                span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
                raise
            except BaseException:
                span.set_attribute("cadenza.status", "cancelled")
                raise
            span.set_attribute("cadenza.status", "completed")
            return result

    async def _execute(self, args: Sequence[RawValue], info: activity.Info) -> StepActivityResult:
        try:
            if len(args) != 1:
                raise ActionError(
                    f"expected one StepActivityInput argument, got {len(args)}",
                    type=ErrorType.INPUT_VALIDATION,
                    non_retryable=True,
                )
            request = activity.payload_converter().from_payload(args[0].payload, StepActivityInput)
            trace.get_current_span().set_attributes(
                {"cadenza.step_id": request.step_id, "cadenza.role": request.role}
            )
            spec = self.registry.get(info.activity_type)
            request, links = _with_links(request, spec, self.reminder_links)
            params = _validated_params(spec, request)
            ctx = self._context(request, info)
            wait = self.breaker.check(spec.name)
            if wait is not None:
                raise ApplicationError(
                    f"circuit open for action {spec.name!r} after "
                    f"{self.breaker.failure_threshold} consecutive failures on this worker; "
                    f"the next call goes through in {wait:.1f} s",
                    {"attempt": info.attempt},
                    type=CIRCUIT_OPEN,
                    next_retry_delay=timedelta(seconds=max(wait, 0.1)),
                )
            try:
                try:
                    output = await self._run(spec, params, ctx, info.heartbeat_timeout)
                finally:  # what an attempt recorded before it failed counts too
                    if ctx.metrics is not None:
                        ctx.metrics.publish()
                checked = _without(self._checked_output(output), links)
            except ActionError as exc:
                if not exc.non_retryable:
                    self.breaker.failed(spec.name)
                raise
            except asyncio.CancelledError:
                raise
            except Exception:
                self.breaker.failed(spec.name)
                raise
            self.breaker.succeeded(spec.name)
            return StepActivityResult(output=checked, attempt=info.attempt)
        except asyncio.CancelledError:
            raise
        except ApplicationError as exc:
            if exc.type != CIRCUIT_OPEN:  # an action's own ApplicationError: wrapped as before
                raise _application_error(
                    f"{type(exc).__name__}: {exc}", ErrorType.STEP_FAILED, False, info.attempt
                ) from exc
            raise
        except ActionError as exc:
            raise _application_error(str(exc), exc.type, exc.non_retryable, info.attempt) from None
        except Exception as exc:
            raise _application_error(
                f"{type(exc).__name__}: {exc}", ErrorType.STEP_FAILED, False, info.attempt
            ) from exc

    def _context(self, request: StepActivityInput, info: activity.Info) -> ActionContext:
        """What the action may use: the worker's clients, heartbeats, the step's metrics."""
        return ActionContext(
            workflow_id=request.workflow_id,
            step_id=request.step_id,
            attempt=info.attempt,
            http=self.http,
            heartbeat=activity.heartbeat,
            egress=self.egress,
            metrics=StepMetrics(
                request.workflow_id,
                request.step_id,
                request.custom_metrics,
                request.metrics_enabled,
            ),
        )

    async def _run(
        self, spec: ActionSpec, params: Any, ctx: ActionContext, heartbeat_timeout: Any
    ) -> Any:
        """Run the action; heartbeat in the background so a lost worker is noticed quickly."""
        if spec.is_async:
            call = spec.fn(params, ctx)
        else:
            call = asyncio.to_thread(spec.fn, params, ctx)
        task = asyncio.ensure_future(call)
        if heartbeat_timeout is None:
            return await task
        interval = max(heartbeat_timeout.total_seconds() / 3, 0.2)
        try:
            # an action that needs no I/O ends in its first turn of the loop: no heartbeat timer
            # armed and cancelled for it (0.25 ms per step with hundreds of activities in flight)
            await asyncio.sleep(0)
            while not task.done():
                done, _ = await asyncio.wait({task}, timeout=interval)
                if not done:
                    activity.heartbeat()
            return task.result()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def _checked_output(self, output: Any) -> Any:
        if isinstance(output, pydantic.BaseModel):
            output = output.model_dump(mode="json")
        try:
            size = len(json.dumps(output))
        except (TypeError, ValueError) as exc:
            raise ActionError(
                f"the action returned a value that is not JSON: {exc}",
                type=ErrorType.STEP_FAILED,
                non_retryable=True,
            ) from None
        if size > self.max_output_bytes:
            raise ActionError(
                f"the action returned {size} bytes; the limit is {self.max_output_bytes}: "
                "store large data elsewhere and return a reference",
                type=ErrorType.PAYLOAD_TOO_LARGE,
                non_retryable=True,
            )
        return output


def _validated_params(spec: ActionSpec, request: StepActivityInput) -> Any:
    if request.input_schema:
        validator = schema_validator(request.input_schema)
        errors = sorted(validator.iter_errors(request.params), key=lambda e: list(e.path))
        if errors:
            described = "; ".join(
                f"{'/'.join(str(p) for p in e.path) or '(input)'}: {e.message}" for e in errors[:5]
            )
            raise ActionError(
                f"input of step {request.step_id!r} fails its input_validation schema: {described}",
                type=ErrorType.INPUT_VALIDATION,
                non_retryable=True,
            )
    if spec.input_model is None:
        return request.params
    try:
        return spec.input_model.model_validate(request.params)
    except pydantic.ValidationError as exc:
        described = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(input)'}: {e['msg']}"
            for e in exc.errors(include_url=False)[:5]
        )
        raise ActionError(
            f"input of action {spec.name!r} is invalid: {described}",
            type=ErrorType.INPUT_VALIDATION,
            non_retryable=True,
        ) from None


def _application_error(
    message: str, error_type: str, non_retryable: bool, attempt: int
) -> ApplicationError:
    return ApplicationError(
        message, {"attempt": attempt}, type=str(error_type), non_retryable=non_retryable
    )


def _with_links(
    request: StepActivityInput,
    spec: ActionSpec,
    make: Callable[[list[str]], dict[str, str]] | None,
) -> tuple[StepActivityInput, list[str]]:
    """A reminder or escalation with one inbox sign-in link per approver added to its message
    (and as `inbox_links` for actions without an input model), and the links. Not for std.log:
    a sign-in link is a credential, and logs keep no credentials."""
    approvers = request.params.get("approvers")
    if make is None or request.role not in ("reminder", "escalation") or spec.name == "std.log":
        return request, []
    if not isinstance(approvers, list) or not approvers:
        return request, []
    links = make([str(a) for a in approvers])
    lines = "".join(f"\n  {who}: {url}" for who, url in links.items())
    params = {**request.params, "message": f"{request.params.get('message', '')}\nSign in:{lines}"}
    if spec.input_model is None:
        params["inbox_links"] = links
    return request.model_copy(update={"params": params}), list(links.values())


def _without(value: Any, links: list[str]) -> Any:
    """`value` with every sign-in link replaced: the activity's result goes into history."""
    if not links:
        return value
    if isinstance(value, str):
        for link in links:
            value = value.replace(link, "<inbox sign-in link>")
        return value
    if isinstance(value, list):
        return [_without(v, links) for v in value]
    if isinstance(value, dict):
        return {_without(k, links): _without(v, links) for k, v in value.items()}
    return value
