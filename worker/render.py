"""Human-readable output of the CLI: step tables, results, Mermaid graphs."""

from __future__ import annotations

from datetime import datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from workflows.dsl.models import AdvancedWorkflow, ExecutionResult, StepType, WorkflowStep
from workflows.dsl.plan import upstream_edges

STATUS_STYLE = {
    "completed": "green",
    "failed": "red",
    "running": "cyan",
    "retrying": "yellow",
    "waiting": "magenta",
    "skipped": "dim",
    "pending": "dim",
    "timeout": "red",
    "cancelled": "yellow",
}


def _duration(start: str | None, end: str | None) -> str:
    if not start or not end:
        return ""
    seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    return f"{seconds:.2f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def result_view(result: ExecutionResult, max_rows: int = 200) -> RenderableType:
    """A table of steps followed by the run's outcome."""
    table = Table(title=f"{result.workflow_id} v{result.version}  [{result.execution_id}]")
    for column in ("step", "status", "attempts", "duration", "detail"):
        table.add_column(column)
    for sid, record in list(result.steps.items())[:max_rows]:
        detail = ""
        if record.error is not None:
            detail = f"{record.error.type}: {record.error.message}"
        if record.recovered_by:
            detail = f"recovered by {record.recovered_by} ({detail})"
        if record.skip_reason:
            detail = record.skip_reason
        status = record.status.value
        table.add_row(
            sid,
            Text(status, style=STATUS_STYLE.get(status, "")),
            str(record.attempts),
            _duration(record.started_at, record.ended_at),
            detail[:120],
        )
    if len(result.steps) > max_rows:
        table.caption = f"{len(result.steps) - max_rows} more steps not shown"
    status = result.status.value
    lines: list[RenderableType] = [
        table,
        Text.assemble("status: ", (status, STATUS_STYLE.get(status, "bold"))),
    ]
    if result.error is not None:
        lines.append(Text(f"error: {result.error.type}: {result.error.message}", style="red"))
    for pending in result.pending_approvals.values():
        who = ", ".join(pending.approvers) or "anyone"
        lines.append(
            Text(
                f"waiting: {pending.step_id} for {who} ({pending.approvals}/{pending.required} "
                f"approvals since {pending.since}"
                + (", escalated" if pending.escalated else "")
                + f"); cadenza approve {result.execution_id} {pending.step_id} --by NAME",
                style="magenta",
            )
        )
    for audit in [*result.approvals, *result.audit]:
        detail = f" {audit.detail}" if audit.detail else ""
        lines.append(
            Text(f"audit {audit.at} {audit.step_id or ''} {audit.kind} {audit.by}{detail}"[:300])
        )
    for entry in result.compensations:
        lines.append(Text(f"compensated {entry.step_id} with {entry.action}: {entry.status}"))
    if result.vars:
        shown = ", ".join(f"{k}={v!r}" for k, v in list(result.vars.items())[:10])
        lines.append(Text(f"vars: {shown}"[:400]))
    return Group(*lines)


def mermaid(definition: AdvancedWorkflow) -> str:
    """The definition's step graph as a Mermaid flowchart."""
    lines = ["flowchart TD"]
    shapes = {
        StepType.CONDITIONAL: ("{", "}"),
        StepType.PARALLEL: ("[[", "]]"),
        StepType.APPROVAL: ("[/", "/]"),
        StepType.WAIT: ("([", "])"),
    }

    def node(step_id: str, label: str, kind: StepType) -> str:
        left, right = shapes.get(kind, ("[", "]"))
        safe = label.replace('"', "'")
        return f'    {_mid(step_id)}{left}"{safe}"{right}'

    def level(steps: list[WorkflowStep]) -> None:
        for step in steps:
            label = f"{step.step_id}<br/>{step.action or step.step_type.value}"
            lines.append(node(step.step_id, label, step.step_type))
        for sid, deps in upstream_edges(steps).items():
            for dep in deps:
                lines.append(f"    {_mid(dep)} --> {_mid(sid)}")
        for step in steps:
            if step.parallel_steps:
                lines.append(f"    subgraph {_mid(step.step_id)}_children [{step.step_id}]")
                level(step.parallel_steps)
                lines.append("    end")
                lines.append(f"    {_mid(step.step_id)} -.-> {_mid(step.step_id)}_children")

    level(definition.steps)
    return "\n".join(lines)


def _mid(step_id: str) -> str:
    return "s_" + step_id.replace("-", "_")
