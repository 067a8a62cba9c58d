"""Schedules of definition runs on Temporal Schedules: create, list, describe, pause, trigger,
backfill, update and delete them.

A schedule's action starts `AdvancedWorkflowRun` with the definition and input stored in the
schedule itself (validated before it is stored), so editing the file later changes nothing until
`update_schedule`. Every run carries the search attributes `CadenzaWorkflowId`, `CadenzaVersion`
and `CadenzaScheduleId`; Temporal appends the scheduled time to the run ids' prefix.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio.api.schedule.v1 import ScheduleActionResult as RawActionResult
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleBackfill,
    ScheduleDescription,
    ScheduleHandle,
    SchedulePolicy,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowExecutionStatus,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from worker.schedule_models import (
    CRON_FORMS,
    Overlap,
    ScheduledRun,
    ScheduleError,
    ScheduleSummary,
    ScheduleView,
    UnknownSchedule,
    duration_text,
    overlap_name,
    overlap_policy,
    parse_duration,
    schedule_spec,
    seconds_of,
    spec_text,
)
from workflows.contracts import (
    RUN_WORKFLOW,
    SA_SCHEDULE_ID,
    SA_VERSION,
    SA_WORKFLOW_ID,
    ExecutionOptions,
    RunInput,
)
from workflows.dsl.diagnostics import ValidationReport
from workflows.dsl.models import AdvancedWorkflow
from workflows.dsl.validate import input_diagnostics, validate_cached

T = TypeVar("T")


def validated_input(
    definition: dict[str, Any] | AdvancedWorkflow,
    input: dict[str, Any] | None,
    known_actions: Collection[str] | None = None,
) -> tuple[AdvancedWorkflow, RunInput]:
    """The definition checked as `CadenzaClient.start` checks it, and the run input to store.

    Raises:
        ScheduleError: the definition or the input is invalid (`report` has the diagnostics).
    """
    report = validate_cached(definition, known_actions)
    if not report.ok or report.definition is None:
        raise ScheduleError("invalid definition:\n" + report.summary(), report)
    refused = input_diagnostics(input or {})
    if refused:
        bad = ValidationReport(None, refused)
        raise ScheduleError("invalid run input:\n" + bad.summary(), bad)
    model = report.definition
    data = (
        definition
        if isinstance(definition, dict)
        else model.model_dump(mode="json", exclude_defaults=True)
    )
    known = sorted(known_actions) if known_actions is not None else None
    run_input = RunInput(
        definition=data, input=input or {}, known_actions=known, options=ExecutionOptions()
    )
    return model, run_input


def _action(
    schedule_id: str, model: AdvancedWorkflow, run_input: RunInput, task_queue: str
) -> ScheduleActionStartWorkflow:
    title = f"{model.name or model.workflow_id} v{model.version}"
    return ScheduleActionStartWorkflow(
        RUN_WORKFLOW,
        run_input,
        id=f"{model.workflow_id}-sched-{schedule_id}",
        task_queue=task_queue,
        typed_search_attributes=_attributes(model, schedule_id),
        static_summary=f"{title} (schedule {schedule_id})",
        static_details=f"**{title}**, started by schedule `{schedule_id}` "
        f"(`cadenza schedule describe {schedule_id}`)",
    )


def _attributes(model: AdvancedWorkflow, schedule_id: str | None = None) -> TypedSearchAttributes:
    pairs: list[SearchAttributePair[str]] = [
        SearchAttributePair(SA_WORKFLOW_ID, model.workflow_id),
        SearchAttributePair(SA_VERSION, model.version),
    ]
    if schedule_id is not None:
        pairs.append(SearchAttributePair(SA_SCHEDULE_ID, schedule_id))
    return TypedSearchAttributes(pairs)


async def create_schedule(
    client: Client,
    schedule_id: str,
    definition: dict[str, Any] | AdvancedWorkflow,
    input: dict[str, Any] | None = None,
    *,
    task_queue: str = "cadenza",
    cron: str | None = None,
    every: str | timedelta | None = None,
    overlap: Overlap = "skip",
    jitter: str | None = None,
    paused: bool = False,
    note: str = "",
    known_actions: Collection[str] | None = None,
) -> ScheduleView:
    """Validate the definition, then create a Temporal Schedule that starts it.

    Raises:
        ScheduleError: invalid definition, input, cron, duration or overlap, or the id is taken
            (nothing was created).
    """
    model, run_input = validated_input(definition, input, known_actions)
    schedule = Schedule(
        action=_action(schedule_id, model, run_input, task_queue),
        spec=schedule_spec(cron, every, jitter),
        policy=SchedulePolicy(overlap=overlap_policy(overlap)),
        state=ScheduleState(note=note or None, paused=paused),
    )
    try:
        await client.create_schedule(schedule_id, schedule, search_attributes=_attributes(model))
    except ScheduleAlreadyRunningError:
        raise ScheduleError(
            f"schedule {schedule_id!r} exists already: change it with `cadenza schedule update "
            f"{schedule_id} FILE` or delete it first"
        ) from None
    except RPCError as exc:
        raise _refused(exc, cron) from None
    return await describe_schedule(client, schedule_id)


async def update_schedule(
    client: Client,
    schedule_id: str,
    definition: dict[str, Any] | AdvancedWorkflow | None = None,
    input: dict[str, Any] | None = None,
    *,
    task_queue: str | None = None,
    cron: str | None = None,
    every: str | timedelta | None = None,
    overlap: Overlap | None = None,
    jitter: str | None = None,
    note: str | None = None,
    known_actions: Collection[str] | None = None,
) -> ScheduleView:
    """Change a schedule: a new definition (validated first; the stored input is kept unless
    `input` is given), timing, overlap policy or note. What is not given stays as it is.

    Raises:
        UnknownSchedule: no such schedule.
        ScheduleError: the new definition, input or timing is invalid (nothing changed).
    """
    current = await describe_schedule(client, schedule_id)
    new_action: ScheduleActionStartWorkflow | None = None
    attributes: TypedSearchAttributes | None = None
    if definition is not None or input is not None:
        stored = current.input if input is None else input
        model, run_input = validated_input(
            definition if definition is not None else current.definition, stored, known_actions
        )
        queue = task_queue or current.task_queue
        new_action, attributes = _action(schedule_id, model, run_input, queue), _attributes(model)
    spread = parse_duration(jitter, "--jitter") if jitter else None
    spec = None
    if cron is not None or every is not None:
        spec = schedule_spec(cron, every, jitter or duration_text(current.jitter_seconds))

    def change(update: ScheduleUpdateInput) -> ScheduleUpdate:
        schedule = update.description.schedule
        if new_action is not None:
            schedule.action = new_action
        if spec is not None:
            schedule.spec = spec
        elif spread is not None:
            schedule.spec.jitter = spread
        if overlap is not None:
            schedule.policy.overlap = overlap_policy(overlap)
        if note is not None:
            schedule.state.note = note
        return ScheduleUpdate(schedule=schedule, search_attributes=attributes)

    try:
        await client.get_schedule_handle(schedule_id).update(change)
    except RPCError as exc:
        raise _refused(exc, cron) from None
    return await describe_schedule(client, schedule_id)


async def describe_schedule(client: Client, schedule_id: str) -> ScheduleView:
    """The schedule: timing, policies, next run times, recent runs with their status now, the
    definition and input it starts.

    Raises:
        UnknownSchedule: no such schedule (the message lists those that exist).
    """
    described = await _on(client, schedule_id, lambda handle: handle.describe())
    action = described.schedule.action
    run_input: RunInput | None = None
    task_queue = prefix = ""
    if isinstance(action, ScheduleActionStartWorkflow):
        task_queue, prefix = action.task_queue, action.id
        if action.workflow == RUN_WORKFLOW and action.args:
            decoded = await client.data_converter.decode(list(action.args), [RunInput])
            run_input = decoded[0]
    info, raw = described.info, described.raw_description.info
    runs = await _runs_now(client, _runs(info.recent_actions, raw.recent_actions))
    definition = run_input.definition if run_input else {}
    return ScheduleView(
        **_summary_fields(described, definition),
        next_run_times=list(info.next_action_times),
        recent_runs=runs,
        overlap=overlap_name(described.schedule.policy.overlap),
        jitter_seconds=seconds_of(described.schedule.spec.jitter),
        catchup_window_seconds=seconds_of(described.schedule.policy.catchup_window),
        task_queue=task_queue,
        execution_id_prefix=prefix,
        created_at=info.created_at,
        updated_at=info.last_updated_at,
        actions=info.num_actions,
        skipped_overlap=info.num_actions_skipped_overlap,
        missed_catchup_window=info.num_actions_missed_catchup_window,
        running=[
            a.workflow_id
            for a in info.running_actions
            if isinstance(a, ScheduleActionExecutionStartWorkflow)
        ],
        definition=definition,
        input=run_input.input if run_input else {},
    )


async def list_schedules(client: Client) -> list[ScheduleSummary]:
    """Every schedule that starts cadenza runs, by id (from visibility: a schedule created a
    moment ago may take a moment to appear)."""
    out: list[ScheduleSummary] = []
    async for entry in await client.list_schedules():
        listed = entry.schedule
        if listed is None or getattr(listed.action, "workflow", None) != RUN_WORKFLOW:
            continue
        info, raw = entry.info, entry.raw_entry.info
        out.append(
            ScheduleSummary(
                schedule_id=entry.id,
                workflow_id=entry.typed_search_attributes.get(SA_WORKFLOW_ID) or "",
                version=entry.typed_search_attributes.get(SA_VERSION) or "",
                spec=spec_text(listed.spec),
                paused=listed.state.paused,
                note=listed.state.note or "",
                next_run_times=list(info.next_action_times) if info else [],
                recent_runs=_runs(info.recent_actions, raw.recent_actions) if info else [],
            )
        )
    return sorted(out, key=lambda s: s.schedule_id)


async def pause_schedule(client: Client, schedule_id: str, note: str | None = None) -> None:
    """Stop starting runs (runs already going go on) until `unpause_schedule`."""
    await _on(client, schedule_id, lambda handle: handle.pause(note=note))


async def unpause_schedule(client: Client, schedule_id: str, note: str | None = None) -> None:
    """Start runs again at the next time the spec gives (missed ones are not made up)."""
    await _on(client, schedule_id, lambda handle: handle.unpause(note=note))


async def trigger_schedule(client: Client, schedule_id: str) -> None:
    """Start a run now, paused or not (the overlap policy applies)."""
    await _on(client, schedule_id, lambda handle: handle.trigger())


async def backfill_schedule(
    client: Client,
    schedule_id: str,
    start: datetime,
    end: datetime,
    overlap: Overlap | None = None,
) -> None:
    """Start the runs the spec gives between `start` and `end` (past times: backfill), with the
    schedule's overlap policy unless `overlap` is given."""
    if end <= start:
        raise ScheduleError(
            f"--end ({end.isoformat()}) must be after --start ({start.isoformat()})"
        )
    policy = overlap_policy(overlap) if overlap is not None else None
    backfill = ScheduleBackfill(start_at=start, end_at=end, overlap=policy)
    await _on(client, schedule_id, lambda handle: handle.backfill(backfill))


async def delete_schedule(client: Client, schedule_id: str) -> None:
    """Delete the schedule; the runs it started go on."""
    await _on(client, schedule_id, lambda handle: handle.delete())


async def _on(
    client: Client, schedule_id: str, call: Callable[[ScheduleHandle], Awaitable[T]]
) -> T:
    """`call` on the schedule's handle; an unknown id as UnknownSchedule naming those that exist."""
    try:
        return await call(client.get_schedule_handle(schedule_id))
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    known = [s.schedule_id for s in await list_schedules(client)]
    listed = ", ".join(known[:20]) + (f" and {len(known) - 20} more" if len(known) > 20 else "")
    raise UnknownSchedule(
        f"no schedule {schedule_id!r}; "
        + (f"schedules: {listed}" if known else "there are none (`cadenza schedule create`)")
    )


def _refused(exc: RPCError, cron: str | None) -> Exception:
    """The server's refusal of a spec as a ScheduleError saying the accepted forms."""
    if exc.status != RPCStatusCode.INVALID_ARGUMENT:
        return exc
    if cron is not None and "spec" in exc.message.lower():
        return ScheduleError(f"--cron {cron!r}: {exc.message}; give {CRON_FORMS}")
    return ScheduleError(f"the schedule was refused: {exc.message}")


def _runs(results: Sequence[Any], raw: Sequence[RawActionResult]) -> list[ScheduledRun]:
    """Recent actions as runs, with the status the schedule recorded for each."""
    runs = []
    for result, proto in zip(results, raw, strict=False):
        action = result.action
        if not isinstance(action, ScheduleActionExecutionStartWorkflow):
            continue
        status = proto.start_workflow_status
        runs.append(
            ScheduledRun(
                execution_id=action.workflow_id,
                run_id=action.first_execution_run_id,
                scheduled_at=result.scheduled_at,
                started_at=result.started_at,
                status=WorkflowExecutionStatus(status).name.lower() if status else "running",
            )
        )
    return runs


async def _runs_now(client: Client, runs: list[ScheduledRun]) -> list[ScheduledRun]:
    """`runs` with the status of those the schedule still counts as running read from the
    runs themselves (the schedule learns of an end with a delay)."""

    async def now(run: ScheduledRun) -> ScheduledRun:
        if run.status != "running":
            return run
        try:
            handle = client.get_workflow_handle(run.execution_id, run_id=run.run_id or None)
            status = (await handle.describe()).status
        except RPCError:
            return run
        return run.model_copy(update={"status": status.name.lower()}) if status else run

    return list(await asyncio.gather(*(now(r) for r in runs)))


def _summary_fields(described: ScheduleDescription, definition: dict[str, Any]) -> dict[str, Any]:
    """The summary's fields; the definition's name and version as the runs get them (the
    action's search attributes change with it; the schedule's own follow a moment later)."""
    action, state = described.schedule.action, described.schedule.state
    attributes = (
        action.typed_search_attributes
        if isinstance(action, ScheduleActionStartWorkflow)
        else described.typed_search_attributes
    )
    return {
        "schedule_id": described.id,
        "workflow_id": attributes.get(SA_WORKFLOW_ID) or str(definition.get("workflow_id", "")),
        "version": attributes.get(SA_VERSION) or str(definition.get("version", "")),
        "spec": spec_text(described.schedule.spec),
        "paused": state.paused,
        "note": state.note or "",
    }


class ScheduleMethods:
    """`CadenzaClient`'s schedule methods: the functions above on its client and task queue."""

    client: Client
    task_queue: str

    async def create_schedule(
        self,
        schedule_id: str,
        definition: dict[str, Any] | AdvancedWorkflow,
        input: dict[str, Any] | None = None,
        *,
        cron: str | None = None,
        every: str | timedelta | None = None,
        overlap: Overlap = "skip",
        jitter: str | None = None,
        paused: bool = False,
        note: str = "",
        known_actions: Collection[str] | None = None,
    ) -> ScheduleView:
        """Validate a definition and schedule runs of it on this client's task queue; see
        `create_schedule`."""
        return await create_schedule(
            self.client,
            schedule_id,
            definition,
            input,
            task_queue=self.task_queue,
            cron=cron,
            every=every,
            overlap=overlap,
            jitter=jitter,
            paused=paused,
            note=note,
            known_actions=known_actions,
        )

    async def update_schedule(
        self,
        schedule_id: str,
        definition: dict[str, Any] | AdvancedWorkflow | None = None,
        input: dict[str, Any] | None = None,
        *,
        cron: str | None = None,
        every: str | timedelta | None = None,
        overlap: Overlap | None = None,
        jitter: str | None = None,
        note: str | None = None,
        known_actions: Collection[str] | None = None,
    ) -> ScheduleView:
        """Change a schedule; see `update_schedule`."""
        return await update_schedule(
            self.client,
            schedule_id,
            definition,
            input,
            cron=cron,
            every=every,
            overlap=overlap,
            jitter=jitter,
            note=note,
            known_actions=known_actions,
        )

    async def list_schedules(self) -> list[ScheduleSummary]:
        return await list_schedules(self.client)

    async def describe_schedule(self, schedule_id: str) -> ScheduleView:
        return await describe_schedule(self.client, schedule_id)

    async def pause_schedule(self, schedule_id: str, note: str | None = None) -> None:
        await pause_schedule(self.client, schedule_id, note)

    async def unpause_schedule(self, schedule_id: str, note: str | None = None) -> None:
        await unpause_schedule(self.client, schedule_id, note)

    async def trigger_schedule(self, schedule_id: str) -> None:
        await trigger_schedule(self.client, schedule_id)

    async def backfill_schedule(
        self, schedule_id: str, start: datetime, end: datetime, overlap: Overlap | None = None
    ) -> None:
        await backfill_schedule(self.client, schedule_id, start, end, overlap)

    async def delete_schedule(self, schedule_id: str) -> None:
        await delete_schedule(self.client, schedule_id)
