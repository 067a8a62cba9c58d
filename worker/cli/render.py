"""Human-readable output of the CLI: step tables, results, Mermaid graphs, Web UI links.

User text (names, ids, errors, comments, vars) is shown as text, never interpreted: the
consoles (`SafeConsole`) parse no Rich markup or emoji codes unless a call asks for it (and then
the user parts go through `esc`), and every string they render, like every `Text` made here,
goes through `clean`, which drops ANSI/OSC escapes (colours, cursor moves, hyperlinks), other
control characters and bidi overrides.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from worker.client import CadenzaClient
from worker.live import LiveStepRecord
from workflows.dsl.models import AdvancedWorkflow, ExecutionResult, StepType, WorkflowStep
from workflows.dsl.plan import upstream_edges
from workflows.engine.progress import COLUMNS, ProgressRow, progress_rows, sla_summary
from workflows.orchestrator import TaskResult

_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, erase
    r"|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC (hyperlinks, titles), DCS, PM, APC
    r"|\x1b[@-Z\\-_]?"  # other escapes, a lone ESC
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
)
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean(text: object) -> str:
    """`text` as a terminal should show it: no escape sequences, control characters (but
    newlines and tabs) or bidi overrides."""
    return _CONTROLS.sub("", _ESCAPES.sub("", str(text)))


def esc(text: object) -> str:
    """`text` cleaned and escaped for a string printed with Rich markup on."""
    return escape(clean(text))


def plain(text: object, style: str = "") -> Text:
    """User text as a Rich `Text`: shown as written, never as markup."""
    return Text(clean(text), style=style)


class SafeConsole(Console):
    """A console for user text: no markup or emoji codes by default, every string cleaned."""

    def __init__(self, **options: Any) -> None:
        super().__init__(markup=False, emoji=False, **options)

    def render_str(self, text: str, **options: Any) -> Text:
        return super().render_str(clean(text), **options)


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
    table = Table(title=plain(f"{result.workflow_id} v{result.version}  [{result.execution_id}]"))
    for column in COLUMNS:
        table.add_column(column)
    ids = list(result.steps)[:max_rows]
    for row in live_rows(result, now or datetime.now(UTC), ids):
        cells = row.cells()
        table.add_row(
            plain(cells[0]),
            plain(row.status, STATUS_STYLE.get(row.status, "")),
            *(plain(c) for c in cells[2:]),
        )
    if len(result.steps) > max_rows:
        table.caption = f"{len(result.steps) - max_rows} more steps not shown"
    status = result.status.value
    lines: list[RenderableType] = [
        table,
        Text.assemble("status: ", (clean(status), STATUS_STYLE.get(status, "bold"))),
    ]
    if result.sla:
        summary = sla_summary(result)
        lines.append(plain(summary, "red" if "breached" in summary else "green"))
    if result.error is not None:
        lines.append(plain(f"error: {result.error.type}: {result.error.message}", "red"))
    for pending in result.pending_approvals.values():
        who = ", ".join(pending.approvers) or "anyone"
        lines.append(
            plain(
                f"waiting: {pending.step_id} for {who} ({pending.approvals}/{pending.required} "
                f"approvals since {pending.since}"
                + (", escalated" if pending.escalated else "")
                + f"); cadenza approve {result.execution_id} {pending.step_id} --by NAME",
                "magenta",
            )
        )
    for sid, record in result.steps.items():
        if isinstance(record, LiveStepRecord) and record.no_worker:
            lines.append(plain(no_worker_line(sid, record.no_worker), "magenta"))
    for audit in [*result.approvals, *result.audit]:
        detail = f" {audit.detail}" if audit.detail else ""
        lines.append(
            plain(f"audit {audit.at} {audit.step_id or ''} {audit.kind} {audit.by}{detail}"[:300])
        )
    for entry in result.compensations:
        lines.append(plain(f"compensated {entry.step_id} with {entry.action}: {entry.status}"))
    if result.vars:
        shown = ", ".join(f"{k}={v!r}" for k, v in list(result.vars.items())[:10])
        lines.append(plain(f"vars: {shown}"[:400]))
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
    head = plain(f"{result.execution_id}: {result.status}", _STATUS_STYLE.get(result.status, ""))
    parts: list[RenderableType] = [head, plain(f"task: {result.task[:300]}")]
    if result.analysis is not None:
        a = result.analysis
        parts.append(
            plain(
                f"analysis ({a.get('source')}): complexity {a.get('complexity')}, "
                f"{a.get('dependencies')}, sensitive {a.get('sensitive')}"
            )
        )
    if result.decisions:
        table = Table("strategy", "complexity", "why", title="decisions", title_justify="left")
        for d in result.decisions:
            table.add_row(plain(d.strategy), f"{d.complexity:.2f}", plain(d.reason))
        parts.append(table)
    if result.tool_calls:
        calls = Table("tool", "args", "outcome", title="tool calls", title_justify="left")
        for c in result.tool_calls:
            outcome = f"error: {c['error']}" if "error" in c else str(c.get("output"))
            calls.add_row(plain(c["tool"]), plain(str(c.get("args"))[:80]), plain(outcome[:120]))
        parts.append(calls)
    if result.answer:
        parts.append(plain(f"answer: {result.answer}"))
    if result.usage:
        parts.append(plain("usage: " + ", ".join(f"{k} {v}" for k, v in result.usage.items())))
    if result.error is not None:
        parts.append(plain(f"{result.error.type}: {result.error.message}", "red"))
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
        safe = clean(label).replace('"', "'").replace("\n", " ")
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
                title = clean(title).replace('"', "'").replace("\n", " ")
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
