"""Custom metrics, metrics_enabled and tags on a real dev server: an action records a declared
counter and histogram through ctx.metrics, the worker's Prometheus endpoint (`--metrics-port`)
serves them with the step and workflow as labels; a step with `metrics_enabled: false` leaves no
series; an undeclared name fails the step saying what is declared; the definition's tags are
the CadenzaTags search attribute (a visibility query finds the run) and span attributes."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client

from activities.registry import ActionContext, ActionRegistry
from worker.client import CadenzaClient
from worker.observability.setup import observability
from worker.settings import Settings
from worker.wiring import running_worker
from workflows.dsl.models import WorkflowState

DECLARED = ["orders_processed:counter", "basket_size:histogram"]


async def record_orders(params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
    """Records what its input says: `orders` processed, one basket size per item of `sizes`."""
    assert ctx.metrics is not None
    ctx.metrics.counter("orders_processed", params.get("orders", 1))
    for size in params.get("sizes", []):
        ctx.metrics.histogram("basket_size", size)
    return {"recorded": True}


def definition(workflow_id: str, tag: str) -> dict[str, Any]:
    return {
        "workflow_id": workflow_id,
        "tags": [tag, "metrics-test"],
        "steps": [
            {
                "step_id": "charge",
                "action": "test.record_orders",
                "custom_metrics": DECLARED,
                "input_mapping": {"orders": "2", "sizes": "[3, 5.5]"},
            },
            {
                "step_id": "quiet",
                "action": "test.record_orders",
                "custom_metrics": DECLARED,
                "metrics_enabled": False,
                "dependencies": ["charge"],
                "input_mapping": {"orders": "7", "sizes": "[1]"},
            },
        ],
    }


async def test_custom_metrics_are_served_by_the_metrics_port_and_tags_are_searchable(
    client: Client, registry: ActionRegistry, task_queue: str, spans: InMemorySpanExporter
) -> None:
    registry.register("test.record_orders", record_orders)
    workflow_id = f"metered-{uuid.uuid4().hex[:6]}"
    tag = f"tag-{uuid.uuid4().hex[:8]}"
    settings = Settings(metrics_port=0, metrics_host="127.0.0.1")
    async with (
        httpx.AsyncClient() as http,
        observability(client, settings, http) as seen,
        running_worker(client, settings, registry, task_queue=task_queue, observed=seen),
    ):
        cadenza = CadenzaClient(client, task_queue)
        handle = await cadenza.start(definition(workflow_id, tag))
        result = await cadenza.result(handle.id)
        assert result.status == WorkflowState.COMPLETED, result.error
        assert seen.metrics_address is not None
        samples = await asyncio.to_thread(scrape, seen.metrics_address)
        found = await _search(client, f"CadenzaTags = '{tag}'")

    charge = {"workflow": workflow_id, "step": "charge"}
    quiet = {"workflow": workflow_id, "step": "quiet"}
    assert metric(samples, "orders_processed_total", **charge) == 2
    assert metric(samples, "basket_size_count", **charge) == 2
    assert metric(samples, "basket_size_sum", **charge) == 8.5
    assert metric(samples, "cadenza_steps_total", **charge) == 1
    # metrics_enabled: false: the step ran (and recorded), yet nothing of it is exported
    assert result.steps["quiet"].status == "completed"
    for name in ("orders_processed_total", "basket_size_count", "cadenza_steps_total"):
        assert not any(
            n == name and set(quiet.items()) <= set(labels) for (n, labels) in samples
        ), name
    assert found == [handle.id]
    run_span = next(
        s
        for s in spans.get_finished_spans()
        if s.name == "cadenza.run" and (s.attributes or {}).get("cadenza.execution_id") == handle.id
    )
    assert list(run_span.attributes["cadenza.tags"]) == [tag, "metrics-test"]  # type: ignore[index, arg-type]


async def test_an_undeclared_metric_fails_the_step_naming_the_declared_ones(
    client: Client, registry: ActionRegistry, task_queue: str
) -> None:
    registry.register("test.record_orders", record_orders)
    step = {
        "step_id": "charge",
        "action": "test.record_orders",
        "custom_metrics": ["orders_total:counter"],  # the action records orders_processed
    }
    settings = Settings()
    async with running_worker(client, settings, registry, task_queue=task_queue):
        cadenza = CadenzaClient(client, task_queue)
        handle = await cadenza.start({"workflow_id": "undeclared", "steps": [step]})
        result = await cadenza.result(handle.id)
    assert result.status == WorkflowState.FAILED
    error = result.steps["charge"].error
    assert error is not None and result.steps["charge"].attempts == 1  # not retried
    assert "'orders_processed' is not declared by step 'charge' (declared: orders_total)" in (
        error.message
    )


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    """The Prometheus endpoint's samples by (name, labels)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(httpx.get(url, timeout=5).text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def metric(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


async def _search(client: Client, query: str, within: float = 30) -> list[str]:
    """The ids a visibility query finds, once it finds any (visibility is eventually
    consistent)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = [execution.id async for execution in client.list_workflows(query)]
        if found or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.2)
