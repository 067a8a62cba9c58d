"""Human-readable output of the CLI: step tables, results, Mermaid graphs, Web UI links."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from worker.client import CadenzaClient
from worker.live import LiveStepRecord
from workflows.dsl.models import AdvancedWorkflow, ExecutionResult, StepType, WorkflowStep
from workflows.dsl.plan import upstream_edges
from workflows.engine.progress import COLUMNS, ProgressRow, progress_rows, sla_summary
from workflows.orchestrator import TaskResult

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


def result_view(
    result: ExecutionResult, max_rows: int = 200, now: datetime | None = None
) -> RenderableType:
    """A table of steps (running ones with their time so far) followed by the run's outcome."""
    table = Table(title=f"{result.workflow_id} v{result.version}  [{result.execution_id}]")
    for column in COLUMNS:
        table.add_column(column)
    ids = list(result.steps)[:max_rows]
    for row in live_rows(result, now or datetime.now(UTC), ids):
        cells = row.cells()
        table.add_row(
            cells[0], Text(row.status, style=STATUS_STYLE.get(row.status, "")), *cells[2:]
        )
    if len(result.steps) > max_rows:
        table.caption = f"{len(result.steps) - max_rows} more steps not shown"
    status = result.status.value
    lines: list[RenderableType] = [
        table,
        Text.assemble("status: ", (status, STATUS_STYLE.get(status, "bold"))),
    ]
    if result.sla:
        summary = sla_summary(result)
        lines.append(Text(summary, style="red" if "breached" in summary else "green"))
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
    for sid, record in result.steps.items():
        if isinstance(record, LiveStepRecord) and record.no_worker:
            lines.append(Text(no_worker_line(sid, record.no_worker), style="magenta"))
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


def live_rows(
    state: ExecutionResult, now: datetime, step_ids: Iterable[str] | None = None
) -> list[ProgressRow]:
    """The progress rows, with what the client-side description adds (`worker.live`)."""
    rows = progress_rows(state, now, step_ids)
    for i, row in enumerate(rows):
        detail = live_detail(state.steps[row.step_id])
        if detail:
            rows[i] = dataclasses.replace(row, detail=detail[:160])
    return rows


def live_detail(record: object) -> str | None:
    """`attempt 2 of 3 at 12:00:05; last error: ...` for a retrying step, `no worker polls
    'cadenza.gpu'` for a routed one nobody serves; None otherwise."""
    if not isinstance(record, LiveStepRecord):
        return None
    if record.retry is not None:
        retry = record.retry
        text = f"attempt {retry.attempt}"
        text += f" of {retry.max_attempts}" if retry.max_attempts else ""
        if retry.next_attempt_at:
            at = datetime.fromisoformat(retry.next_attempt_at).astimezone(UTC)
            text += f" at {at:%H:%M:%S} UTC"
        else:
            text += " running"
        if retry.last_error is not None:
            text += f"; last error {retry.last_error.type}: {retry.last_error.message}"
        return text
    if record.no_worker:
        return f"waits for a worker: none polls {record.no_worker!r}"
    return None


def no_worker_line(step_id: str, queue: str) -> str:
    return (
        f"waiting: {step_id} for a worker on task queue {queue!r}, which no worker polls; "
        f"start one: cadenza worker --task-queue {queue}"
    )


def task_view(result: TaskResult) -> RenderableType:
    """An agentic task's outcome: route, decisions, tool calls, answer or error."""
    head = Text(
        f"{result.execution_id}: {result.status}", style=_STATUS_STYLE.get(result.status, "")
    )
    parts: list[RenderableType] = [head, Text(f"task: {result.task[:300]}")]
    if result.analysis is not None:
        a = result.analysis
        parts.append(
            Text(
                f"analysis ({a.get('source')}): complexity {a.get('complexity')}, "
                f"{a.get('dependencies')}, sensitive {a.get('sensitive')}"
            )
        )
    if result.decisions:
        table = Table("strategy", "complexity", "why", title="decisions", title_justify="left")
        for d in result.decisions:
            table.add_row(d.strategy, f"{d.complexity:.2f}", d.reason)
        parts.append(table)
    if result.tool_calls:
        calls = Table("tool", "args", "outcome", title="tool calls", title_justify="left")
        for c in result.tool_calls:
            outcome = f"error: {c['error']}" if "error" in c else str(c.get("output"))
            calls.add_row(c["tool"], str(c.get("args"))[:80], outcome[:120])
        parts.append(calls)
    if result.answer:
        parts.append(Text(f"answer: {result.answer}"))
    if result.usage:
        parts.append(Text("usage: " + ", ".join(f"{k} {v}" for k, v in result.usage.items())))
    if result.error is not None:
        parts.append(Text(f"{result.error.type}: {result.error.message}", style="red"))
    return Group(*parts)


_STATUS_STYLE = {"completed": "bold green", "failed": "bold red", "waiting": "bold yellow"}


def mermaid(definition: AdvancedWorkflow) -> str:
    """The definition's step graph as a Mermaid flowchart."""
    lines = ["flowchart TD"]
    shapes = {
        StepType.CONDITIONAL: ("{", "}"),
        StepType.PARALLEL: ("[[", "]]"),
        StepType.APPROVAL: ("[/", "/]"),
        StepType.WAIT: ("([", "])"),
        StepType.MAP: ("[[", "]]"),
        StepType.TERMINATE: ("(((", ")))"),
        StepType.EVENT: (">", "]"),
        StepType.WORKFLOW: ("{{", "}}"),
    }

    def node(step_id: str, label: str, kind: StepType) -> str:
        left, right = shapes.get(kind, ("[", "]"))
        safe = label.replace('"', "'")
        return f'    {_mid(step_id)}{left}"{safe}"{right}'

    def level(steps: list[WorkflowStep]) -> None:
        for step in steps:
            label = f"{step.step_id}<br/>{_what(step)}"
            lines.append(node(step.step_id, label, step.step_type))
        for sid, deps in upstream_edges(steps).items():
            for dep in deps:
                lines.append(f"    {_mid(dep)} --> {_mid(sid)}")
        for step in steps:
            if step.parallel_steps or step.map is not None:
                title = (
                    step.step_id
                    if step.map is None
                    else f"{step.step_id}: each of {step.map.items}"
                )
                lines.append(f'    subgraph {_mid(step.step_id)}_children ["{title}"]')
                level(step.children())
                lines.append("    end")
                lines.append(f"    {_mid(step.step_id)} -.-> {_mid(step.step_id)}_children")

    level(definition.steps)
    return "\n".join(lines)


def _what(step: WorkflowStep) -> str:
    """What a node does: its action, its step type, the event or definition it names."""
    what = step.action or step.step_type.value
    if step.event is not None:
        what = f"event {step.event.name}"
    elif step.workflow is not None:
        what = f"workflow {step.workflow.name or step.workflow.file}"
        what += "" if step.workflow.wait else " (no wait)"
    if step.mutex is not None:
        what += f"<br/>mutex {step.mutex}"
    return what


def _mid(step_id: str) -> str:
    return "s_" + step_id.replace("-", "_")


def ui_link(cadenza: CadenzaClient, execution_id: str) -> str:
    """Where the run shows in the Web UI of the embedded server."""
    namespace = cadenza.client.namespace
    return f"http://localhost:8233/namespaces/{namespace}/workflows/{execution_id}"
