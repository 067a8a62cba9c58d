"""`cadenza schedule ...`: runs of a definition on Temporal Schedules (create, list, describe,
pause, unpause, trigger, backfill, update, delete), each a few lines over `worker.schedules`."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from cadenza.errors import CadenzaError
from worker.cli.base import (
    EXIT_OK,
    UsageError,
    err,
    load_file,
    out,
    parse_input,
    run_command,
)
from worker.cli.render import STATUS_STYLE
from worker.client import CadenzaClient, connect
from worker.schedule_models import (
    Overlap,
    ScheduledRun,
    ScheduleError,
    ScheduleView,
    duration_text,
    parse_time,
)
from worker.settings import Settings

app = typer.Typer(
    name="schedule",
    help="Run a definition on a schedule (Temporal Schedules): create, list, describe, pause, "
    "unpause, trigger, backfill, update, delete.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

IdArg = Annotated[str, typer.Argument(help="The schedule id.")]
CronOpt = Annotated[
    str | None, typer.Option("--cron", help="Cron expression, e.g. '0 9 * * 1-5' (UTC).")
]
EveryOpt = Annotated[str | None, typer.Option("--every", help="Interval: 30s, 5m, 1h, 1d.")]
InputOpt = Annotated[str | None, typer.Option("--input", help="Run input: JSON object or @file.")]
JitterOpt = Annotated[
    str | None, typer.Option("--jitter", help="Start each run up to this much later (5m).")
]
QueueOpt = Annotated[str | None, typer.Option(help="Task queue of the workers.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print it as JSON.")]
NoteOpt = Annotated[str | None, typer.Option(help="Why (shown in describe and the Web UI).")]


def _run(body: Callable[[CadenzaClient], Awaitable[int]], task_queue: str | None = None) -> None:
    """Connect and run `body`; an invalid definition printed as `cadenza validate` does."""

    async def main() -> int:
        client = await connect()
        return await body(CadenzaClient(client, task_queue or Settings().task_queue))

    run_command(main)


def _rejected(file: Path, exc: ScheduleError) -> CadenzaError:
    """An invalid definition's diagnostics as `FILE: path: code: message` lines."""
    if exc.report is None:
        return exc
    lines = [f"{file}: {d}" for d in exc.report.errors]
    return UsageError("no schedule was created or changed:\n" + "\n".join(lines))


def create(
    file: Annotated[Path, typer.Argument(help="Definition file (YAML or JSON).")],
    schedule_id: Annotated[str, typer.Option("--id", help="The schedule id (unique).")],
    cron: CronOpt = None,
    every: EveryOpt = None,
    input: InputOpt = None,
    overlap: Annotated[
        Overlap, typer.Option(help="When a run is due while one still runs.")
    ] = "skip",
    jitter: JitterOpt = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
    note: Annotated[str, typer.Option(help="A note kept with the schedule.")] = "",
    task_queue: QueueOpt = None,
) -> None:
    """Validate FILE and schedule runs of it; the definition is stored in the schedule."""

    async def body(cadenza: CadenzaClient) -> int:
        data, run_input = load_file(file), parse_input(input)
        try:
            view = await cadenza.create_schedule(
                schedule_id,
                data,
                run_input,
                cron=cron,
                every=every,
                overlap=overlap,
                jitter=jitter,
                paused=paused,
                note=note,
            )
        except ScheduleError as exc:
            raise _rejected(file, exc) from None
        _say_changed(view, "created")
        return EXIT_OK

    _run(body, task_queue)


def update(
    schedule_id: IdArg,
    file: Annotated[Path, typer.Argument(help="The new definition file.")],
    cron: CronOpt = None,
    every: EveryOpt = None,
    input: Annotated[
        str | None, typer.Option("--input", help="New run input (default: keep the stored one).")
    ] = None,
    overlap: Annotated[Overlap | None, typer.Option(help="New overlap policy.")] = None,
    jitter: JitterOpt = None,
    note: Annotated[str | None, typer.Option(help="New note.")] = None,
) -> None:
    """Replace a schedule's definition with FILE (validated first); optionally its timing too."""

    async def body(cadenza: CadenzaClient) -> int:
        data = load_file(file)
        run_input = parse_input(input) if input is not None else None
        try:
            view = await cadenza.update_schedule(
                schedule_id,
                data,
                run_input,
                cron=cron,
                every=every,
                overlap=overlap,
                jitter=jitter,
                note=note,
            )
        except ScheduleError as exc:
            raise _rejected(file, exc) from None
        _say_changed(view, "updated")
        return EXIT_OK

    _run(body)


def list_(as_json: JsonOpt = False) -> None:
    """List the schedules that start cadenza runs."""

    async def body(cadenza: CadenzaClient) -> int:
        found = await cadenza.list_schedules()
        if as_json:
            rows = [s.model_dump(mode="json") for s in found]
            sys.stdout.write(json.dumps(rows) + "\n")
            return EXIT_OK
        if not found:
            out.print("no schedules; create one with `cadenza schedule create FILE --id SID`")
            return EXIT_OK
        table = Table("schedule", "workflow", "when", "state", "next run", "last run")
        for s in found:
            last = s.recent_runs[-1] if s.recent_runs else None
            table.add_row(
                s.schedule_id,
                f"{s.workflow_id} v{s.version}" if s.workflow_id else "",
                s.spec,
                _state(s.paused, s.note),
                _time(s.next_run_times[0]) if s.next_run_times and not s.paused else "",
                _status(last) if last else "",
            )
        out.print(table)
        return EXIT_OK

    _run(body)


def describe(schedule_id: IdArg, as_json: JsonOpt = False) -> None:
    """Show a schedule: timing, policies, next run times, recent runs and their status."""

    async def body(cadenza: CadenzaClient) -> int:
        view = await cadenza.describe_schedule(schedule_id)
        if as_json:
            sys.stdout.write(view.model_dump_json() + "\n")
            return EXIT_OK
        for line in _facts(view):
            out.print(line, highlight=False)
        if view.next_run_times and not view.paused:
            out.print("next runs: " + ", ".join(_time(t) for t in view.next_run_times[:5]))
        table = Table("scheduled", "started", "execution id", "status", title="recent runs")
        for run in reversed(view.recent_runs):
            table.add_row(_time(run.scheduled_at), _time(run.started_at), *_run_cells(run))
        out.print(table if view.recent_runs else "recent runs: none yet")
        return EXIT_OK

    _run(body)


def pause(schedule_id: IdArg, note: NoteOpt = None) -> None:
    """Stop starting runs (runs already going go on) until `cadenza schedule unpause`."""
    text = note or f"paused by {getpass.getuser()} with cadenza"
    _act(lambda c: c.pause_schedule(schedule_id, text), f"schedule {schedule_id} paused: {text}")


def unpause(schedule_id: IdArg, note: NoteOpt = None) -> None:
    """Start runs again at the next time due (missed times are not made up)."""
    text = note or f"unpaused by {getpass.getuser()} with cadenza"
    _act(lambda c: c.unpause_schedule(schedule_id, text), f"schedule {schedule_id} unpaused")


def trigger(schedule_id: IdArg) -> None:
    """Start a run now, even while paused (the overlap policy applies)."""
    _act(
        lambda c: c.trigger_schedule(schedule_id),
        f"schedule {schedule_id} triggered; see the run with "
        f"`cadenza schedule describe {schedule_id}`",
    )


def backfill(
    schedule_id: IdArg,
    start: Annotated[str, typer.Option("--start", help="From (ISO 8601, UTC by default).")],
    end: Annotated[str, typer.Option("--end", help="To (ISO 8601).")],
    overlap: Annotated[
        Overlap | None, typer.Option(help="Overlap policy of these runs (default: the schedule's).")
    ] = None,
) -> None:
    """Start the runs the schedule would have started between --start and --end."""

    async def call(cadenza: CadenzaClient) -> int:
        begin, finish = parse_time(start, "--start"), parse_time(end, "--end")
        await cadenza.backfill_schedule(schedule_id, begin, finish, overlap)
        out.print(f"schedule {schedule_id}: runs due from {_time(begin)} to {_time(finish)} start")
        return EXIT_OK

    _run(call)


def delete(schedule_id: IdArg) -> None:
    """Delete a schedule (the runs it started go on)."""
    _act(lambda c: c.delete_schedule(schedule_id), f"schedule {schedule_id} deleted")


def _act(call: Callable[[CadenzaClient], Awaitable[None]], done: str) -> None:
    async def body(cadenza: CadenzaClient) -> int:
        await call(cadenza)
        out.print(done, highlight=False, markup=False)
        return EXIT_OK

    _run(body)


def _say_changed(view: ScheduleView, what: str) -> None:
    state = "paused" if view.paused else "active"
    out.print(
        f"schedule {view.schedule_id} {what} ({state}): {view.workflow_id} v{view.version}, "
        f"{view.spec}, overlap {view.overlap}; runs start as {view.execution_id_prefix}-<time>",
        highlight=False,
        markup=False,
    )
    if view.next_run_times and not view.paused:
        out.print("next runs: " + ", ".join(_time(t) for t in view.next_run_times[:3]))
    err.print(f"see it with `cadenza schedule describe {view.schedule_id}`", highlight=False)


def _facts(view: ScheduleView) -> list[str]:
    jitter = duration_text(view.jitter_seconds)
    catchup = duration_text(view.catchup_window_seconds) or "none"
    return [
        f"schedule {view.schedule_id}: {view.workflow_id} v{view.version} "
        f"on task queue {view.task_queue}",
        f"when: {view.spec}" + (f", jitter {jitter}" if jitter else ""),
        f"state: {'paused' if view.paused else 'active'}"
        + (f" ({view.note})" if view.note else ""),
        f"overlap: {view.overlap}; catch-up window: {catchup}",
        f"runs started: {view.actions}, skipped (overlap): {view.skipped_overlap}, "
        f"missed (catch-up window): {view.missed_catchup_window}",
        f"run ids: {view.execution_id_prefix}-<scheduled time>; input: {json.dumps(view.input)}",
        f"running: {', '.join(view.running) or 'none'}",
    ]


def _state(paused: bool, note: str) -> Text:
    if not paused:
        return Text("active", style="green")
    return Text(f"paused ({note})" if note else "paused", style="yellow")


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _status(run: ScheduledRun) -> Text:
    return Text(f"{run.status} ({_time(run.started_at)})", style=_style(run.status))


def _run_cells(run: ScheduledRun) -> tuple[str, Text]:
    return run.execution_id, Text(run.status, style=_style(run.status))


def _style(status: str) -> str:
    ours = {"canceled": "cancelled", "timed_out": "timeout"}.get(status, status)
    return STATUS_STYLE.get(ours, "")


COMMANDS: dict[str, Callable[..., None]] = {
    "create": create,
    "list": list_,
    "describe": describe,
    "pause": pause,
    "unpause": unpause,
    "trigger": trigger,
    "backfill": backfill,
    "update": update,
    "delete": delete,
}
for _name, _command in COMMANDS.items():
    app.command(_name)(_command)
