"""Commands about runs: `run`, `dev`, `status`, `top`, `cancel`; following a run live."""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from opentelemetry import trace
from rich.live import Live
from rich.table import Table
from rich.text import Text
from temporalio.service import RPCError, RPCStatusCode

from worker.cli.base import (
    EXIT_FAILED,
    EXIT_OK,
    ActionsOpt,
    UsageError,
    err,
    human_duration,
    load_file,
    load_registry,
    out,
    parse_input,
    print_started,
    run_command,
)
from worker.cli.render import esc, live_rows, result_view, ui_link
from worker.client import CadenzaClient, connect
from worker.dev.devmode import dev_session, quiet_sdk_logs
from worker.live import LiveStepRecord
from worker.observability.tracing import install_tracing, traces_exported
from worker.settings import Settings
from workflows.dsl.models import ExecutionOptions, ExecutionResult, WorkflowState
from workflows.engine.progress import duration, sla_summary


def _print_result(result: ExecutionResult, as_json: bool) -> int:
    if as_json:
        # serialize_as_any: live records (worker.live) keep their retry and no_worker fields
        sys.stdout.write(result.model_dump_json(serialize_as_any=True) + "\n")
    else:
        out.print(result_view(result))
    return EXIT_OK if result.status == WorkflowState.COMPLETED else EXIT_FAILED


async def _follow(cadenza: CadenzaClient, execution_id: str, live: bool) -> ExecutionResult:
    """Wait for the result; on a terminal, show the step table while the run goes on."""
    waiter = asyncio.ensure_future(cadenza.result(execution_id))
    if not live:
        return await waiter
    with Live(console=err, refresh_per_second=4, transient=True) as view:
        while not waiter.done():
            try:
                view.update(result_view(await cadenza.status(execution_id), max_rows=30))
            except Exception:  # the first workflow task may not have run yet
                pass
            await asyncio.wait({waiter}, timeout=0.5)
    return waiter.result()


async def _watch(cadenza: CadenzaClient, execution_id: str, interval: float) -> ExecutionResult:
    """Follow a run until it ends: a live table on a terminal, one line per change elsewhere."""
    live = Live(console=err, refresh_per_second=4, transient=True) if err.is_terminal else None
    seen: dict[str, tuple[str, int]] = {}
    misses = 0
    try:
        if live is not None:
            live.start()
        while True:
            try:
                state = await cadenza.status(execution_id, timeout=10)
                misses = 0
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    raise UsageError(f"no run {execution_id!r}: {exc.message}") from None
                misses += 1
                if misses == 2:  # about 20 s: say so, keep watching
                    err.print(
                        f"{execution_id}: no answer yet ({exc.message}); is a worker running "
                        "on its task queue? still trying"
                    )
                await asyncio.sleep(interval)
                continue
            if live is not None:
                live.update(result_view(state, max_rows=max(err.height - 12, 10)))
            else:
                _print_changes(state, seen)
            if state.status not in (WorkflowState.RUNNING, WorkflowState.SUSPENDED):
                return state
            await asyncio.sleep(interval)
    finally:
        if live is not None:
            live.stop()


def _print_changes(state: ExecutionResult, seen: dict[str, tuple[str, int]]) -> None:
    """One line per step whose status or attempts changed since the last look."""
    stamp = datetime.now(UTC).strftime("%H:%M:%S")
    for row in live_rows(state, datetime.now(UTC)):
        key = (row.status, row.attempts)
        if seen.get(row.step_id, ("pending", 0)) == key:
            continue
        seen[row.step_id] = key
        took = ""
        if row.status not in ("running", "waiting", "retrying"):
            took = f" {duration(row.seconds)}"
        detail = f": {row.detail}" if row.detail else ""
        err.print(
            f"{stamp} {row.step_id} {row.status} (attempts {row.attempts}){took}{detail}",
            highlight=False,
        )


def run(
    file: Path,
    input: Annotated[str | None, typer.Option("--input", help="JSON object or @file.")] = None,
    execution_id: Annotated[str | None, typer.Option("--id", help="Execution id.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the result.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    task_queue: Annotated[str | None, typer.Option(help="Task queue of the workers.")] = None,
    summaries: Annotated[
        bool, typer.Option(help="Label each step's activity in the Web UI (costs worker CPU).")
    ] = False,
) -> None:
    """Validate and start a definition; with --wait, follow it and print the result."""

    async def main() -> int:
        data, run_input = load_file(file), parse_input(input)
        # with OTEL_* export configured, the run's spans join the trace of this command
        tracing = install_tracing("cadenza-cli") if traces_exported() else None
        client = await connect(plugins=[tracing.plugin()] if tracing else [])
        cadenza = CadenzaClient(client, task_queue or Settings().task_queue)
        try:
            with trace.get_tracer("cadenza").start_as_current_span(
                "cadenza run", attributes={"cadenza.file": str(file)}
            ) as span:
                handle = await cadenza.start(
                    data,
                    run_input,
                    execution_id=execution_id,
                    options=ExecutionOptions(activity_summaries=summaries),
                )
                span.set_attribute("cadenza.execution_id", handle.id)
        finally:
            if tracing is not None:
                tracing.flush()
        if not wait:
            return print_started(handle.id, as_json, "status")
        result = await _follow(cadenza, handle.id, live=err.is_terminal and not as_json)
        return _print_result(result, as_json)

    run_command(main)


def dev(
    file: Path,
    input: Annotated[str | None, typer.Option("--input", help="JSON object or @file.")] = None,
    actions: ActionsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """First try: start a server if none is reachable, run a worker in-process, run FILE."""
    settings = Settings()
    quiet_sdk_logs()

    async def main() -> int:
        data, run_input = load_file(file), parse_input(input)
        registry = load_registry(actions)
        async with dev_session(settings, registry, say=err.print) as cadenza:
            handle = await cadenza.start(data, run_input, known_actions=registry.names())
            err.print(
                f"started {handle.id}; Web UI: {ui_link(cadenza, handle.id)}", highlight=False
            )
            result = await _follow(cadenza, handle.id, live=err.is_terminal and not as_json)
        return _print_result(result, as_json)

    run_command(main)


def status(
    execution_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print the state as JSON.")] = False,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Follow the run live until it ends.")
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 1.0,
) -> None:
    """Show the live (or final) state of a run; --watch follows it until it ends."""

    async def main() -> int:
        cadenza = CadenzaClient(await connect())
        if watch:
            result = await _watch(cadenza, execution_id, max(interval, 0.1))
            _print_result(result, as_json)
            return EXIT_OK if result.status == WorkflowState.COMPLETED else EXIT_FAILED
        try:
            problem = await cadenza.task_problem(execution_id)
        except RPCError as exc:
            raise UsageError(f"cannot read the status of {execution_id!r}: {exc.message}") from None
        query = asyncio.ensure_future(cadenza.status(execution_id))
        # A run whose workflow task keeps failing cannot answer a query, nor can a run with no
        # worker polling its task queue: look at the task again while the query waits.
        waited = 0.0
        while problem is None:
            done, _ = await asyncio.wait({query}, timeout=2)
            if done:
                break
            waited += 2
            problem = await cadenza.task_problem(execution_id)
            if problem is None and waited >= 10:
                query.cancel()
                err.print(
                    f"[red]{esc(execution_id)} did not answer within {waited:.0f} s:[/red] no "
                    "worker seems to poll its task queue; start one (`cadenza worker`)",
                    highlight=False,
                    markup=True,
                )
                return EXIT_FAILED
        if problem is not None:
            err.print(
                f"[red]{esc(execution_id)} is stuck:[/red] {esc(problem)}",
                highlight=False,
                markup=True,
            )
        try:
            result = await asyncio.wait_for(query, timeout=None if problem is None else 2)
        except Exception as exc:
            if problem is not None:
                return EXIT_FAILED
            raise UsageError(f"cannot read the status of {execution_id!r}: {exc}") from None
        _print_result(result, as_json)
        return EXIT_FAILED if problem is not None else EXIT_OK

    run_command(main)


def top(
    once: Annotated[bool, typer.Option("--once", help="Print one table and exit.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One snapshot as JSON.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many runs (newest first).")] = 50,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 2.0,
) -> None:
    """Running workflows: progress, running steps, waiting approvals and SLA state."""

    async def main() -> int:
        cadenza = CadenzaClient(await connect())
        if as_json:
            rows = _top_rows(await cadenza.running(limit))
            sys.stdout.write(json.dumps(rows) + "\n")
            return EXIT_OK
        if once or not out.is_terminal:
            out.print(_top_table(_top_rows(await cadenza.running(limit))))
            return EXIT_OK
        with Live(console=out, refresh_per_second=2, screen=False) as view:
            while True:
                view.update(_top_table(_top_rows(await cadenza.running(limit))))
                await asyncio.sleep(max(interval, 0.2))

    run_command(main)


def _top_rows(runs: list[tuple[str, ExecutionResult | None]]) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for execution_id, state in runs:
        if state is None:
            rows.append({"execution_id": execution_id, "workflow_id": None, "state": "no answer"})
            continue
        counts: dict[str, int] = {}
        for record in state.steps.values():
            counts[record.status.value] = counts.get(record.status.value, 0) + 1
        started = datetime.fromisoformat(state.started_at) if state.started_at else now
        running = [
            sid
            + (f" (retry {r.attempts})" if r.status.value == "retrying" else "")
            + (" (no worker)" if isinstance(r, LiveStepRecord) and r.no_worker else "")
            for sid, r in state.steps.items()
            if r.status.value in ("running", "retrying")
        ]
        rows.append(
            {
                "execution_id": execution_id,
                "workflow_id": state.workflow_id,
                "version": state.version,
                "state": "paused" if state.paused else state.status.value,
                "elapsed_seconds": round((now - started).total_seconds(), 1),
                "completed": counts.get("completed", 0),
                "failed": counts.get("failed", 0),
                "retrying": counts.get("retrying", 0),
                "total": len(state.steps),
                "running": running,
                "waiting_approvals": sorted(state.pending_approvals),
                "sla": sla_summary(state),
            }
        )
    return rows


def _top_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"cadenza: {len(rows)} running (newest first)")
    for column in ("run", "workflow", "state", "elapsed", "progress", "running", "waiting", "SLA"):
        table.add_column(column)
    for row in rows:
        if row["workflow_id"] is None:
            table.add_row(row["execution_id"], "", row["state"], "", "", "", "", "")
            continue
        progress = f"{row['completed']}/{row['total']}" + (
            f" ({row['failed']} failed)" if row["failed"] else ""
        )
        running = ", ".join(row["running"][:3]) + (
            f" +{len(row['running']) - 3}" if len(row["running"]) > 3 else ""
        )
        table.add_row(
            row["execution_id"],
            row["workflow_id"],
            row["state"],
            human_duration(row["elapsed_seconds"]),
            progress,
            running,
            ", ".join(row["waiting_approvals"]),
            Text(row["sla"], style="red" if "breached" in row["sla"] else ""),
        )
    return table


def cancel(
    execution_id: str,
    step: Annotated[
        str | None,
        typer.Option(help="Cancel only this step (a container: with everything in it)."),
    ] = None,
    by: Annotated[str | None, typer.Option(help="Who cancels (with --step).")] = None,
    reason: Annotated[str, typer.Option(help="Why (with --step; kept in the audit).")] = "",
) -> None:
    """Cancel a run (running steps are cancelled, completed steps compensated), or with --step
    one step: it ends cancelled (StepCancelled) and its failure handling applies."""

    async def main() -> int:
        cadenza = CadenzaClient(await connect())
        if step is not None:
            who = by or getpass.getuser()
            done = await cadenza.cancel_step(execution_id, step, who, reason)
            out.print(f"step {step!r} of {execution_id} cancelled (it was {done.was})")
            return EXIT_OK
        try:
            await cadenza.cancel(execution_id)
        except Exception as exc:
            raise UsageError(f"cannot cancel {execution_id!r}: {exc}") from None
        out.print(f"cancellation requested for {execution_id}")
        return EXIT_OK

    run_command(main)


def rerun(
    execution_id: str,
    from_step: Annotated[
        str | None,
        typer.Option("--from", help="Run this step and everything downstream of it again."),
    ] = None,
    new_id: Annotated[str | None, typer.Option("--id", help="The new run's id.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the result.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Rerun an ended run: same definition and input (from its history); the steps that
    completed there and were not compensated are taken over, not run again."""

    async def main() -> int:
        cadenza = CadenzaClient(await connect())
        try:
            handle = await cadenza.rerun(execution_id, from_step, new_id)
        except RPCError as exc:
            raise UsageError(f"cannot rerun {execution_id!r}: {exc.message}") from None
        if not wait:
            return print_started(handle.id, as_json, "status")
        result = await _follow(cadenza, handle.id, live=err.is_terminal and not as_json)
        return _print_result(result, as_json)

    run_command(main)
