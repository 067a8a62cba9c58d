"""Critical sections across runs (`mutex: EXPR` on a step), with no lock service but Temporal.

One `CadenzaMutex` workflow per mutex name (id `cadenza-mutex:<name>`) keeps the holder and a
FIFO queue. A step asks through an activity that signal-with-starts it (workflow code cannot);
the mutex answers with the `cadenza_mutex` signal (`waiting`, with the holder's execution id,
then `granted`), and the step releases it with the `release` signal when it ends, whatever way.
A holder that can no longer release (its run terminated, or timed out at the Temporal level)
is found by signalling it every `check_seconds`: a signal to a closed run fails, and the
mutex passes on. The mutex continues as new before its history grows long, and ends when
nobody holds or waits.

Deterministic code only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from temporalio import workflow
from temporalio.exceptions import FailureError

from activities.contracts import ErrorType
from workflows.contracts import StepRecord, StepStatus
from workflows.dsl.expressions import ExpressionError
from workflows.dsl.models import WorkflowStep
from workflows.engine.context import StepContext
from workflows.engine.failures import StepFailure, expression_failure

MUTEX_WORKFLOW = "CadenzaMutex"
MUTEX_REQUEST_ACTIVITY = "cadenza.mutex.request"
MUTEX_SIGNAL = "cadenza_mutex"
"""The signal a mutex workflow sends to the runs that asked it (waiting, granted, check)."""


def mutex_workflow_id(name: str) -> str:
    """The workflow that serialises the steps holding mutex `name` (one per name)."""
    return f"cadenza-mutex:{name}"


class MutexRequest(BaseModel):
    """A step asking for a mutex (the `acquire` signal of a CadenzaMutex workflow)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    request_id: str = Field(description="Unique per acquisition: run, step and a counter.")
    execution_id: str = Field(description="The asking workflow (signalled back).")
    step_id: str
    check_seconds: float = Field(
        30, description="How often the mutex checks that its holder still runs."
    )


class MutexNotice(BaseModel):
    """What a CadenzaMutex tells a run about its request (the `cadenza_mutex` signal)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str
    kind: Literal["waiting", "granted", "check"]
    holder: str | None = Field(None, description="waiting: the holder's execution id.")


class MutexState(BaseModel):
    """A CadenzaMutex's state, carried across continue-as-new."""

    model_config = ConfigDict(extra="forbid")

    name: str
    holder: MutexRequest | None = None
    queue: list[MutexRequest] = Field(default_factory=list)
    released: list[str] = Field(
        default_factory=list, description="Requests released before they arrived (bounded)."
    )
    granted: int = Field(0, description="Grants so far, all runs of this workflow.")


HISTORY_LIMIT = 2000
"""Events after which a mutex continues as new (its state is small: holder and queue)."""
KEEP_RELEASED = 1000
_FREE: AbstractAsyncContextManager[None] = nullcontext()
MAX_NAME = 200


@workflow.defn(name=MUTEX_WORKFLOW)
class CadenzaMutex:
    """Serialises the steps that hold one mutex name, first come first served."""

    def __init__(self) -> None:
        self._state = MutexState(name="")
        self._noticed: set[str] = set()
        self._changed = False

    @workflow.signal(name="acquire")
    def acquire(self, request: MutexRequest) -> None:
        state = self._state
        known = {r.request_id for r in state.queue}
        if state.holder is not None:
            known.add(state.holder.request_id)
        if request.request_id in state.released:  # it gave up before its request arrived
            state.released.remove(request.request_id)
        elif request.request_id not in known:
            state.queue.append(request)
            self._changed = True

    @workflow.signal(name="release")
    def release(self, request_id: str) -> None:
        state = self._state
        if state.holder is not None and state.holder.request_id == request_id:
            state.holder = None
        elif any(r.request_id == request_id for r in state.queue):
            state.queue = [r for r in state.queue if r.request_id != request_id]
        else:
            state.released = [*state.released[-(KEEP_RELEASED - 1) :], request_id]
        self._changed = True

    @workflow.query(name="state")
    def state(self) -> MutexState:
        """The holder and the queue."""
        return self._state

    @workflow.run
    async def run(self, initial: MutexState) -> None:
        state = self._state
        state.name, state.granted = initial.name, initial.granted
        if state.holder is None:
            state.holder = initial.holder
        state.queue = [*initial.queue, *state.queue]
        state.released = [*initial.released, *state.released]
        while True:
            if state.holder is None and state.queue:
                candidate = state.queue.pop(0)
                if await _notify(candidate, "granted"):
                    state.holder = candidate
                    state.granted += 1
                continue
            await self._tell_waiters()
            if state.holder is None and not state.queue:
                await workflow.wait_condition(workflow.all_handlers_finished)
                if state.holder is None and not state.queue:
                    return
                continue
            if workflow.info().get_current_history_length() > HISTORY_LIMIT:
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(state)
            await self._until_change_or_check()

    async def _tell_waiters(self) -> None:
        """Each new waiter learns who holds the mutex (once)."""
        holder = self._state.holder
        for request in list(self._state.queue):
            if request.request_id not in self._noticed and holder is not None:
                self._noticed.add(request.request_id)
                await _notify(request, "waiting", holder.execution_id)

    async def _until_change_or_check(self) -> None:
        holder = self._state.holder
        self._changed = False
        every = holder.check_seconds if holder is not None else 30.0
        try:
            await workflow.wait_condition(
                lambda: self._changed, timeout=every, timeout_summary="check the holder"
            )
        except TimeoutError:
            still = holder is not None and self._state.holder is holder
            if still and holder is not None and not await _notify(holder, "check"):
                self._state.holder = None  # the holder's run has closed: it can never release


async def _notify(request: MutexRequest, kind: str, holder: str | None = None) -> bool:
    """Signal the run that asked; False when it is closed (it can never release)."""
    notice = MutexNotice(request_id=request.request_id, kind=kind, holder=holder)  # type: ignore[arg-type]
    try:
        await workflow.get_external_workflow_handle(request.execution_id).signal(
            MUTEX_SIGNAL, notice
        )
    except FailureError:
        return False
    return True


class Mutexes:
    """The requesting side, one per interpreter: asks, waits with the step `waiting`, releases.

    The `cadenza_mutex` signal handler is set on first use, so any cadenza workflow type
    (a run, a batch, a loop child) can hold a mutex."""

    def __init__(self) -> None:
        self._notices: dict[str, MutexNotice] = {}
        self._count = 0
        self._listening = False

    def _on_notice(self, notice: MutexNotice) -> None:
        if notice.kind != "check":
            self._notices[notice.request_id] = notice

    def held(
        self, ctx: StepContext, step: WorkflowStep, record: StepRecord
    ) -> AbstractAsyncContextManager[None]:
        """Hold the step's mutex (if it has one) around what the step does."""
        if step.mutex is None:
            return _FREE  # most steps: no generator to build and drive
        return self._held(ctx, step, record)

    @asynccontextmanager
    async def _held(
        self, ctx: StepContext, step: WorkflowStep, record: StepRecord
    ) -> AsyncIterator[None]:
        name = _name(ctx, step)
        if not self._listening:
            workflow.set_signal_handler(MUTEX_SIGNAL, self._on_notice)
            self._listening = True
        info = workflow.info()
        self._count += 1
        request = MutexRequest(
            name=name,
            request_id=f"{info.workflow_id}/{info.run_id}/{step.step_id}/{self._count}",
            execution_id=info.workflow_id,
            step_id=step.step_id,
            check_seconds=ctx.options.mutex_check_seconds,
        )
        was, asked = record.status, workflow.now()
        record.mutex = name
        ctx.mark_waiting(step, record)
        evicted = False
        try:
            await workflow.execute_activity(
                MUTEX_REQUEST_ACTIVITY,
                request,
                start_to_close_timeout=timedelta(seconds=30),
                summary=f"{step.step_id}: mutex {name}",
            )
            await workflow.wait_condition(lambda: self._got(request, record))
            record.mutex_holder = None
            record.mutex_wait_seconds = (workflow.now() - asked).total_seconds()
            if was == StepStatus.PENDING:  # an action step: running once it holds a slot
                ctx.set_status(record, StepStatus.PENDING)
            else:
                ctx.done_waiting(step, record)
                record.started_at = workflow.now().isoformat()
            yield
        except GeneratorExit:  # evicted from the worker's cache: the run replays elsewhere
            evicted = True
            raise
        finally:
            if not evicted:
                self._notices.pop(request.request_id, None)
                await _release(request)

    def _got(self, request: MutexRequest, record: StepRecord) -> bool:
        notice = self._notices.get(request.request_id)
        if notice is not None and notice.kind == "waiting" and notice.holder:
            record.mutex_holder = notice.holder
        return notice is not None and notice.kind == "granted"


async def _release(request: MutexRequest) -> None:
    """Tell the mutex the step is done with it (or no longer waits); shielded, so a step cut
    short by a cancellation still releases."""
    handle = workflow.get_external_workflow_handle(mutex_workflow_id(request.name))
    try:
        await asyncio.shield(handle.signal("release", request.request_id))
    except FailureError:
        pass  # the mutex has ended: nothing to release


def _name(ctx: StepContext, step: WorkflowStep) -> str:
    assert step.mutex is not None
    try:
        value = ctx.evaluate(step.mutex)
    except ExpressionError as exc:
        raise StepFailure(expression_failure(exc, step.step_id)) from None
    if not isinstance(value, str) or not value or len(value) > MAX_NAME:
        raise StepFailure.of(
            step,
            ErrorType.EXPRESSION_ERROR,
            f"mutex ({step.mutex}) must give a non-empty string of at most {MAX_NAME} "
            f"characters, got {str(value)[:60]!r}",
        )
    return value
