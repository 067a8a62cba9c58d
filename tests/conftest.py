"""Shared fixtures: one real embedded Temporal dev server per test session."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import hypothesis  # noqa: F401  (see below)
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.registry import ActionRegistry
from activities.std import default_registry
from tests.support.processes import LOOPBACK_ALLOW, spawn_worker
from worker.client import CadenzaClient, connect
from worker.codec import data_converter
from worker.observability.tracing import install_tracing
from worker.services.dev_server import (
    SEARCH_ATTRIBUTES,
    EmbeddedServer,
    ServerConfig,
    free_port,
    temporal_binary,
)
from worker.settings import Settings
from worker.wiring import ensure_search_attributes, running_worker

# hypothesis is imported here, at collection, on purpose: its pytest plugin otherwise imports it
# (through pytest's assertion rewriter, i.e. ast.parse) in the terminal summary, after the workers
# stopped; a workflow coroutine finalized by the garbage collector inside that ast.parse (the
# LangGraph interceptor's finally raises there) crashes it with "AST constructor recursion depth
# mismatch" in runs that collect no hypothesis test (make test-integration).


@pytest.fixture(scope="session")
def temporal_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start the embedded server (as `cadenza server` configures it, in memory, headless)."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    config = ServerConfig(port=free_port(), headless=True, db_path=None)
    server = EmbeddedServer(config, log_path=log)
    server.start()
    os.environ["TEMPORAL_ADDRESS"] = config.address
    # Workers run with telemetry on (the default), but do not read visibility for baselines at
    # every start: the monitor's tests seed explicitly.
    os.environ["CADENZA_BASELINE_SEED_RUNS"] = "0"
    yield config.address
    server.stop()


@pytest.fixture(scope="session")
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A second dev server with per-workflow time skipping (start_time_skipping_v2)."""
    args = ["--dynamic-config-value", "frontend.WorkflowTimeSkippingEnabled=true"]
    for name, kind in SEARCH_ATTRIBUTES.items():
        args += ["--search-attribute", f"{name}={kind}"]
    env = await WorkflowEnvironment.start_time_skipping_v2(
        dev_server_existing_path=temporal_binary(),
        dev_server_extra_args=args,
        data_converter=data_converter(),
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def client(temporal_address: str) -> Client:
    client = await connect(wait=30)
    await ensure_search_attributes(client)
    return client


@pytest.fixture(scope="session")
def registry() -> ActionRegistry:
    import tests.support.actions  # noqa: F401  (test actions register themselves)

    return default_registry()


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def cadenza(client: Client, task_queue: str) -> CadenzaClient:
    return CadenzaClient(client, task_queue)


@pytest.fixture
def worker_factory(client: Client, registry: ActionRegistry, task_queue: str):  # type: ignore[no-untyped-def]
    """`async with worker_factory(**options):` runs a worker on the test's task queue; its
    std.http may reach loopback (the tests' servers), which workers refuse by default."""

    @asynccontextmanager
    async def factory(**options: Any) -> AsyncIterator[None]:
        settings = Settings(http_allow=LOOPBACK_ALLOW)
        async with running_worker(client, settings, registry, task_queue=task_queue, **options):
            yield

    return factory


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span this process finishes during the test (the replay-safe provider installed)."""
    tracing = install_tracing()
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    tracing.router.attach(processor)
    yield exporter
    tracing.router.detach(processor)


@pytest.fixture
def worker_process(temporal_address: str, task_queue: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """`cadenza worker` as a separate process on the test's task queue."""
    proc = spawn_worker(task_queue, tmp_path / "worker.log")
    yield proc
    proc.terminate()
    proc.wait(timeout=30)
