"""What `status` and `top` print for the live state `worker.live` merges in (issue 19)."""

from __future__ import annotations

from rich.console import Console

from worker.cli.render import live_detail, result_view
from worker.cli.runs import _top_rows
from worker.live import LiveStepRecord, RetryDetail
from workflows.contracts import ErrorInfo, ExecutionResult, StepStatus


def state() -> ExecutionResult:
    retrying = LiveStepRecord(
        status=StepStatus.RETRYING,
        attempts=2,
        started_at="2026-01-01T10:00:00+00:00",
        retry=RetryDetail(
            action="std.fail",
            attempt=2,
            max_attempts=3,
            last_error=ErrorInfo(type="StepFailed", message="not yet (attempt 1)"),
            next_attempt_at="2026-01-01T10:00:04+00:00",
        ),
    )
    routed = LiveStepRecord(
        status=StepStatus.RUNNING, started_at="2026-01-01T10:00:00+00:00", no_worker="cadenza.gpu"
    )
    return ExecutionResult(
        execution_id="r1",
        workflow_id="w",
        version="1",
        started_at="2026-01-01T10:00:00+00:00",
        steps={"flaky": retrying, "train": routed},
    )


def test_status_shows_the_retry_and_the_unserved_queue() -> None:
    s = state()
    assert live_detail(s.steps["flaky"]) == (
        "attempt 2 of 3 at 10:00:04 UTC; last error StepFailed: not yet (attempt 1)"
    )
    console = Console(width=200, record=True)
    console.print(result_view(s))
    text = console.export_text()
    assert "retrying" in text and "attempt 2 of 3 at 10:00:04 UTC" in text
    assert "which no worker polls; start one: cadenza worker --task-queue cadenza.gpu" in text
    assert '"retry":{"action":"std.fail"' in s.model_dump_json(serialize_as_any=True)


def test_top_lists_retrying_steps_with_their_attempt() -> None:
    [row] = _top_rows([("r1", state())])
    assert row["running"] == ["flaky (retry 2)", "train (no worker)"]
    assert row["retrying"] == 1
