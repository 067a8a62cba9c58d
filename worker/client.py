"""Typed helpers for services and the CLI: connect, validate, start, wait, query, cancel.

The connection follows Temporal's envconfig (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, TLS,
API key, profiles), defaulting to the embedded server at 127.0.0.1:7233. Payloads use the
pydantic data converter.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    Plugin,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.envconfig import ClientConfig
from temporalio.exceptions import ApplicationError, CancelledError, TerminatedError
from temporalio.service import RPCError

from cadenza.errors import EXIT_USAGE, CadenzaError
from worker.client_messages import DecisionRefused as DecisionRefused, RunMessages
from worker.codec import data_converter
from worker.live import LiveState
from worker.schedules import ScheduleMethods
from worker.settings import DEFAULT_ADDRESS
from workflows.contracts import (
    SA_RERUN_OF,
    PendingEvent,
    SuspendedStep,
)
from workflows.dsl.models import (
    AdvancedWorkflow,
    ErrorInfo,
    ExecutionOptions,
    ExecutionResult,
    PendingApproval,
    RunInput,
    WorkflowState,
)
from workflows.dsl.validate import ValidationReport, input_diagnostics, validate_cached
from workflows.engine import SA_VERSION, SA_WORKFLOW_ID, WORKFLOW_NAME, AdvancedWorkflowRun
from workflows.engine.reruns import reusable
from workflows.orchestrator import TASK_WORKFLOW, AgenticTaskRun, TaskInput, TaskResult

State = TypeVar("State")


class ConnectionFailed(CadenzaError):
    """Temporal could not be reached; the message says where and how to start a server.

    Start one (`cadenza server`) or point TEMPORAL_ADDRESS at the running one.
    """

    exit_code = EXIT_USAGE


class RerunRefused(CadenzaError):
    """A run that cannot be rerun (still running, not a cadenza run, a definition that no
    longer validates, an unknown --from step); the message says which and what to do."""

    exit_code = EXIT_USAGE


class DefinitionRejected(CadenzaError):
    """A definition failed validation before it was started.

    `report` holds the diagnostics; each names the path and the fix (docs/diagnostics.md).
    """

    exit_code = EXIT_USAGE

    def __init__(self, report: ValidationReport, what: str = "definition") -> None:
        super().__init__(f"invalid {what}:\n" + report.summary())
        self.report = report


def connect_config() -> dict[str, Any]:
    """Connection arguments from Temporal's envconfig, with cadenza's default address."""
    config: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    config.setdefault("target_host", DEFAULT_ADDRESS)
    return config


async def connect(
    wait: float = 0.0,
    plugins: Sequence[Plugin] = (),
    *,
    address: str | None = None,
    namespace: str | None = None,
) -> Client:
    """Connect to Temporal as envconfig says, or to `address` / `namespace` when given.

    Args:
        plugins: client plugins (the CLI's tracing plugin carries trace context into runs).
        wait: keep trying this many seconds while the server is still starting up (a server
            that just opened its port may answer "Frontend is not healthy yet").
        address: `host:port` to connect to instead of envconfig's (TLS and API key still
            come from envconfig).
        namespace: the namespace to use instead of envconfig's.

    Raises:
        ConnectionFailed: the server is not reachable.
    """
    config = connect_config()
    if address is not None:
        config["target_host"] = address
    if namespace is not None:
        config["namespace"] = namespace
    deadline = time.monotonic() + wait
    while True:
        try:
            return await Client.connect(
                **config, data_converter=data_converter(), plugins=list(plugins)
            )
        except RuntimeError as exc:
            if time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                continue
            reason = "connection refused" if "refused" in str(exc).lower() else str(exc)[:200]
            raise ConnectionFailed(
                f"cannot reach Temporal at {config['target_host']} ({reason}); "
                "start one with `cadenza server` or set TEMPORAL_ADDRESS"
            ) from None


def new_execution_id(definition: AdvancedWorkflow) -> str:
    """A fresh execution id: the definition's id and a random suffix."""
    return f"{definition.workflow_id}-{uuid.uuid4().hex[:12]}"


class CadenzaClient(RunMessages, ScheduleMethods):
    """Starts and follows cadenza runs through a Temporal client.

    Args:
        client: a connected client using the pydantic data converter.
        task_queue: the task queue of the cadenza workers.
    """

    def __init__(self, client: Client, task_queue: str = "cadenza") -> None:
        self.client = client
        self.task_queue = task_queue
        self._live = LiveState()

    async def start(
        self,
        definition: dict[str, Any] | AdvancedWorkflow,
        input: dict[str, Any] | None = None,
        *,
        execution_id: str | None = None,
        known_actions: Collection[str] | None = None,
        options: ExecutionOptions | None = None,
    ) -> WorkflowHandle[AdvancedWorkflowRun, ExecutionResult]:
        """Validate a definition and start it as an `AdvancedWorkflowRun`.

        Raises:
            DefinitionRejected: the definition is invalid (nothing was started).
        """
        report = validate_cached(definition, known_actions)
        if not report.ok or report.definition is None:
            raise DefinitionRejected(report)
        refused = input_diagnostics(input or {})
        if refused:
            raise DefinitionRejected(ValidationReport(None, refused), what="run input")
        model = report.definition
        data = (
            definition
            if isinstance(definition, dict)
            # exclude_unset keeps what was set, defaults included: an approval's explicit
            # `timeout: 300` is a deadline, an absent one none (docs/semantics.md)
            else model.model_dump(mode="json", exclude_unset=True)
        )
        run = RunInput(
            definition=data,
            input=input or {},
            known_actions=sorted(known_actions) if known_actions is not None else None,
            options=options or ExecutionOptions(),
        )
        return await self._start_run(run, model, execution_id or new_execution_id(model))

    async def _start_run(
        self, run: RunInput, model: AdvancedWorkflow, run_id: str
    ) -> WorkflowHandle[AdvancedWorkflowRun, ExecutionResult]:
        pairs: list[SearchAttributePair[str]] = [
            SearchAttributePair(SA_WORKFLOW_ID, model.workflow_id),
            SearchAttributePair(SA_VERSION, model.version),
        ]
        if run.rerun_of:
            pairs.append(SearchAttributePair(SA_RERUN_OF, run.rerun_of))
        return await self.client.start_workflow(
            AdvancedWorkflowRun.run,
            run,
            id=run_id,
            task_queue=self.task_queue,
            search_attributes=TypedSearchAttributes(pairs),
            static_summary=f"{model.name or model.workflow_id} v{model.version}"
            + (f" (rerun of {run.rerun_of})" if run.rerun_of else ""),
            static_details=_static_details(model),
        )

    async def rerun(
        self, execution_id: str, from_step: str | None = None, new_id: str | None = None
    ) -> WorkflowHandle[AdvancedWorkflowRun, ExecutionResult]:
        """Start a rerun of an ended run: its definition and input read from its history, the
        steps that completed there (and were not compensated) taken over, not run again;
        `from_step` and everything downstream of it run again.

        Raises:
            RerunRefused: the run is still running, is not a cadenza run, its definition no
                longer validates, or `from_step` is not one of its steps.
        """
        handle = self.client.get_workflow_handle(execution_id)
        described = await handle.describe()
        if described.status == WorkflowExecutionStatus.RUNNING:
            raise RerunRefused(
                f"run {execution_id!r} is still running: wait for it to end, or cancel it "
                f"(`cadenza cancel {execution_id}`), then rerun it"
            )
        if described.workflow_type != WORKFLOW_NAME:
            raise RerunRefused(f"{execution_id!r} is a {described.workflow_type}, not a run")
        run = await self.original_input(execution_id)
        report = validate_cached(run.definition, run.known_actions)
        if not report.ok or report.definition is None:
            raise RerunRefused(
                f"the definition of {execution_id!r} no longer validates:\n{report.summary()}"
            )
        model = report.definition
        if from_step is not None and from_step not in {s.step_id for s in model.all_steps()}:
            raise RerunRefused(f"no step {from_step!r} in {execution_id!r}'s definition")
        reuse = reusable(model, await self.result(execution_id), from_step)
        rerun = run.model_copy(update={"rerun_of": execution_id, "reuse": reuse})
        return await self._start_run(rerun, model, new_id or new_execution_id(model))

    async def original_input(self, execution_id: str) -> RunInput:
        """The RunInput a run started with (definition, input, options), from the first event
        of its history."""
        handle = self.client.get_workflow_handle(execution_id)
        async for event in handle.fetch_history_events():
            started = event.workflow_execution_started_event_attributes
            decoded = await self.client.data_converter.decode(started.input.payloads, [RunInput])
            run: RunInput = decoded[0]
            return run
        raise RerunRefused(f"run {handle.id!r} has no history")

    async def result(self, execution_id: str) -> ExecutionResult:
        """Wait for the run to end and return its execution result, whatever its outcome."""
        handle = self.client.get_workflow_handle_for(AdvancedWorkflowRun.run, execution_id)
        try:
            return await handle.result()
        except WorkflowFailureError as exc:
            return await self._result_of_failure(execution_id, exc)

    async def start_task(
        self, request: TaskInput, *, execution_id: str | None = None
    ) -> WorkflowHandle[AgenticTaskRun, TaskResult]:
        """Start an agentic task (`AgenticTaskRun`, the orchestrator graph)."""
        return await self.client.start_workflow(
            AgenticTaskRun.run,
            request,
            id=execution_id or f"task-{uuid.uuid4().hex[:12]}",
            task_queue=self.task_queue,
            static_summary=f"task: {request.task[:120]}",
            static_details=f"tools: {', '.join(request.tools) or 'none'}; model: "
            f"{request.model or 'worker default'}",
        )

    async def task_result(self, execution_id: str) -> TaskResult:
        """Wait for an agentic task to end and return its result, whatever its outcome."""
        handle = self.client.get_workflow_handle_for(AgenticTaskRun.run, execution_id)
        try:
            return await handle.result()
        except WorkflowFailureError as exc:
            carried = _carried_state(exc)
            if carried is not None:
                return TaskResult.model_validate(carried)
            return TaskResult(
                execution_id=execution_id, task="", status="failed", error=_failure_info(exc)
            )

    async def task_status(self, execution_id: str, timeout: float | None = 5.0) -> TaskResult:
        """The live (or final) state of an agentic task (its `status` query)."""
        handle = self.client.get_workflow_handle_for(AgenticTaskRun.run, execution_id)
        return await handle.query(
            AgenticTaskRun.status,
            rpc_timeout=None if timeout is None else timedelta(seconds=timeout),
        )

    async def status(self, execution_id: str, timeout: float | None = None) -> ExecutionResult:
        """The live (or final) execution state, through the `status` query, with what only
        Temporal's description knows merged in (`worker.live`): a running step whose action is
        between attempts is `retrying` (a `LiveStepRecord` with `retry`), one routed to a queue
        no worker polls has `no_worker`.

        Args:
            timeout: give up after this many seconds (a running run is answered by a worker:
                with none polling its task queue, the query waits). None waits.
        """
        handle = self.client.get_workflow_handle_for(AdvancedWorkflowRun.run, execution_id)
        state = await handle.query(
            AdvancedWorkflowRun.status,
            rpc_timeout=None if timeout is None else timedelta(seconds=timeout),
        )
        return await self._live.merge(self.client, handle, state)

    async def task_problem(self, execution_id: str) -> str | None:
        """Why the run's workflow task keeps failing (a bug, a bad payload, non-determinism),
        or None. Temporal retries such a task forever while the run shows as Running."""
        handle = self.client.get_workflow_handle(execution_id)
        description = await handle.describe()
        pending = description.raw_description.pending_workflow_task
        if description.status != WorkflowExecutionStatus.RUNNING or pending.attempt < 2:
            return None
        message = "no failure recorded yet"
        async for event in handle.fetch_history_events():
            if event.HasField("workflow_task_failed_event_attributes"):
                failure = event.workflow_task_failed_event_attributes.failure
                message = failure.message.splitlines()[0] if failure.message else "unknown"
        return (
            f"its workflow task has failed {pending.attempt - 1} times and is retried forever "
            f"until fixed: {message} (see the worker's log; fix the code or the payload, or "
            f"`cadenza cancel {execution_id}`)"
        )

    async def describe_status(self, execution_id: str) -> WorkflowExecutionStatus | None:
        handle = self.client.get_workflow_handle(execution_id)
        return (await handle.describe()).status

    async def pending(
        self,
        unanswered: list[str] | None = None,
        timeout: float = 3.0,
        events: list[tuple[str, PendingEvent]] | None = None,
        suspended: list[tuple[str, SuspendedStep]] | None = None,
    ) -> list[tuple[str, PendingApproval]]:
        """Every approval waiting in a running run or agentic task: (execution id, pending
        approval); a task's is its `human_approval`.

        Args:
            unanswered: receives the ids of waiting runs whose state could not be read within
                `timeout` seconds (no worker polls their task queue).
            events: receives the event steps waiting in those runs: (execution id, event).
            suspended: receives the suspended steps of runs: (execution id, step).
        """
        waiting = "CadenzaState IN ('waiting', 'suspended') AND ExecutionStatus = 'Running'"
        out: list[tuple[str, PendingApproval]] = []
        runs = await self._live_states(
            f"WorkflowType = '{WORKFLOW_NAME}' AND {waiting}", None, timeout, self.status
        )
        tasks = await self._live_states(
            f"WorkflowType = '{TASK_WORKFLOW}' AND {waiting}", None, timeout, self.task_status
        )
        for execution_id, state in runs:
            if state is not None:
                out += [(execution_id, p) for p in state.pending_approvals.values()]
                if events is not None:
                    events += [(execution_id, e) for e in state.pending_events.values()]
                if suspended is not None:
                    suspended += [(execution_id, x) for x in state.suspended.values()]
        for execution_id, task in tasks:
            if task is not None and task.waiting is not None:
                out.append((execution_id, _task_approval(task.waiting)))
        if unanswered is not None:
            unanswered += [i for i, state in [*runs, *tasks] if state is None]
        return out

    async def running(self, limit: int = 50) -> list[tuple[str, ExecutionResult | None]]:
        """The most recently started running runs and their live state (None: no answer yet,
        e.g. the first workflow task has not run), for `cadenza top`."""
        query = f"WorkflowType = '{WORKFLOW_NAME}' AND ExecutionStatus = 'Running'"
        return await self._live_states(query, limit, 3.0, self.status)

    async def _live_states(
        self,
        query: str,
        limit: int | None,
        timeout: float,
        read: Callable[[str, float], Awaitable[State]],
    ) -> list[tuple[str, State | None]]:
        """The runs `query` finds with their states as `read` gets them (the `status` query), 16
        at a time; None for a run that does not answer within `timeout` seconds (no worker
        polls its task queue)."""
        ids = [run.id async for run in self.client.list_workflows(query, limit=limit)]
        gate = asyncio.Semaphore(16)

        async def state_of(execution_id: str) -> State | None:
            async with gate:
                try:
                    return await read(execution_id, timeout)
                except (RPCError, WorkflowQueryFailedError):
                    return None

        states = await asyncio.gather(*(state_of(i) for i in ids))
        return list(zip(ids, states, strict=True))

    async def cancel(self, execution_id: str) -> None:
        """Ask the run to cancel: running steps are cancelled, completed ones compensated."""
        await self.client.get_workflow_handle(execution_id).cancel()

    async def _result_of_failure(
        self, execution_id: str, exc: WorkflowFailureError
    ) -> ExecutionResult:
        carried = _carried_state(exc)
        if carried is not None:
            return ExecutionResult.model_validate(carried)
        cause = exc.cause
        if isinstance(cause, CancelledError):
            try:
                state = await self.status(execution_id)
                state.status = WorkflowState.CANCELLED
                return state
            except RPCError:
                pass
        status = (
            WorkflowState.CANCELLED if isinstance(cause, CancelledError) else (WorkflowState.FAILED)
        )
        return ExecutionResult(
            execution_id=execution_id,
            workflow_id="",
            version="",
            status=status,
            error=_failure_info(exc),
        )


def _carried_state(exc: WorkflowFailureError) -> dict[str, Any] | None:
    """The state a failed cadenza workflow put in its failure's details (its result shape)."""
    cause = exc.cause
    if isinstance(cause, ApplicationError) and cause.details:
        details = cause.details[0]
        if isinstance(details, dict) and "execution_id" in details:
            return details
    return None


def _failure_info(exc: WorkflowFailureError) -> ErrorInfo:
    """A failure that carried no state (terminated, cancelled, timed out by the server)."""
    cause = exc.cause
    kind = "Terminated" if isinstance(cause, TerminatedError) else type(cause).__name__
    return ErrorInfo(type=kind, message=str(cause or exc))


def _task_approval(waiting: dict[str, Any]) -> PendingApproval:
    """An agentic task's waiting approval in the shape of an approval step's."""
    return PendingApproval(
        step_id=str(waiting.get("key", "human_approval")),
        approvers=list(waiting.get("approvers") or []),
        required=1,
        since=str(waiting.get("since", "")),
    )


def _static_details(model: AdvancedWorkflow) -> str:
    lines = [f"**{model.name or model.workflow_id}** ({model.workflow_id} v{model.version})"]
    if model.description:
        lines += ["", model.description]
    lines += ["", f"{len(model.all_steps())} steps, timeout {model.timeout:g} s"]
    return "\n".join(lines)
