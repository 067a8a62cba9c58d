"""Sessions with an in-process worker: a first try (`cadenza dev`, `make demo`) and scratch
servers for benchmarks and the replay recorder."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from activities.registry import ActionRegistry
from worker.client import CadenzaClient, connect
from worker.services.dev_server import EmbeddedServer, ServerConfig, free_port, port_open
from worker.settings import DEFAULT_ADDRESS, Settings
from worker.wiring import ensure_search_attributes, running_worker


def quiet_sdk_logs() -> None:
    """Failed attempts are part of a demo (retries); the SDK logs each with a traceback."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("temporalio").setLevel(logging.ERROR)


@asynccontextmanager
async def _worker_session(
    settings: Settings,
    registry: ActionRegistry,
    prefix: str,
    wait: float,
    extra_workflows: Sequence[type] = (),
    address: str | None = None,
) -> AsyncIterator[CadenzaClient]:
    """Connect (to `address`, else as envconfig says), check the search attributes, and serve
    a fresh task queue in this process."""
    client = await connect(wait=wait, address=address)
    await ensure_search_attributes(client)
    task_queue = f"{prefix}-{uuid.uuid4().hex[:8]}"
    async with running_worker(
        client, settings, registry, task_queue=task_queue, extra_workflows=extra_workflows
    ):
        yield CadenzaClient(client, task_queue)


@asynccontextmanager
async def dev_session(
    settings: Settings, registry: ActionRegistry, say: Callable[[str], None]
) -> AsyncIterator[CadenzaClient]:
    """Yield a client whose task queue is served by a worker running in this process.

    Starts the embedded server (data in `settings.data_dir`) when nothing listens at the
    configured address, and stops it again at the end.
    """
    embedded: EmbeddedServer | None = None
    address = os.environ.get("TEMPORAL_ADDRESS", DEFAULT_ADDRESS)
    if not port_open(address):
        config = ServerConfig(db_path=settings.data_dir / "temporal.db")
        embedded = EmbeddedServer(config, log_path=settings.data_dir / "server.log")
        say(f"starting the embedded Temporal server on {config.address} (Web UI :8233) ...")
        embedded.start()
    try:
        async with _worker_session(
            settings, registry, "cadenza-dev", wait=30 if embedded else 0
        ) as cadenza:
            yield cadenza
    finally:
        if embedded is not None:
            embedded.stop()


@asynccontextmanager
async def scratch_session(
    registry: ActionRegistry,
    config: ServerConfig | None = None,
    extra_workflows: Sequence[type] = (),
) -> AsyncIterator[CadenzaClient]:
    """A private embedded server on a free port (in memory unless `config` says otherwise) and a
    worker on a fresh task queue; the yielded client is connected to that server."""
    config = config or ServerConfig(headless=True, db_path=None)
    config.port = free_port()
    server = EmbeddedServer(config)
    server.start()
    try:
        async with _worker_session(
            Settings(),
            registry,
            "scratch",
            wait=30,
            extra_workflows=extra_workflows,
            address=config.address,
        ) as cadenza:
            yield cadenza
    finally:
        server.stop()
