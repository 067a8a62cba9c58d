"""`event` steps: wait durably for a named event from outside the run (`workflows.engine.events`
decides which events the run accepts and which step each one satisfies)."""

from __future__ import annotations

import asyncio
import builtins
from typing import Any

from temporalio import workflow

from activities.contracts import ErrorType
from workflows.contracts import PendingEvent, ReceivedEvent, StepRecord
from workflows.dsl.models import EffectiveRetryPolicy, WorkflowStep
from workflows.engine import events
from workflows.engine.context import Priority, StepContext, StepHandler
from workflows.engine.failures import StepFailure, unreachable


class EventStep(StepHandler):
    async def run(
        self,
        ctx: StepContext,
        step: WorkflowStep,
        record: StepRecord,
        policy: EffectiveRetryPolicy,
        priority: Priority,
    ) -> Any:
        spec = step.event
        assert spec is not None  # validated
        cut_off = unreachable(step, "events")
        if cut_off is not None:
            raise cut_off
        event = events.take_buffered(ctx.state, spec.name)
        if event is None:
            event = await _wait(ctx, step, record, spec.name, spec.transient)
        ctx.changed()
        return {
            "name": event.name,
            "data": event.data,
            "received_at": event.received_at,
            "by": event.by,
        }


async def _wait(
    ctx: StepContext, step: WorkflowStep, record: StepRecord, name: str, transient: bool
) -> ReceivedEvent:
    sid = step.step_id
    pending = PendingEvent(
        step_id=sid, name=name, since=workflow.now().isoformat(), transient=transient
    )
    ctx.state.pending_events[sid] = pending
    ctx.mark_waiting(step, record)
    evicted = False
    try:
        await workflow.wait_condition(
            lambda: pending.received is not None,
            timeout=step.timeout,
            timeout_summary=f"{sid}: event {name}",
        )
    except builtins.TimeoutError:
        if pending.received is None:
            raise StepFailure.of(
                step,
                ErrorType.EVENT_TIMEOUT,
                f"no event {name!r} arrived within {step.timeout:g} s",
            ) from None
    except asyncio.CancelledError:
        if pending.received is not None:  # it arrived as the step was cancelled: keep it
            ctx.state.buffered_events.insert(0, pending.received)
        raise
    except GeneratorExit:  # evicted from the worker's cache: touch nothing
        evicted = True
        raise
    finally:
        if not evicted:
            ctx.state.pending_events.pop(sid, None)
            ctx.done_waiting(step, record)
    assert pending.received is not None
    return pending.received
