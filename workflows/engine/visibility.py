"""What operators see of a run while it runs: the Web UI's current details (progress, what runs
and waits, the exact commands that decide what waits) and the `CadenzaState` search attribute
that `cadenza pending` queries. Deterministic code only."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

from workflows.contracts import SA_STATE, SA_VERSION, SA_WORKFLOW_ID, ExecutionResult, WorkflowState
from workflows.engine import approvals, events, suspension
from workflows.engine.progress import markdown_table, progress_rows, sla_summary
from workflows.engine.records import Records

DETAIL_ROWS = 20  # rows of the progress table in the Web UI's current details


class Visibility:
    """The Web UI's details and the search attributes of one run."""

    def __init__(self, state: ExecutionResult) -> None:
        self._state = state
        self.records: Records | None = None
        """The interpreter's records, once the steps exist."""
        self._listed_as = WorkflowState.RUNNING.value
        self._state_listed = False
        self._details_due = False

    def identity(self) -> None:
        """CadenzaWorkflowId and CadenzaVersion, unless the starter set them."""
        present = workflow.info().typed_search_attributes
        pairs: list[SearchAttributeUpdate[Any]] = []
        if present.get(SA_WORKFLOW_ID) is None:
            pairs.append(SA_WORKFLOW_ID.value_set(self._state.workflow_id))
        if present.get(SA_VERSION) is None:
            pairs.append(SA_VERSION.value_set(self._state.version))
        if pairs:
            workflow.upsert_search_attributes(pairs)

    def refresh(self) -> None:
        """Current details for the Web UI and the waiting search attribute, now."""
        self._write_details()
        self._list_waiting()

    def changed(self) -> None:
        """A step changed: the search attribute now (it is a command: its place in the history
        must not move), the details string once per activation (a container of 1,000 steps
        changes 2,000 times; the string is only read when someone looks)."""
        self._list_waiting()
        if not self._details_due:
            self._details_due = True
            asyncio.get_running_loop().call_soon(self._details_now)

    def ended(self, state: WorkflowState) -> None:
        """The run ended in `state`."""
        self.refresh()
        # CadenzaState says what Temporal's ExecutionStatus cannot: a run that never waited and
        # completed needs no upsert (one history event and one visibility write saved per run).
        if state != WorkflowState.COMPLETED or self._state_listed:
            workflow.upsert_search_attributes([SA_STATE.value_set(state.value)])

    def _details_now(self) -> None:
        self._details_due = False
        self._write_details()

    def _write_details(self) -> None:
        """Current details for the Web UI: progress counts and what runs now."""
        state = self._state
        records = self.records
        lines = [f"**{state.workflow_id}** v{state.version}: {state.status.value}"]
        if state.paused:
            lines[0] += " (PAUSED: no new steps start; send the `resume` signal)"
        if state.rerun_of:
            lines[0] += f" (a rerun of `{state.rerun_of}`)"
        if records is not None:
            counts = records.counts
            lines += [
                "",
                f"steps: {counts.get('completed', 0)}/{len(state.steps)} completed"
                + "".join(
                    f", {n} {s}" for s, n in sorted(counts.items()) if n and s != "completed"
                ),
            ]
            shown = sorted(records.running)[:DETAIL_ROWS]
            if shown:
                # the same rows as `cadenza status --watch`: running and waiting steps
                lines += ["", *markdown_table(progress_rows(state, workflow.now(), shown))]
                if len(records.running) > len(shown):
                    lines.append(f"... and {len(records.running) - len(shown)} more running")
        if state.sla:
            lines += ["", sla_summary(state)]
        lines += waiting_lines(state)
        if state.error is not None:
            lines.append(f"error: {state.error.type}: {state.error.message[:200]}")
        if state.compensations:
            lines.append(f"compensations: {len(state.compensations)}")
        workflow.set_current_details("\n".join(lines))

    def _list_waiting(self) -> None:
        state = self._state
        if state.status not in (WorkflowState.RUNNING, WorkflowState.SUSPENDED):
            return
        value = WorkflowState.RUNNING.value
        if state.suspended:
            value = WorkflowState.SUSPENDED.value
        elif state.pending_approvals or state.pending_events:
            value = "waiting"
        if value != self._listed_as:
            # `cadenza pending` finds runs through this attribute
            self._listed_as = value
            self._state_listed = True
            workflow.upsert_search_attributes([SA_STATE.value_set(value)])


def waiting_lines(state: ExecutionResult) -> list[str]:
    """The Web UI's lines for what waits for people or systems, with the exact commands."""
    lines: list[str] = []
    for pending in state.pending_approvals.values():
        cli, signal = approvals.commands(state.execution_id, pending)
        who = ", ".join(pending.approvers) or "anyone"
        lines += [
            "",
            f"**`{pending.step_id}` waits for approval** by {who} "
            f"({pending.approvals} of {pending.required}, since {pending.since}"
            + (", escalated" if pending.escalated else "")
            + ")",
            f"- `{cli}`",
            f"- `{signal}`",
        ]
    for sid, suspended in state.suspended.items():
        lines += [
            "",
            f"**`{sid}` is SUSPENDED** since {suspended.since} after {suspended.attempts} "
            f"attempt(s): {suspended.error.type}: {suspended.error.message[:200]}",
            *(f"- `{c}`" for c in suspension.commands(state.execution_id, sid)),
        ]
    for waiting in state.pending_events.values():
        cli, update = events.commands(state.execution_id, waiting)
        lines += [
            "",
            f"**`{waiting.step_id}` waits for the event `{waiting.name}`** (since {waiting.since})",
            f"- `{cli}`",
            f"- `{update}`",
        ]
    if state.buffered_events:
        lines += ["", f"events kept for later steps: {len(state.buffered_events)}"]
    return lines
