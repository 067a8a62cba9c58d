"""Worker wiring: the sandbox, the step executor, the workflow, and the worker's lifetime."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.alerts import AlertActivities, AlertManager
from activities.circuit import CircuitBreaker
from activities.reasoning.allow import ModelAllowList
from activities.registry import ActionRegistry
from activities.steps import StepExecutor
from cadenza.errors import EXIT_USAGE, CadenzaError
from worker.approval_keys import ApprovalKeyActivities, parse_trusted
from worker.definition_library import DefinitionLibrary
from worker.inbox.links import worker_reminder_links
from worker.mutex_activity import MutexActivities
from worker.observability.setup import Observability, alert_sinks, observability
from worker.queue_policy import QueuePolicyActivities
from worker.run_facts import RunFactsActivities
from worker.services.dev_server import SEARCH_ATTRIBUTES
from worker.services.health import Health, health_server
from worker.settings import Settings
from workflows.agent import AGENT_GRAPH, build_agent_graph
from workflows.engine import AdvancedWorkflowRun, CadenzaBatchRun, CadenzaLoopRun, CadenzaMutex
from workflows.engine.visibility import DetailsInterceptor
from workflows.orchestrator import ORCHESTRATOR_GRAPH, AgenticTaskRun, build_orchestrator_graph

# Modules shared by every workflow run instead of re-imported into each run's sandbox. The CEL
# binding is a native extension; pydantic, jsonschema and yaml are pure and slow to import.
# cadenza's own workflow code (the interpreter: engine, runner, approvals, children) is passed
# through too: re-importing it per run cost about 15% of throughput (benchmarks, scenario 4).
# Users write definitions and actions, never workflow code, so the sandbox's runtime checks
# guard only this code; its determinism is enforced instead by tests/unit/test_models.py (no
# clocks, randomness, I/O or environment anywhere in workflows/) and by the replay tests.
PASSTHROUGH_MODULES = (
    "pydantic",
    "pydantic_core",
    "cel",
    "re2",
    "jsonschema",
    "referencing",
    "rpds",
    "yaml",
    "workflows.dsl",
    "activities.contracts",
    "cadenza.errors",
    "workflows",
    "opentelemetry",
    "cryptography",
)


def sandbox_runner() -> SandboxedWorkflowRunner:
    """The sandboxed runner with cadenza's passthrough modules (also used by the Replayer)."""
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    return SandboxedWorkflowRunner(restrictions=restrictions)


WORKFLOWS: list[type] = [
    AdvancedWorkflowRun,
    CadenzaBatchRun,
    CadenzaLoopRun,
    AgenticTaskRun,
    CadenzaMutex,
]


class SearchAttributesMissing(CadenzaError):
    """The namespace lacks cadenza's search attributes and they could not be added.

    Add them as the message says (an operator with rights on the namespace).
    """

    exit_code = EXIT_USAGE


async def ensure_search_attributes(client: Client) -> None:
    """Register cadenza's search attributes when the namespace lacks them.

    Upserting an unknown attribute would leave workflows stuck, so a worker checks at start.
    """
    namespace = client.namespace
    response = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    known = set(response.custom_attributes) | set(response.system_attributes)
    missing = {k: v for k, v in SEARCH_ATTRIBUTES.items() if k not in known}
    if not missing:
        return
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=namespace,
                search_attributes={
                    name: IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{_snake(kind)}")
                    for name, kind in missing.items()
                },
            )
        )
    except Exception as exc:
        raise SearchAttributesMissing(
            f"namespace {namespace!r} lacks search attributes {sorted(missing)} and they could not"
            f" be added ({exc}); run `temporal operator search-attribute create --name NAME "
            "--type Keyword` for each"
        ) from None


def _snake(kind: str) -> str:
    """`KeywordList` -> `KEYWORD_LIST`: the server's name of a search attribute type."""
    return "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(kind)).upper()


def agent_plugin() -> Any:
    """temporalio-langgraph with cadenza's graphs, the agent steps' and the agentic tasks'
    orchestrator (fresh graphs: the plugin mutates them); LangGraph is imported on first use,
    so CLI commands that start no worker do not load it."""
    from temporalio.langgraph import LangGraphPlugin

    return LangGraphPlugin(
        graphs={
            AGENT_GRAPH: build_agent_graph(),
            ORCHESTRATOR_GRAPH: build_orchestrator_graph(),
        }
    )


def build_worker(
    client: Client,
    settings: Settings,
    registry: ActionRegistry,
    http: httpx.AsyncClient,
    *,
    task_queue: str | None = None,
    extra_workflows: Sequence[type] = (),
    alerts: AlertManager | None = None,
    observed: Observability | None = None,
    **worker_options: Any,
) -> Worker:
    """A worker serving the cadenza workflows, every action of `registry` and the alert
    activity; with `observed`, traced (Temporal's spans and context propagation)."""
    executor = StepExecutor(
        registry,
        http,
        breaker=CircuitBreaker(settings.circuit_failure_threshold, settings.circuit_reset_seconds),
        egress=settings.egress(),
        reminder_links=worker_reminder_links(),  # CADENZA_INBOX_URL: links in reminders
    )
    plugins = list(worker_options.pop("plugins", []))
    if observed is not None:
        alerts = observed.alerts
        plugins.append(observed.tracing.plugin(settings.temporal_spans))
    plugins.append(agent_plugin())
    alerting = AlertActivities(alerts or AlertManager(alert_sinks(settings, http)))
    llm = _llm_activities(registry, settings)
    library = DefinitionLibrary(settings.definitions, registry.names())
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=[*WORKFLOWS, *extra_workflows],
        activities=[
            executor.execute,
            alerting.alert,
            llm.chat,
            MutexActivities(client).request,
            library.resolve_activity,
            ApprovalKeyActivities(parse_trusted(settings.approval_keys)).keys,
            QueuePolicyActivities(settings.allowed_queues()).allowed_queues,
            RunFactsActivities(registry, observed.monitor.baselines if observed else None).facts,
        ],
        plugins=plugins,
        **{
            "workflow_runner": sandbox_runner(),
            "interceptors": [DetailsInterceptor()],
            "max_cached_workflows": settings.max_cached_workflows,
            "max_concurrent_activities": settings.max_concurrent_activities,
            "graceful_shutdown_timeout": timedelta(seconds=settings.graceful_shutdown_seconds),
            **worker_options,
        },
    )


def _llm_activities(registry: ActionRegistry, settings: Settings) -> Any:
    """The model-call activity of agent steps and agentic tasks (LangChain: imported by
    workers only)."""
    from activities.reasoning.llm import LlmActivities, Providers

    return LlmActivities(
        registry,
        Providers.from_settings(settings),
        settings.llm_model,
        allowed=ModelAllowList.parse(settings.models_allow),
        breaker=CircuitBreaker(settings.circuit_failure_threshold, settings.circuit_reset_seconds),
    )


def _no_cookies() -> CookieJar:
    """A jar that keeps nothing: the worker's client serves every run's actions, so a cookie one
    run's server set must not ride along on another run's request."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


@asynccontextmanager
async def running_worker(
    client: Client,
    settings: Settings,
    registry: ActionRegistry,
    *,
    task_queue: str | None = None,
    extra_workflows: Sequence[type] = (),
    observed: Observability | None = None,
    **worker_options: Any,
) -> AsyncIterator[Worker]:
    """Run a worker (with its own HTTP client, and its telemetry when `settings.telemetry`)
    for the duration of the block. A caller that wants to read the monitor passes its own
    `observed` (see `worker.observability.setup.observability`)."""
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            httpx.AsyncClient(timeout=settings.http_timeout, cookies=_no_cookies())
        )
        if observed is None and settings.telemetry:
            observed = await stack.enter_async_context(observability(client, settings, http))
        worker = build_worker(
            client,
            settings,
            registry,
            http,
            task_queue=task_queue,
            extra_workflows=extra_workflows,
            observed=observed,
            **worker_options,
        )
        await stack.enter_async_context(worker)
        yield worker


async def serve(client: Client, settings: Settings, registry: ActionRegistry) -> None:
    """Run a worker until cancelled (SIGINT/SIGTERM in the CLI), with its health probes when
    `settings.health_port` is set."""
    await ensure_search_attributes(client)
    async with AsyncExitStack() as stack:
        worker = await stack.enter_async_context(running_worker(client, settings, registry))
        if settings.health_port is not None:
            health = Health(client, lambda: worker.is_running)
            await health.check()
            await stack.enter_async_context(
                health_server(health, settings.health_port, settings.health_host)
            )
        await asyncio.Event().wait()
