"""The progress table of a run: the same rows in the Web UI (current details) and the CLI.

Pure functions over an `ExecutionResult`; `now` is the workflow's time in the workflow and the
wall clock in the CLI, so a running step's duration is how long it has run so far.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from workflows.contracts import ExecutionResult, StepStatus

COLUMNS = ("step", "status", "attempts", "duration", "detail")


@dataclass(frozen=True)
class ProgressRow:
    step_id: str
    status: str
    attempts: int
    seconds: float | None
    detail: str

    def cells(self) -> tuple[str, str, str, str, str]:
        return (self.step_id, self.status, str(self.attempts), duration(self.seconds), self.detail)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.2f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def progress_rows(
    state: ExecutionResult, now: datetime, step_ids: Iterable[str] | None = None
) -> list[ProgressRow]:
    """One row per step (or per id of `step_ids`), in that order."""
    rows = []
    for sid in state.steps if step_ids is None else step_ids:
        record = state.steps.get(sid)
        if record is None:
            continue
        seconds = None
        if record.started_at:
            end = datetime.fromisoformat(record.ended_at) if record.ended_at else now
            seconds = max((end - datetime.fromisoformat(record.started_at)).total_seconds(), 0.0)
        detail = ""
        if record.error is not None:
            detail = f"{record.error.type}: {record.error.message}"
        if record.recovered_by:
            detail = f"recovered by {record.recovered_by} ({detail})"
        if record.skip_reason:
            detail = record.skip_reason
        pending = state.pending_approvals.get(sid)
        if pending is not None and record.status in (StepStatus.WAITING, StepStatus.RUNNING):
            who = ", ".join(pending.approvers) or "anyone"
            detail = f"waits for {who}: {pending.approvals} of {pending.required} approvals"
        waiting_event = state.pending_events.get(sid)
        if waiting_event is not None and record.status == StepStatus.WAITING:
            detail = f"waits for the event {waiting_event.name!r}"
        if record.mutex_holder and record.status == StepStatus.WAITING:
            detail = f"waits for mutex {record.mutex!r}, held by {record.mutex_holder}"
        breached = [b for b in state.sla.get("breaches", ()) if b.get("step_id") == sid]
        if breached:
            detail = f"SLA {breached[-1]['target_seconds']:g}s breached" + (
                f"; {detail}" if detail else ""
            )
        rows.append(ProgressRow(sid, record.status.value, record.attempts, seconds, detail[:120]))
    return rows


def sla_summary(state: ExecutionResult) -> str:
    """`no SLA`, `SLA ok` or `SLA breached: ...`."""
    if not state.sla:
        return "no SLA"
    breaches = state.sla.get("breaches", [])
    if not breaches:
        return "SLA ok"
    named = ", ".join(b.get("step_id") or "run" for b in breaches)
    return f"SLA breached: {named}"


def markdown_table(rows: Iterable[ProgressRow]) -> list[str]:
    """The rows as a Markdown table (the Web UI renders current details as Markdown)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [c.replace("|", "\\|").replace("\n", " ") for c in row.cells()]
        cells[0] = f"`{cells[0]}`"
        lines.append("| " + " | ".join(cells) + " |")
    return lines
