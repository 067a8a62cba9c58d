"""Human-readable output of the CLI: step tables, results, Mermaid graphs, Web UI links."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from worker.client import CadenzaClient
from workflows.dsl.models import AdvancedWorkflow, ExecutionResult, StepType, WorkflowStep
from workflows.dsl.plan import upstream_edges
from workflows.engine.progress import COLUMNS, progress_rows, sla_summary
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
    for row in progress_rows(result, now or datetime.now(UTC), ids):
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
