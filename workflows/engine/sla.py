"""SLA targets of a run: durable timers; a breach is recorded and alerted, never fails the run.

Deterministic code only. `sla_targets.max_duration_seconds` arms one timer when the run starts
(left pending if the run ends first: a pending timer costs no history event);
`step_max_seconds.<id>` arms a timer when that step starts, cancelled when it ends in time. A
timer that fires while its run or step has not ended (running, waiting or suspended) appends a
breach to `state.sla` and hands an `AlertInput` to the `cadenza.alert` activity (the worker's
alert sinks). An alert that cannot be delivered is recorded on the breach; it never fails the
run.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow

from workflows.engine import versions
from workflows.engine.alerts import send_alert

with workflow.unsafe.imports_passed_through():
    from activities.contracts import AlertInput
    from workflows.contracts import ExecutionResult, SlaBreach, StepStatus, WorkflowState
    from workflows.dsl.models import SlaTargets


# Steps that wait (an approval, an event, a wait condition, a mutex) or are suspended have not
# ended either: their targets hold too.
WAITING = (StepStatus.WAITING, StepStatus.SUSPENDED)
WAITING_PATCH = "sla-waiting-steps"


def _still_at_it(status: StepStatus) -> bool:
    """Whether a step whose SLA timer fired counts as breaching it."""
    if status in (StepStatus.RUNNING, StepStatus.RETRYING):
        return True
    # Before the patch a waiting step's timer fired and did nothing: histories recorded then
    # replay without the alert activity.
    return status in WAITING and versions.patched(WAITING_PATCH)


class SlaWatch:
    """The SLA timers of one run; breaches go to `state.sla["breaches"]`."""

    def __init__(self, targets: SlaTargets | None, state: ExecutionResult, on_change: Any) -> None:
        self.targets = targets
        self.state = state
        self.on_change = on_change
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._run_timer: asyncio.Task[None] | None = None
        if targets is not None and not state.sla:
            state.sla = {
                "targets": targets.model_dump(mode="json", exclude_none=True),
                "breaches": [],
            }

    def arm_run(self) -> None:
        """Start the whole-run timer (once)."""
        if self.targets is None or self.targets.max_duration_seconds is None:
            return
        if self._run_timer is None:
            self._run_timer = asyncio.ensure_future(
                self._watch(None, self.targets.max_duration_seconds)
            )

    def arm_step(self, step_id: str) -> None:
        """A step started running: start its timer if it has a target."""
        if self.targets is None:
            return
        seconds = self.targets.step_max_seconds.get(step_id)
        if seconds is not None:
            self.disarm_step(step_id)
            self._timers[step_id] = asyncio.ensure_future(self._watch(step_id, seconds))

    def disarm_step(self, step_id: str) -> None:
        """A step ended: cancel its timer if it has not fired (a fired one finishes alerting)."""
        task = self._timers.pop(step_id, None)
        if task is not None and not task.done():
            task.cancel()

    async def _watch(self, step_id: str | None, seconds: float) -> None:
        what = f"step '{step_id}'" if step_id else "the run"
        await workflow.sleep(seconds, summary=f"SLA: {what} within {seconds:g} s")
        if step_id is not None:
            self._timers.pop(step_id, None)  # fired: disarm_step no longer cancels it
            if not _still_at_it(self.state.steps[step_id].status):
                return
        elif self.state.status not in (WorkflowState.RUNNING, WorkflowState.SUSPENDED):
            return
        now = workflow.now().isoformat()
        rule = "sla.step" if step_id else "sla.run"
        breach: SlaBreach = {
            "rule": rule,
            "step_id": step_id,
            "target_seconds": seconds,
            "at": now,
            "alert": "pending",
        }
        self.state.sla.setdefault("breaches", []).append(breach)
        self.on_change()
        alert = AlertInput(
            rule=rule,
            execution_id=self.state.execution_id,
            workflow_id=self.state.workflow_id,
            step_id=step_id,
            message=f"{self.state.workflow_id}: {what} has not ended within its SLA target of "
            f"{seconds:g} s (execution {self.state.execution_id})",
            target_seconds=seconds,
            at=now,
        )
        breach["alert"] = await send_alert(alert)
        self.on_change()
