"""The `cadenza` command line: a few lines per command over the library.

Exit codes: 0 success, 1 the workflow failed, 2 invalid input or usage.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
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

from worker.cli_base import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    ActionsOpt,
    UsageError,
    app,
    err,
    exit_now,
    human_duration,
    load_file,
    load_registry,
    out,
    parse_input,
    print_started,
    run_command,
)
from worker.client import (
    CadenzaClient,
    DefinitionRejected,
    connect,
)
from worker.codec import KEYS_VARIABLE, new_key, parse_keys, payload_codec
from worker.dev.devmode import dev_session, quiet_sdk_logs
from worker.observability.tracing import install_tracing, traces_exported
from worker.render import mermaid, result_view
from worker.replay import replay_files, replay_query
from worker.services.codec_server import codec_server
from worker.services.dev_server import SEARCH_ATTRIBUTES, EmbeddedServer, ServerConfig, ServerError
from worker.settings import Settings
from worker.wiring import ensure_search_attributes, serve
from workflows.dsl.loader import DocumentError
from workflows.dsl.models import (
    AdvancedWorkflow,
    ExecutionOptions,
    ExecutionResult,
    WorkflowState,
)
from workflows.dsl.plan import analyse
from workflows.dsl.validate import validate_definition
from workflows.progress import duration, progress_rows, sla_summary


def _print_result(result: ExecutionResult, as_json: bool) -> int:
    if as_json:
        sys.stdout.write(result.model_dump_json() + "\n")
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
            if state.status != WorkflowState.RUNNING:
                return state
            await asyncio.sleep(interval)
    finally:
        if live is not None:
            live.stop()


def _print_changes(state: ExecutionResult, seen: dict[str, tuple[str, int]]) -> None:
    """One line per step whose status or attempts changed since the last look."""
    stamp = datetime.now(UTC).strftime("%H:%M:%S")
    for row in progress_rows(state, datetime.now(UTC)):
        key = (row.status, row.attempts)
        if seen.get(row.step_id, ("pending", 0)) == key:
            continue
        seen[row.step_id] = key
        took = f" {duration(row.seconds)}" if row.status not in ("running", "waiting") else ""
        detail = f": {row.detail}" if row.detail else ""
        err.print(
            f"{stamp} {row.step_id} {row.status} (attempts {row.attempts}){took}{detail}",
            highlight=False,
        )


# ---------------------------------------------------------------------------- commands


@app.command()
def schema() -> None:
    """Print the JSON Schema of a definition (for editors and YAML language servers)."""
    sys.stdout.write(json.dumps(AdvancedWorkflow.model_json_schema(), indent=2) + "\n")
    exit_now(EXIT_OK)


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Definition files (YAML or JSON).")],
    as_json: Annotated[bool, typer.Option("--json", help="Diagnostics as JSON.")] = False,
    actions: ActionsOpt = None,
) -> None:
    """Validate definitions; print every diagnostic (FILE: path: code: message)."""

    async def main() -> int:
        known = load_registry(actions).names()
        reports: list[dict[str, Any]] = []
        for file in files:
            try:
                report = validate_definition(load_file(file), known)
                diagnostics = [d.as_dict() for d in report.diagnostics]
                ok = report.ok
            except (DocumentError, UsageError) as exc:
                diagnostics = [
                    {"path": "$", "code": "unreadable", "message": str(exc), "severity": "error"}
                ]
                ok = False
            reports.append({"file": str(file), "valid": ok, "diagnostics": diagnostics})
        if as_json:
            single = reports[0] if len(reports) == 1 else {"files": reports}
            sys.stdout.write(json.dumps(single) + "\n")
        else:
            for entry in reports:
                for d in entry["diagnostics"]:
                    warning = d["severity"] != "error"
                    line = f"{entry['file']}: {d['path']}: {'warning: ' if warning else ''}"
                    line += f"{d['code']}: {d['message']}"
                    (out if warning else err).print(line, highlight=False, markup=False)
                if entry["valid"]:
                    out.print(f"{entry['file']}: valid", highlight=False, markup=False)
        return EXIT_OK if all(entry["valid"] for entry in reports) else EXIT_USAGE

    run_command(main)


@app.command()
def graph(file: Path) -> None:
    """Print the definition's step graph as a Mermaid flowchart."""

    async def main() -> int:
        report = validate_definition(load_file(file))
        if report.definition is None:
            raise DefinitionRejected(report)
        sys.stdout.write(mermaid(report.definition) + "\n")
        return EXIT_OK

    run_command(main)


@app.command()
def plan(
    file: Path,
    as_json: Annotated[bool, typer.Option("--json", help="The analysis as JSON.")] = False,
) -> None:
    """Analyse a definition: size, depth, width, critical path, complexity, strategy."""

    async def main() -> int:
        report = validate_definition(load_file(file))
        if not report.ok or report.definition is None:
            raise DefinitionRejected(report)
        analysis = analyse(report.definition)
        if as_json:
            sys.stdout.write(json.dumps(analysis.as_dict()) + "\n")
        else:
            types = ", ".join(f"{n} {t}" for t, n in sorted(analysis.counts.items()))
            out.print(
                f"steps: {analysis.steps} ({types})\n"
                f"depth: {analysis.depth} (steps on the longest dependency chain)\n"
                f"width: {analysis.width} (most steps ready at once)\n"
                f"critical path: {' -> '.join(analysis.critical_path)}\n"
                f"complexity: {analysis.complexity}\n"
                f"strategy: {analysis.strategy}",
                highlight=False,
            )
        return EXIT_OK

    run_command(main)


@app.command()
def server(
    port: Annotated[int, typer.Option(help="Frontend gRPC port.")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Web UI port.")] = 8233,
    db: Annotated[
        Path | None, typer.Option(help="SQLite file (default .cadenza/temporal.db).")
    ] = None,
    ip: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    synchronous: Annotated[
        str,
        typer.Option(
            help="SQLite synchronous mode: FULL survives power loss; NORMAL is ~30% faster "
            "but may lose the last commits on power loss."
        ),
    ] = "FULL",
) -> None:
    """Run the embedded Temporal dev server (SQLite file, Web UI, search attributes)."""
    if synchronous.upper() not in ("FULL", "NORMAL"):
        err.print("[red]error:[/red] --synchronous is FULL or NORMAL")
        exit_now(EXIT_USAGE)
    config = ServerConfig(
        port=port,
        ui_port=ui_port,
        ip=ip,
        db_path=db or Settings().data_dir / "temporal.db",
        pragmas=["journal_mode=wal", f"synchronous={synchronous.upper()}"],
    )
    embedded = EmbeddedServer(config)
    try:
        embedded.start()
    except ServerError as exc:
        err.print(f"[red]error:[/red] {exc}")
        exit_now(EXIT_USAGE)
    out.print(
        f"Temporal server on {config.address}, Web UI http://{ip}:{ui_port}, "
        f"data {config.db_path}. Ctrl-C stops it."
    )
    signal.signal(signal.SIGTERM, lambda *_: embedded.stop())
    try:
        code = embedded.wait()
    except KeyboardInterrupt:
        embedded.stop()
        code = 0
    exit_now(0 if code in (0, -signal.SIGTERM, 130) else code)


@app.command()
def worker(
    actions: ActionsOpt = None,
    task_queue: Annotated[str | None, typer.Option(help="Task queue (CADENZA_TASK_QUEUE).")] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve Prometheus metrics on this port (CADENZA_METRICS_PORT)."),
    ] = None,
    health_port: Annotated[
        int | None,
        typer.Option(help="Serve /livez and /readyz on this port (CADENZA_HEALTH_PORT)."),
    ] = None,
) -> None:
    """Run a worker: the AdvancedWorkflowRun workflow and every registered action."""
    settings = Settings()
    if task_queue:
        settings.task_queue = task_queue
    if metrics_port is not None:
        settings.metrics_port = metrics_port
    if health_port is not None:
        settings.health_port = health_port
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(message)s")

    async def main() -> int:
        registry = load_registry(actions)
        client = await connect()
        task = asyncio.ensure_future(serve(client, settings, registry))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        err.print(
            f"worker on task queue {settings.task_queue!r} at "
            f"{client.service_client.config.target_host} serving "
            f"{len(registry.names())} actions; Ctrl-C stops it",
            highlight=False,
        )
        try:
            await task
        except asyncio.CancelledError:
            pass
        return EXIT_OK

    run_command(main)


@app.command()
def setup(
    wait: Annotated[float, typer.Option(help="Seconds to wait for Temporal to come up.")] = 60,
) -> None:
    """Prepare a namespace for cadenza (its search attributes) and exit: a one-shot job."""

    async def main() -> int:
        client = await connect(wait=wait)
        await ensure_search_attributes(client)
        out.print(
            f"namespace {client.namespace!r} at {client.service_client.config.target_host} has "
            f"cadenza's search attributes: {', '.join(SEARCH_ATTRIBUTES)}",
            highlight=False,
        )
        return EXIT_OK

    run_command(main)


@app.command()
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


@app.command()
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


def ui_link(cadenza: CadenzaClient, execution_id: str) -> str:
    """Where the run shows in the Web UI of the embedded server."""
    namespace = cadenza.client.namespace
    return f"http://localhost:8233/namespaces/{namespace}/workflows/{execution_id}"


@app.command()
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
                    f"[red]{execution_id} did not answer within {waited:.0f} s:[/red] no worker "
                    "seems to poll its task queue; start one (`cadenza worker`)",
                    highlight=False,
                )
                return EXIT_FAILED
        if problem is not None:
            err.print(f"[red]{execution_id} is stuck:[/red] {problem}", highlight=False)
        try:
            result = await asyncio.wait_for(query, timeout=None if problem is None else 2)
        except Exception as exc:
            if problem is not None:
                return EXIT_FAILED
            raise UsageError(f"cannot read the status of {execution_id!r}: {exc}") from None
        _print_result(result, as_json)
        return EXIT_FAILED if problem is not None else EXIT_OK

    run_command(main)


@app.command()
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
        running = [sid for sid, r in state.steps.items() if r.status.value == "running"]
        rows.append(
            {
                "execution_id": execution_id,
                "workflow_id": state.workflow_id,
                "version": state.version,
                "state": "paused" if state.paused else state.status.value,
                "elapsed_seconds": round((now - started).total_seconds(), 1),
                "completed": counts.get("completed", 0),
                "failed": counts.get("failed", 0),
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


@app.command()
def replay(
    files: Annotated[
        list[Path] | None, typer.Argument(help="History JSON files or folders of them.")
    ] = None,
    query: Annotated[
        str | None, typer.Option(help="Replay the executions this visibility query finds.")
    ] = None,
    limit: Annotated[int, typer.Option(help="With --query: at most this many.")] = 100,
    workflow_id: Annotated[
        str | None, typer.Option(help="Workflow id of a single history file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Outcomes as JSON.")] = False,
) -> None:
    """Replay histories against this build's workflow code (exit 1 on any non-determinism)."""

    async def main() -> int:
        if bool(files) == bool(query):
            raise UsageError("give history FILES or --query, one of the two")
        if files:
            missing = [str(f) for f in files if not f.exists()]
            if missing:
                raise UsageError(f"no such file: {', '.join(missing)}")
            outcomes = await replay_files(files, workflow_id)
        else:
            client = await connect()
            try:
                outcomes = await replay_query(client, query or "", limit)
            except RPCError as exc:
                raise UsageError(f"the query {query!r} was refused: {exc.message}") from None
        failed = [o for o in outcomes if not o.ok]
        if as_json:
            sys.stdout.write(json.dumps([o.__dict__ for o in outcomes]) + "\n")
        else:
            for outcome in outcomes:
                mark = "ok  " if outcome.ok else "FAIL"
                out.print(f"{mark} {outcome.name} ({outcome.events} events)", highlight=False)
                if outcome.error:
                    out.print(f"     {outcome.error}", highlight=False)
            out.print(
                f"{len(outcomes) - len(failed)} of {len(outcomes)} replayed"
                + (f"; {len(failed)} would fail on this build" if failed else ""),
                highlight=False,
            )
        return EXIT_FAILED if failed or not outcomes else EXIT_OK

    run_command(main)


@app.command("codec-server")
def codec_server_command(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8081,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    origin: Annotated[
        list[str] | None,
        typer.Option("--origin", help="Web UI origin allowed by CORS (repeatable)."),
    ] = None,
) -> None:
    """Serve the Web UI's remote codec endpoint (/encode, /decode) with this process's keys."""

    async def main() -> int:
        keys = parse_keys(os.environ.get(KEYS_VARIABLE, ""))
        if not keys:
            raise UsageError(
                f"{KEYS_VARIABLE} is not set: without keys there is nothing to decode "
                "(make one with `cadenza codec-key`)"
            )
        token = os.environ.get("CADENZA_CODEC_SERVER_TOKEN") or None
        origins = origin or ["http://localhost:8233"]
        with codec_server(payload_codec(keys), port, host, origins, token) as url:
            err.print(
                f"codec server on {url} (keys {', '.join(keys)}; CORS for {', '.join(origins)}"
                f"{'; bearer token required' if token else ''}); in the Web UI set the codec "
                f"endpoint to {url}; Ctrl-C stops it",
                highlight=False,
            )
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
        return EXIT_OK

    run_command(main)


@app.command("codec-key")
def codec_key(key_id: Annotated[str, typer.Argument(help="An id for the key.")] = "k1") -> None:
    """Print a new AES-256 key as `ID:BASE64` for CADENZA_CODEC_KEYS (keep it secret)."""
    sys.stdout.write(f"{key_id}:{new_key()}\n")
    exit_now(EXIT_OK)


@app.command()
def cancel(execution_id: str) -> None:
    """Cancel a run: running steps are cancelled, completed steps compensated."""

    async def main() -> int:
        cadenza = CadenzaClient(await connect())
        try:
            await cadenza.cancel(execution_id)
        except Exception as exc:
            raise UsageError(f"cannot cancel {execution_id!r}: {exc}") from None
        out.print(f"cancellation requested for {execution_id}")
        return EXIT_OK

    run_command(main)


# approvals and agentic tasks: their commands register themselves after the ones above
from worker import cli_people  # noqa: E402,F401


def main() -> None:
    """Entry point of the `cadenza` script."""
    try:
        app()
    except SystemExit as exc:  # typer's usage errors exit 2 already; keep their code
        exit_now(exc.code if isinstance(exc.code, int) else EXIT_USAGE)
    exit_now(EXIT_OK)


if __name__ == "__main__":
    main()
