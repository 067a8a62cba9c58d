"""Events from outside a run (a payment webhook, a device, another system): which the run
accepts, and where each goes. Pure and deterministic.

An event goes to the event step that has waited longest for its name; with none waiting it is
buffered (a persistent trigger) for the first step that waits, unless every step that may still
wait for the name is `transient` (then it is refused: nothing would keep it). Its data is checked
against that step's `event.schema` before it is accepted, so a refused event never reaches the
history as an update (a signal's is audited and ignored).
"""

from __future__ import annotations

import json
from typing import Any

from activities.schema_engine import schema_validator
from workflows.contracts import (
    AuditEntry,
    EventInput,
    EventResult,
    ExecutionResult,
    PendingEvent,
    ReceivedEvent,
    StepStatus,
)
from workflows.dsl.models import AdvancedWorkflow, StepType, WorkflowStep

MAX_BUFFERED_EVENTS = 100
"""Events a run keeps for steps that do not wait yet; more are refused."""
MAX_EVENT_BYTES = 262_144
"""An event's data as JSON, at most (it is kept in the run's history and state)."""

Catalog = dict[str, list[WorkflowStep]]
"""Event name -> the event steps that wait for it, in definition order."""

_ENDED = (StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED)


def catalog(definition: AdvancedWorkflow) -> Catalog:
    out: Catalog = {}
    for step in definition.all_steps():
        if step.step_type == StepType.EVENT and step.event is not None:
            out.setdefault(step.event.name, []).append(step)
    return out


def refusal(state: ExecutionResult, steps: Catalog, request: EventInput) -> str | None:
    """Why the run refuses `request`, or None when it accepts it."""
    name = request.name
    if name not in steps:
        known = ", ".join(sorted(steps)) or "none (the run has no event steps)"
        return f"this run waits for no event named {name!r}; the events it waits for: {known}"
    try:
        size = len(json.dumps(request.data, allow_nan=False))
    except (TypeError, ValueError) as exc:
        return f"the event's data is not plain JSON: {exc}"
    if size > MAX_EVENT_BYTES:
        return (
            f"the event's data is {size} bytes as JSON; the limit is {MAX_EVENT_BYTES}: send a "
            "reference to large data (a URL, a storage key)"
        )
    waiting = _waiting(state, name)
    if waiting is not None:
        target = next(s for s in steps[name] if waiting.step_id.split("[")[0] == s.step_id)
    else:
        open_ = [s for s in steps[name] if _may_wait(state, s)]
        if not open_:
            ended = ", ".join(s.step_id for s in steps[name])
            return f"every step that waits for {name!r} has ended ({ended}): nothing would use it"
        kept = [s for s in open_ if s.event is not None and not s.event.transient]
        if not kept:
            return (
                f"no step waits for {name!r} now, and the steps that may "
                f"({', '.join(s.step_id for s in open_)}) are transient: an event is accepted "
                "only while one of them waits; send it again when it does"
            )
        if len(state.buffered_events) >= MAX_BUFFERED_EVENTS:
            return (
                f"{MAX_BUFFERED_EVENTS} events already wait for their steps (the limit): send "
                "this one when a step waits for it"
            )
        target = kept[0]
    return _schema_refusal(target, request.data)


def deliver(state: ExecutionResult, request: EventInput, at: str) -> EventResult:
    """Accept a valid event (check `refusal` first): to the step waiting longest, or buffered."""
    event = ReceivedEvent(name=request.name, data=request.data, by=request.by, received_at=at)
    waiting = _waiting(state, request.name)
    if waiting is not None:
        waiting.received = event
        _audit(state, at, request, f"{request.name}: to step {waiting.step_id}", waiting.step_id)
        return EventResult(name=request.name, consumed_by=waiting.step_id)
    state.buffered_events.append(event)
    _audit(state, at, request, f"{request.name}: kept until a step waits for it", None)
    buffered = sum(e.name == request.name for e in state.buffered_events)
    return EventResult(name=request.name, buffered=buffered)


def take_buffered(state: ExecutionResult, name: str) -> ReceivedEvent | None:
    """The earliest buffered event named `name`, removed from the buffer (or None)."""
    for i, event in enumerate(state.buffered_events):
        if event.name == name:
            return state.buffered_events.pop(i)
    return None


def ignored(state: ExecutionResult, payload: Any, why: str, at: str) -> None:
    """An `event` signal that was refused: audited (a signal cannot be refused to its sender)."""
    by = payload.get("by", "") if isinstance(payload, dict) else ""
    state.audit.append(AuditEntry(at=at, kind="ignored", by=str(by)[:200], detail=why[:300]))


def _waiting(state: ExecutionResult, name: str) -> PendingEvent | None:
    return next(
        (p for p in state.pending_events.values() if p.name == name and p.received is None), None
    )


def _may_wait(state: ExecutionResult, step: WorkflowStep) -> bool:
    """The step has not ended (a map's body: its instances may still start)."""
    record = state.steps.get(step.step_id)
    return record is None or record.status not in _ENDED


def _schema_refusal(step: WorkflowStep, data: Any) -> str | None:
    schema = step.event.schema_ if step.event is not None else {}
    if not schema:
        return None
    validator = schema_validator(schema)
    error = next(iter(sorted(validator.iter_errors(data), key=lambda e: list(e.path))), None)
    if error is None:
        return None
    where = "".join(f"[{p!r}]" for p in error.path) or "the data"
    return (
        f"the event's data does not match the schema of step {step.step_id!r}: at {where}: "
        f"{error.message[:300]}"
    )


def _audit(
    state: ExecutionResult, at: str, request: EventInput, detail: str, step_id: str | None
) -> None:
    entry = AuditEntry(at=at, kind="event", by=request.by, detail=detail, step_id=step_id)
    state.audit.append(entry)
