"""Alerts a run raises, handed to the workers' alert sinks through the `cadenza.alert` activity
(log, webhook, OpenTelemetry events; de-duplicated per run, rule and step). Rules and their
severities: `sla.run` and `sla.step` (warning), `run.suspended` (critical), `run.failed` and
`run.timeout` (critical). The monitor raises `anomaly.*` (warning) on its own. Deterministic
code only."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.contracts import ALERT_ACTIVITY, AlertInput
    from workflows.contracts import ExecutionResult, WorkflowState

ALERT_TIMEOUT = timedelta(seconds=30)
ALERT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)
ENDED_ALERTS = "alert-failed-runs"
"""The patch under which a run that fails or times out alerts (runs before it did not)."""


async def send_alert(alert: AlertInput) -> str:
    """Hand `alert` to the sinks: `sent`, or `failed: why` (an alert never fails the run)."""
    summary = f"alert {alert.rule}" + (f" {alert.step_id}" if alert.step_id else "")
    try:
        await workflow.execute_activity(
            ALERT_ACTIVITY,
            alert,
            start_to_close_timeout=ALERT_TIMEOUT,
            retry_policy=ALERT_RETRY,
            summary=summary,
        )
    except ActivityError as exc:
        return f"failed: {exc.cause or exc}"[:300]
    return "sent"


def ended_alert(state: ExecutionResult, ended: WorkflowState) -> AlertInput:
    """The critical alert of a run that failed or timed out, with its error."""
    error = state.error
    why = f"{error.type}: {error.message[:300]}" if error else ended.value
    where = f" at step {error.step_id!r}" if error and error.step_id else ""
    compensated = f"; {len(state.compensations)} compensations ran" if state.compensations else ""
    return AlertInput(
        rule=f"run.{ended.value}",
        execution_id=state.execution_id,
        workflow_id=state.workflow_id,
        step_id=error.step_id if error else None,
        severity="critical",
        message=f"{state.workflow_id}: run {state.execution_id} {ended.value}{where}: {why}"
        f"{compensated}; rerun it with `cadenza rerun {state.execution_id}`",
        at=workflow.now().isoformat(),
    )
