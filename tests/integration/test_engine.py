"""AdvancedWorkflowRun against the real embedded server, with real activities."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from worker.client import CadenzaClient, DefinitionRejected
from workflows.dsl.loader import parse_document
from workflows.dsl.models import StepStatus, WorkflowState

ROOT = Path(__file__).resolve().parents[2]
FAST = {"initial_interval": 0.1, "maximum_interval": 0.2}


def wf(*steps: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"workflow_id": "test", "retry_policy": FAST, "steps": list(steps), **fields}


def ledger_step(sid: str, *deps: str, **extra: Any) -> dict[str, Any]:
    step = {
        "step_id": sid,
        "action": "test.ledger",
        "dependencies": list(deps),
        "input_mapping": {"ledger": "input.ledger"},
    }
    step.update(extra)
    return step


def read_ledger(path: Path) -> list[str]:
    return path.read_text().split("\n")[:-1] if path.exists() else []


async def test_dependency_diamond_runs_each_step_once_in_order(
    cadenza: CadenzaClient, worker_factory, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    definition = wf(
        ledger_step("a"),
        ledger_step("b", "a"),
        ledger_step("c", "a"),
        ledger_step("d", "b", "c"),
    )
    async with worker_factory():
        handle = await cadenza.start(definition, {"ledger": str(ledger)})
        result = await cadenza.result(handle.id)
    assert result.status == WorkflowState.COMPLETED
    entries = [line.split()[0] for line in read_ledger(ledger)]
    assert sorted(entries) == ["a", "b", "c", "d"]
    assert entries[0] == "a" and entries[-1] == "d"
    assert all(r.status == StepStatus.COMPLETED and r.attempts == 1 for r in result.steps.values())
    # b and c were both started after a ended, and d after both of them
    steps = result.steps
    assert steps["d"].started_at >= max(steps["b"].ended_at, steps["c"].ended_at)  # type: ignore[operator]


async def test_mappings_flow_between_steps_and_into_vars(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        {
            "step_id": "a",
            "action": "std.echo",
            "input_mapping": {"n": "input.n * vars.k"},
            "output_mapping": {"doubled": "result.n"},
        },
        {
            "step_id": "b",
            "action": "std.echo",
            "dependencies": ["a"],
            "input_mapping": {"m": "vars.doubled + 1", "prev": "steps.a.output.n"},
        },
        global_variables={"k": 2},
    )
    async with worker_factory():
        result = await cadenza.result((await cadenza.start(definition, {"n": 21})).id)
    assert result.status == WorkflowState.COMPLETED
    assert result.vars == {"k": 2, "doubled": 42}
    assert result.steps["b"].output == {"m": 43, "prev": 42}
    assert result.steps["b"].input == {"m": 43, "prev": 42}


async def test_retry_succeeds_on_attempt_three(cadenza: CadenzaClient, worker_factory) -> None:
    definition = wf(
        {"step_id": "flaky", "action": "std.fail", "input_mapping": {"until_attempt": "3"}}
    )
    async with worker_factory():
        result = await cadenza.result((await cadenza.start(definition)).id)
    assert result.status == WorkflowState.COMPLETED
    record = result.steps["flaky"]
    assert record.output == {"attempt": 3}
    assert record.attempts == 3 and record.retry_count == 2


async def test_retries_exhausted_fail_the_run_with_attempt_count(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        {"step_id": "broken", "action": "std.fail", "retry_policy": {"max_attempts": 2}}
    )
    async with worker_factory():
        result = await cadenza.result((await cadenza.start(definition)).id)
    assert result.status == WorkflowState.FAILED
    assert result.steps["broken"].attempts == 2
    assert result.error is not None and result.error.type == "StepFailed"
    assert result.error.step_id == "broken"


async def test_non_retryable_error_type_fails_at_once(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        {
            "step_id": "charge",
            "action": "std.fail",
            "input_mapping": {"error_type": "'CardDeclined'", "message": "'declined'"},
        },
        retry_policy={**FAST, "max_attempts": 5, "non_retryable_errors": ["CardDeclined"]},
    )
    async with worker_factory():
        result = await cadenza.result((await cadenza.start(definition)).id)
    assert result.status == WorkflowState.FAILED
    assert result.steps["charge"].attempts == 1
    assert result.steps["charge"].error is not None
    assert result.steps["charge"].error.type == "CardDeclined"


async def test_input_failing_its_schema_fails_without_retries(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        {
            "step_id": "validate",
            "action": "std.echo",
            "input_mapping": {"amount": "input.amount"},
            "input_validation": {
                "type": "object",
                "properties": {"amount": {"type": "number", "minimum": 0}},
            },
        }
    )
    async with worker_factory():
        result = await cadenza.result((await cadenza.start(definition, {"amount": -5})).id)
    assert result.status == WorkflowState.FAILED
    error = result.steps["validate"].error
    assert error is not None and error.type == "InputValidationError"
    assert "amount" in error.message and "minimum" in error.message
    assert result.steps["validate"].attempts == 1


async def test_failure_compensates_completed_steps_in_reverse_order(
    cadenza: CadenzaClient, worker_factory, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    definition = wf(
        ledger_step("reserve", rollback_actions=["test.record"]),
        ledger_step("charge", "reserve", rollback_actions=["test.record"]),
        ledger_step("no_rollback", "charge"),
        {
            "step_id": "ship",
            "action": "std.fail",
            "dependencies": ["no_rollback"],
            "retry_policy": {"max_attempts": 1},
        },
        ledger_step("never", "ship"),
    )
    async with worker_factory():
        result = await cadenza.result((await cadenza.start(definition, {"ledger": str(ledger)})).id)
    assert result.status == WorkflowState.FAILED
    assert [(c.step_id, c.action, c.status) for c in result.compensations] == [
        ("charge", "test.record", "completed"),
        ("reserve", "test.record", "completed"),
    ]
    assert read_ledger(ledger) == [
        "reserve run",
        "charge run",
        "no_rollback run",
        "charge charge-record",
        "reserve reserve-record",
    ]
    assert result.steps["never"].status == StepStatus.PENDING


async def test_workflow_timeout_cancels_running_step_and_compensates(
    cadenza: CadenzaClient, worker_factory, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    definition = wf(
        ledger_step("first", rollback_actions=["test.record"]),
        {
            "step_id": "slow",
            "action": "std.sleep",
            "dependencies": ["first"],
            "input_mapping": {"seconds": "60"},
        },
        timeout=2,
    )
    async with worker_factory():
        result = await cadenza.result((await cadenza.start(definition, {"ledger": str(ledger)})).id)
    assert result.status == WorkflowState.TIMEOUT
    assert result.error is not None and result.error.type == "WorkflowTimeout"
    assert result.steps["slow"].status == StepStatus.FAILED
    assert [c.step_id for c in result.compensations] == ["first"]
    assert read_ledger(ledger) == ["first run", "first first-record"]


async def test_cancellation_compensates_and_ends_cancelled(
    cadenza: CadenzaClient, worker_factory, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    definition = wf(
        ledger_step("first", rollback_actions=["test.record"]),
        {
            "step_id": "slow",
            "action": "std.sleep",
            "dependencies": ["first"],
            "input_mapping": {"seconds": "60"},
        },
    )
    async with worker_factory():
        handle = await cadenza.start(definition, {"ledger": str(ledger)})
        for _ in range(100):
            state = await cadenza.status(handle.id)
            if state.steps["slow"].status == StepStatus.RUNNING:
                break
            await asyncio.sleep(0.1)
        await cadenza.cancel(handle.id)
        result = await cadenza.result(handle.id)
        assert await cadenza.describe_status(handle.id) == WorkflowExecutionStatus.CANCELED
    assert result.status == WorkflowState.CANCELLED
    assert [c.step_id for c in result.compensations] == ["first"]
    assert result.steps["slow"].status == StepStatus.FAILED
    assert read_ledger(ledger) == ["first run", "first first-record"]


async def test_error_handler_recovers_and_continue_on_failure_goes_on(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        {
            "step_id": "recovered",
            "action": "std.fail",
            "error_handlers": ["std.fail", "std.echo"],
            "retry_policy": {"max_attempts": 1},
        },
        {
            "step_id": "tolerated",
            "action": "std.fail",
            "retry_policy": {"max_attempts": 1, "continue_on_failure": True},
        },
        {
            "step_id": "after",
            "action": "std.echo",
            "dependencies": ["recovered", "tolerated"],
            "input_mapping": {"handled": "steps.recovered.output.error.type"},
        },
    )
    async with worker_factory():
        result = await cadenza.result((await cadenza.start(definition)).id)
    assert result.status == WorkflowState.COMPLETED
    assert result.steps["recovered"].status == StepStatus.COMPLETED
    assert result.steps["recovered"].recovered_by == "std.echo"
    assert result.steps["tolerated"].status == StepStatus.FAILED
    assert result.steps["after"].output == {"handled": "StepFailed"}


async def test_guards_skip_and_skipping_propagates(cadenza: CadenzaClient, worker_factory) -> None:
    definition = wf(
        {"step_id": "start", "action": "std.echo"},
        {
            "step_id": "express",
            "action": "std.echo",
            "dependencies": ["start"],
            "conditions": [{"when": "input.express == true"}],
        },
        {"step_id": "express_label", "action": "std.echo", "dependencies": ["express"]},
        {"step_id": "join", "action": "std.echo", "dependencies": ["express_label", "start"]},
    )
    async with worker_factory():
        result = await cadenza.result((await cadenza.start(definition, {"express": False})).id)
    steps = result.steps
    assert result.status == WorkflowState.COMPLETED
    assert steps["express"].status == StepStatus.SKIPPED
    assert "guard" in (steps["express"].skip_reason or "")
    assert steps["express_label"].status == StepStatus.SKIPPED
    assert steps["join"].status == StepStatus.COMPLETED


async def test_max_parallel_steps_bounds_concurrency(
    cadenza: CadenzaClient, worker_factory, tmp_path: Path
) -> None:
    steps = [
        {"step_id": f"s{i}", "action": "std.sleep", "input_mapping": {"seconds": "0.3"}}
        for i in range(6)
    ]
    definition = wf(*steps, max_parallel_steps=2)
    async with worker_factory():
        result = await cadenza.result((await cadenza.start(definition)).id)
    assert result.status == WorkflowState.COMPLETED
    intervals = [(r.started_at, r.ended_at) for r in result.steps.values()]
    for start, _ in intervals:
        running = sum(1 for s, e in intervals if s <= start < e)  # type: ignore[operator]
        assert running <= 2


async def test_invalid_definition_is_rejected_before_start(cadenza: CadenzaClient) -> None:
    with pytest.raises(DefinitionRejected) as info:
        await cadenza.start(wf({"step_id": "a", "action": "std.echo", "dependencies": ["b"]}))
    assert "steps[0].dependencies[0]" in str(info.value)


async def test_invalid_definition_fails_fast_inside_the_workflow(
    cadenza: CadenzaClient, worker_factory, client
) -> None:
    """A starter that skipped validation gets a failed run with diagnostics, not a stuck task."""
    from workflows.dsl.models import RunInput
    from workflows.engine import AdvancedWorkflowRun

    async with worker_factory():
        handle = await client.start_workflow(
            AdvancedWorkflowRun.run,
            RunInput(definition={"workflow_id": "BAD ID", "steps": "nope"}),
            id=f"raw-{cadenza.task_queue}",
            task_queue=cadenza.task_queue,
        )
        result = await cadenza.result(handle.id)
    assert result.status == WorkflowState.FAILED
    assert result.error is not None and result.error.type == "DefinitionInvalid"
    assert "workflow_id" in result.error.message and "steps" in result.error.message


async def test_unknown_action_on_worker_fails_step_clearly(
    cadenza: CadenzaClient, worker_factory
) -> None:
    async with worker_factory():
        result = await cadenza.result(
            (await cadenza.start(wf({"step_id": "a", "action": "std.ecko"}))).id
        )
    error = result.steps["a"].error
    assert error is not None and error.type == "ActionNotFound"
    assert "did you mean 'std.echo'" in error.message
    assert result.steps["a"].attempts == 1


async def test_status_query_and_search_attributes_show_progress(
    cadenza: CadenzaClient, worker_factory, client
) -> None:
    definition = wf(
        {"step_id": "wait", "action": "std.sleep", "input_mapping": {"seconds": "1.5"}},
        workflow_id="visible",
        version="2.1",
    )
    async with worker_factory():
        handle = await cadenza.start(definition)
        for _ in range(50):
            state = await cadenza.status(handle.id)
            if state.steps["wait"].status == StepStatus.RUNNING:
                break
            await asyncio.sleep(0.1)
        assert state.status == WorkflowState.RUNNING
        assert state.steps["wait"].status == StepStatus.RUNNING
        result = await cadenza.result(handle.id)
        description = await client.get_workflow_handle(handle.id).describe()
    assert result.status == WorkflowState.COMPLETED
    attributes = {k.name: v for k, v in description.typed_search_attributes}  # type: ignore[attr-defined]
    assert attributes["CadenzaWorkflowId"] == "visible"
    assert attributes["CadenzaVersion"] == "2.1"
    # a run that never waited and completed is not upserted: ExecutionStatus says it all
    assert "CadenzaState" not in attributes
    summary = await description.static_summary()
    assert summary is not None and "visible" in summary


@pytest.mark.parametrize("example", ["order-fulfilment.yaml", "data-pipeline.yaml"])
async def test_examples_complete(cadenza: CadenzaClient, worker_factory, example: str) -> None:
    definition = parse_document((ROOT / "examples" / example).read_bytes(), example)
    run_input = {
        "order-fulfilment.yaml": {"order_id": "A-1", "amount": 3, "address": "1 Main St"},
        "data-pipeline.yaml": {"rows": [1, 5, 7]},
    }[example]
    async with worker_factory():
        result = await cadenza.result((await cadenza.start(definition, run_input)).id)
    assert result.status == WorkflowState.COMPLETED, result.error
    if example == "data-pipeline.yaml":
        assert result.vars["summary"]["large_count"] == 2
    else:
        assert result.vars["charged_on_attempt"] == 3


async def test_local_activity_steps_retry_and_cost_one_event(
    cadenza: CadenzaClient, worker_factory, client
) -> None:
    definition = wf(
        {"step_id": "a", "action": "std.echo", "execution": "local", "input_mapping": {"v": "1"}},
        {
            "step_id": "b",
            "action": "std.fail",
            "execution": "local",
            "dependencies": ["a"],
            "input_mapping": {"until_attempt": "2"},
        },
    )
    async with worker_factory():
        handle = await cadenza.start(definition)
        result = await cadenza.result(handle.id)
        history = await client.get_workflow_handle(handle.id).fetch_history()
    assert result.status == WorkflowState.COMPLETED, result.error
    assert result.steps["a"].output == {"v": 1}
    assert result.steps["b"].attempts == 2
    markers = [  # not the run's one engine patch marker (workflows/engine/versions.py)
        e
        for e in history.events
        if e.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]
    scheduled = [
        e for e in history.events if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert len(markers) == 2 and scheduled == []


async def test_a_guard_that_fails_to_evaluate_fails_its_step(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        {"step_id": "a", "action": "std.echo", "conditions": [{"when": "input.missing > 1"}]}
    )
    async with worker_factory():
        result = await cadenza.result((await cadenza.start(definition)).id)
    error = result.steps["a"].error
    assert result.status == WorkflowState.FAILED
    assert error is not None and error.type == "ExpressionError" and "missing" in error.message


async def test_a_result_too_large_for_temporal_is_trimmed_not_stuck(
    cadenza: CadenzaClient, worker_factory
) -> None:
    """Four ~900 KB incompressible outputs: the full state (~2.7 MB compressed) cannot be one
    payload; without trimming the completion would fail the workflow task forever."""
    steps = [
        {"step_id": f"n{i}", "action": "test.noise", "input_mapping": {"size": "900000"}}
        for i in range(4)
    ]
    steps.append({"step_id": "small", "action": "std.echo", "input_mapping": {"ok": "true"}})
    async with worker_factory():
        result = await asyncio.wait_for(cadenza.result((await cadenza.start(wf(*steps))).id), 30)
    assert result.status == WorkflowState.COMPLETED
    trimmed = [s for s, r in result.steps.items() if (r.output or {}).get("truncated")]
    assert 1 <= len(trimmed) <= 4 and "small" not in trimmed
    assert result.steps["small"].output == {"ok": True}
    assert result.steps[trimmed[0]].output["bytes"] > 800_000


async def test_activity_summaries_label_steps_in_the_web_ui_when_asked(
    cadenza: CadenzaClient, worker_factory
) -> None:
    from workflows.dsl.models import ExecutionOptions

    definition = wf(
        {"step_id": "label_me", "action": "std.echo", "execution": "activity"}, workflow_id="labels"
    )
    summaries = {}
    async with worker_factory():
        for on in (False, True):
            handle = await cadenza.start(
                definition, options=ExecutionOptions(activity_summaries=on)
            )
            await cadenza.result(handle.id)
            history = await handle.fetch_history()
            [scheduled] = [
                e for e in history.events if e.HasField("activity_task_scheduled_event_attributes")
            ]
            summaries[on] = scheduled.user_metadata.summary.data
    assert summaries[False] == b""  # off by default: no payload to convert per step
    assert b"label_me" in summaries[True]
