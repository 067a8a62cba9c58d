"""Observability on a real dev server: the span tree of a run under forced replays, metrics counted
once and scraped from the worker's Prometheus endpoint, SLA breaches and baseline anomalies
alerted exactly once to a webhook receiver."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.registry import ActionRegistry
from tests.support.receivers import receiver
from worker.client import CadenzaClient
from worker.observability.setup import observability
from worker.settings import Settings
from worker.wiring import running_worker
from workflows.dsl.models import WorkflowState

FAST_RETRY = {"initial_interval": 0.1, "backoff_coefficient": 1.0, "max_attempts": 5}


def traced_definition(workflow_id: str) -> dict[str, Any]:
    return {
        "workflow_id": workflow_id,
        "retry_policy": FAST_RETRY,
        "steps": [
            {"step_id": "a", "action": "std.echo", "input_mapping": {"x": "1"}},
            {
                "step_id": "b",
                "action": "std.fail",
                "dependencies": ["a"],
                "input_mapping": {"until_attempt": "3"},
            },
            {
                "step_id": "p",
                "step_type": "parallel",
                "dependencies": ["b"],
                "parallel_steps": [
                    {"step_id": "c1", "action": "std.echo"},
                    {"step_id": "c2", "action": "std.echo"},
                ],
            },
            {
                "step_id": "s",
                "action": "std.echo",
                "dependencies": ["p"],
                "conditions": [{"when": "false"}],
            },
        ],
    }


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(url, timeout=5).text
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def metric(samples: dict[Any, float], name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


@pytest.mark.parametrize("temporal_spans", [False, True])
async def test_span_tree_and_metrics_are_counted_once_under_forced_replays(
    client: Client,
    registry: ActionRegistry,
    task_queue: str,
    spans: InMemorySpanExporter,
    temporal_spans: bool,
) -> None:
    exporter = spans
    workflow_id = f"traced-{uuid.uuid4().hex[:6]}"
    settings = Settings(metrics_port=0, metrics_host="127.0.0.1", temporal_spans=temporal_spans)
    async with (
        httpx.AsyncClient() as http,
        observability(client, settings, http) as seen,
        running_worker(
            client,
            settings,
            registry,
            task_queue=task_queue,
            observed=seen,
            max_cached_workflows=0,  # every workflow task replays the run from the start
        ),
    ):
        cadenza = CadenzaClient(client, task_queue)
        handle = await cadenza.start(traced_definition(workflow_id))
        result = await cadenza.result(handle.id)
        assert result.status == WorkflowState.COMPLETED
        assert result.steps["b"].attempts == 3
        assert seen.metrics_address is not None
        samples = await asyncio.to_thread(scrape, seen.metrics_address)
        assert seen.monitor.counted["duplicates"] == 0

    spans = [s for s in exporter.get_finished_spans() if s.context is not None]
    ids = [s.context.span_id for s in spans if s.context]
    assert len(ids) == len(set(ids)), "a span was exported twice"
    mine = [s for s in spans if (s.attributes or {}).get("cadenza.execution_id") == handle.id]
    runs = [s for s in mine if s.name == "cadenza.run"]
    assert len(runs) == 1 and runs[0].attributes["cadenza.status"] == "completed"  # type: ignore[index]
    run_span = runs[0]
    steps = {s.attributes["cadenza.step_id"]: s for s in mine if s.name == "cadenza.step"}  # type: ignore[index]
    step_names = Counter(s.attributes["cadenza.step_id"] for s in mine if s.name == "cadenza.step")  # type: ignore[index]
    assert step_names == Counter({"a": 1, "b": 1, "p": 1, "c1": 1, "c2": 1, "s": 1})
    by_id = {s.context.span_id: s for s in spans if s.context}

    def parent_of(span: Any) -> Any:
        return by_id.get(span.parent.span_id) if span.parent else None

    def ancestors(span: Any) -> list[str]:
        chain = []
        while (span := parent_of(span)) is not None:
            chain.append(span.name)
        return chain

    for sid in ("a", "b", "p", "s"):
        assert parent_of(steps[sid]) is run_span, sid
    for sid in ("c1", "c2"):
        assert parent_of(steps[sid]) is steps["p"], sid
    assert steps["s"].attributes["cadenza.status"] == "skipped"  # type: ignore[index]
    assert steps["b"].attributes["cadenza.attempts"] == 3  # type: ignore[index]
    # with Temporal's spans, its workflow span is the run span's parent; without, the caller's
    # context is (none here)
    above = parent_of(run_span)
    assert (above.name if above else None) == (
        "RunWorkflow:AdvancedWorkflowRun" if temporal_spans else None
    )
    # each attempt of b is its own span, under b's step span (and Temporal's activity spans)
    attempts = [
        s
        for s in spans
        if s.name == "cadenza.attempt" and (s.attributes or {}).get("cadenza.step_id") == "b"
    ]
    assert sorted(s.attributes["cadenza.attempt"] for s in attempts) == [1, 2, 3]  # type: ignore[index]
    assert [s.attributes["cadenza.status"] for s in attempts].count("failed") == 2  # type: ignore[index]
    for attempt in attempts:
        chain = ancestors(attempt)
        if temporal_spans:
            assert chain[:2] == ["RunActivity:std.fail", "StartActivity:std.fail"], chain
            assert parent_of(parent_of(parent_of(attempt))) is steps["b"]
        else:
            assert parent_of(attempt) is steps["b"], chain

    # the same run in Prometheus form, each step counted once
    def steps_total(step: str, status: str) -> float:
        return metric(
            samples, "cadenza_steps_total", workflow=workflow_id, step=step, status=status
        )

    for sid in ("a", "b", "p", "c1", "c2"):
        assert steps_total(sid, "completed") == 1, sid
    assert steps_total("s", "skipped") == 1
    assert metric(samples, "cadenza_step_retries_total", workflow=workflow_id, step="b") == 2
    assert metric(samples, "cadenza_runs_total", workflow=workflow_id, status="completed") == 1
    assert (
        metric(samples, "cadenza_step_duration_seconds_count", workflow=workflow_id, step="a") == 1
    )


async def test_sla_breaches_alert_once_each_and_never_fail_the_run(
    skipping_env: WorkflowEnvironment, registry: ActionRegistry
) -> None:
    definition = {
        "workflow_id": "sla-watched",
        "timeout": 3600,
        "sla_targets": {"max_duration_seconds": 150, "step_max_seconds": {"w1": 60, "w2": 500}},
        "steps": [
            {"step_id": "w1", "step_type": "wait", "wait": {"seconds": 100}},
            {
                "step_id": "w2",
                "step_type": "wait",
                "wait": {"seconds": 100},
                "dependencies": ["w1"],
            },
        ],
    }
    queue = f"sla-{uuid.uuid4().hex[:8]}"
    with receiver() as received:
        settings = Settings(alert_webhook_url=f"{received.url}/alerts")
        async with running_worker(skipping_env.client, settings, registry, task_queue=queue):
            cadenza = CadenzaClient(skipping_env.client, queue)
            handle = await cadenza.start(definition)
            result = await asyncio.wait_for(cadenza.result(handle.id), timeout=60)
    assert result.status == WorkflowState.COMPLETED
    breaches = result.sla["breaches"]
    assert [(b["rule"], b["step_id"], b["alert"]) for b in breaches] == [
        ("sla.step", "w1", "sent"),
        ("sla.run", None, "sent"),
    ]
    assert result.sla["targets"]["max_duration_seconds"] == 150
    keys = sorted((a["rule"], a["step_id"]) for a in received.alerts)
    assert keys == [("sla.run", None), ("sla.step", "w1")]
    assert all(a["execution_id"] == handle.id for a in received.alerts)
    assert {h["Idempotency-Key"] for h in received.headers} == {
        f"{handle.id}/sla.run/-",
        f"{handle.id}/sla.step/w1",
    }


def pair(a: float, b: float) -> dict[str, Any]:
    return {"a": a, "b": b}


async def test_a_step_far_over_its_seeded_baseline_raises_one_anomaly_alert(
    client: Client, registry: ActionRegistry, task_queue: str
) -> None:
    workflow_id = f"baselined-{uuid.uuid4().hex[:6]}"
    definition = {
        "workflow_id": workflow_id,
        "steps": [
            {"step_id": "a", "action": "std.sleep", "input_mapping": {"seconds": "input.a"}},
            {"step_id": "b", "action": "std.sleep", "input_mapping": {"seconds": "input.b"}},
        ],
    }
    cadenza = CadenzaClient(client, task_queue)
    # five ordinary runs, finished before the observing worker starts: its baseline comes from
    # visibility (run durations) and their results (step durations)
    async with running_worker(client, Settings(telemetry=False), registry, task_queue=task_queue):
        handles = [await cadenza.start(definition, pair(0.05, 2.5)) for _ in range(5)]
        for handle in handles:
            assert (await cadenza.result(handle.id)).status == WorkflowState.COMPLETED
    with receiver() as received:
        settings = Settings(
            alert_webhook_url=f"{received.url}/alerts",
            baseline_seed_runs=50,
            baseline_seed_results=20,
        )
        async with (
            httpx.AsyncClient() as http,
            observability(client, settings, http) as seen,
            running_worker(client, settings, registry, task_queue=task_queue, observed=seen),
        ):
            baselines = seen.monitor.baselines
            for _ in range(100):
                stats = baselines.stats((workflow_id, "a"))
                if stats is not None and stats.samples >= 5:
                    break
                await asyncio.sleep(0.1)
            assert stats is not None and stats.samples == 5, stats
            assert baselines.stats((workflow_id, None)).samples == 5  # type: ignore[union-attr]
            slow = await cadenza.start(definition, pair(2.0, 2.5))
            assert (await cadenza.result(slow.id)).status == WorkflowState.COMPLETED
            for _ in range(100):
                if received.alerts:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)  # nothing else arrives
    assert len(received.alerts) == 1, received.alerts
    alert = received.alerts[0]
    assert (alert["rule"], alert["step_id"], alert["execution_id"]) == (
        "anomaly.step",
        "a",
        slow.id,
    )
    assert alert["observed_seconds"] > 1.9
    assert "baseline p95" in alert["message"]
