"""Commands of operators: `server`, `worker`, `setup`, `replay`, `codec-key` (and in codec.py:
`codec-server`)."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from temporalio.service import RPCError

from worker.cli.base import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    ActionsOpt,
    UsageError,
    err,
    exit_now,
    load_registry,
    out,
    run_command,
)
from worker.cli.render import esc
from worker.client import connect
from worker.codec import new_key
from worker.replay import replay_files, replay_query
from worker.services.dev_server import SEARCH_ATTRIBUTES, EmbeddedServer, ServerConfig, ServerError
from worker.settings import Settings
from worker.wiring import ensure_search_attributes, serve


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
        err.print("[red]error:[/red] --synchronous is FULL or NORMAL", markup=True)
        exit_now(EXIT_USAGE)
    config = ServerConfig(
        port=port,
        ui_port=ui_port,
        ip=ip,
        db_path=db or Settings().data_dir / "temporal.db",
        pragmas=["journal_mode=wal", f"synchronous={synchronous.upper()}"],
    )
    embedded = EmbeddedServer(config, die_with_parent=True)
    try:
        with embedded.stopping_on_signals():  # stops the child however the block is left
            embedded.start()
            out.print(
                f"Temporal server on {config.address}, Web UI http://{ip}:{ui_port}, "
                f"data {config.db_path}. Ctrl-C (SIGINT) or SIGTERM stops it."
            )
            code = embedded.wait()
    except KeyboardInterrupt:  # SIGINT, SIGTERM or SIGHUP
        code = 0
    except ServerError as exc:
        err.print(f"[red]error:[/red] {esc(exc)}", markup=True)
        exit_now(exc.exit_code)
    exit_now(0 if code in (0, -signal.SIGTERM, 130) else code)


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
    definitions: Annotated[
        Path | None,
        typer.Option(
            help="Serve the definition files of this folder by workflow_id and version "
            "(CADENZA_DEFINITIONS): runs start with {workflow, version, input}."
        ),
    ] = None,
) -> None:
    """Run a worker: the AdvancedWorkflowRun workflow and every registered action."""
    settings = Settings()
    if definitions is not None:
        settings.definitions = definitions
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


def codec_key(key_id: Annotated[str, typer.Argument(help="An id for the key.")] = "k1") -> None:
    """Print a new AES-256 key as `ID:BASE64` for CADENZA_CODEC_KEYS (keep it secret)."""
    sys.stdout.write(f"{key_id}:{new_key()}\n")
    exit_now(EXIT_OK)
