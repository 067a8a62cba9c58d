"""A circuit opening and closing on a real server: three failures open it, the next attempt is
refused at once with CircuitOpen and a retry delay of the time left, the trial after it runs the
action, which now succeeds, and the circuit closes."""

from __future__ import annotations

import time

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client

from activities.registry import ActionRegistry
from worker.client import CadenzaClient
from worker.settings import Settings
from worker.wiring import running_worker
from workflows.dsl.models import WorkflowState


async def test_circuit_opens_fails_fast_then_closes(
    client: Client, registry: ActionRegistry, task_queue: str, spans: InMemorySpanExporter
) -> None:
    definition = {
        "workflow_id": "breaker",
        "retry_policy": {"initial_interval": 0.05, "backoff_coefficient": 1, "max_attempts": 10},
        "steps": [
            {"step_id": "pay", "action": "std.fail", "input_mapping": {"until_attempt": "5"}}
        ],
    }
    settings = Settings(circuit_failure_threshold=3, circuit_reset_seconds=1.5)
    async with running_worker(client, settings, registry, task_queue=task_queue):
        cadenza = CadenzaClient(client, task_queue)
        started = time.monotonic()
        handle = await cadenza.start(definition)
        result = await cadenza.result(handle.id)
        elapsed = time.monotonic() - started
    assert result.status == WorkflowState.COMPLETED
    assert result.steps["pay"].attempts == 5
    assert elapsed >= 1.4, elapsed  # the open circuit's delay was waited out, not hammered
    attempts = sorted(
        (
            s.attributes["cadenza.attempt"],
            s.attributes["cadenza.status"],
            s.attributes.get("cadenza.error_type"),
        )  # type: ignore[index]
        for s in spans.get_finished_spans()
        if s.name == "cadenza.attempt"
        and (s.attributes or {}).get("cadenza.execution_id") == handle.id
    )
    assert attempts == [
        (1, "failed", "StepFailed"),
        (2, "failed", "StepFailed"),
        (3, "failed", "StepFailed"),
        (4, "failed", "CircuitOpen"),
        (5, "completed", None),
    ]
