"""What operators see of a run while it runs: the Web UI's current details (progress, what runs
and waits, the exact commands that decide what waits, who wrote the definition and when) and
the `CadenzaState` search attribute that `cadenza pending` queries. Deterministic code only.

The Web UI renders current details as Markdown: every piece of user text (names, ids, errors,
approvers) is escaped (`md`, `code`), so none becomes a link, an image, HTML or formatting, and
every value in a copy-paste command is quoted for a POSIX shell (`shell_quote`)."""

from __future__ import annotations

import json
import re
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.worker import (
    HandleQueryInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from workflows.contracts import (
    SA_STATE,
    SA_VERSION,
    SA_WORKFLOW_ID,
    ExecutionResult,
    PendingApproval,
    PendingEvent,
    WorkflowState,
)
from workflows.dsl.models import AdvancedWorkflow
from workflows.engine.progress import COLUMNS, ProgressRow, progress_rows, sla_summary
from workflows.engine.records import Records

DETAIL_ROWS = 20  # rows of the progress table in the Web UI's current details
METADATA_QUERY = "__temporal_workflow_metadata"
"""The built-in query the Web UI reads a run's current details with."""


class Visibility:
    """The Web UI's details and the search attributes of one run."""

    def __init__(self, state: ExecutionResult) -> None:
        self._state = state
        self.records: Records | None = None
        """The interpreter's records, once the steps exist."""
        self.definition: AdvancedWorkflow | None = None
        """The run's definition, once validated (who wrote it and when)."""
        self._listed_as = WorkflowState.RUNNING.value
        self._state_listed = False

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

    def changed(self) -> None:
        """Something the search attribute may show changed: it is upserted now (a command: its
        place in the history must not move). The details are not: they are rendered when the
        Web UI reads them (`DetailsInterceptor`)."""
        self._list_waiting()

    def ended(self, state: WorkflowState) -> None:
        """The run ended in `state`."""
        # CadenzaState says what Temporal's ExecutionStatus cannot: a run that never waited and
        # completed needs no upsert (one history event and one visibility write saved per run).
        if state != WorkflowState.COMPLETED or self._state_listed:
            workflow.upsert_search_attributes([SA_STATE.value_set(state.value)])

    def details(self) -> str:
        """Current details for the Web UI: progress counts, what runs now, what waits."""
        state = self._state
        records = self.records
        lines = [f"**{md(state.workflow_id)}** v{md(state.version)}: {state.status.value}"]
        if state.paused:
            lines[0] += " (PAUSED: no new steps start; send the `resume` signal)"
        if state.rerun_of:
            lines[0] += f" (a rerun of {code(state.rerun_of)})"
        lines += authorship(self.definition)
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
            lines += ["", md(sla_summary(state))]
        lines += waiting_lines(state)
        if state.error is not None:
            lines.append(f"error: {md(state.error.type)}: {md(state.error.message[:200])}")
        if state.compensations:
            lines.append(f"compensations: {len(state.compensations)}")
        return "\n".join(lines)

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


class DetailsInterceptor(Interceptor):
    """Renders a run's current details when they are read, not at every activation.

    The Web UI reads them with the built-in `__temporal_workflow_metadata` query; rendering
    them at every activation in which a step changed cost 0.05-0.1 ms of worker CPU per step
    (docs/benchmarks.md). A workflow whose instance has `current_details()` gets that text in
    the query's answer; others (agentic tasks) keep what they set."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _RenderDetails


class _RenderDetails(WorkflowInboundInterceptor):
    async def handle_query(self, input: HandleQueryInput) -> Any:
        answer = await super().handle_query(input)
        if input.query == METADATA_QUERY:
            render = getattr(workflow.instance(), "current_details", None)
            if callable(render):
                answer.current_details = render()
        return answer


def waiting_lines(state: ExecutionResult) -> list[str]:
    """The Web UI's lines for what waits for people or systems, with the exact commands."""
    eid = state.execution_id
    lines: list[str] = []
    for pending in state.pending_approvals.values():
        who = ", ".join(md(a) for a in pending.approvers) or "anyone"
        lines += [
            "",
            f"**{code(pending.step_id)} waits for approval** by {who} "
            f"({pending.approvals} of {pending.required}, since {md(pending.since)}"
            + (", escalated" if pending.escalated else "")
            + ")",
            *(f"- {code(c)}" for c in approval_commands(eid, pending)),
        ]
    for sid, suspended in state.suspended.items():
        error = suspended.error
        lines += [
            "",
            f"**{code(sid)} is SUSPENDED** since {md(suspended.since)} after "
            f"{suspended.attempts} attempt(s): {md(error.type)}: {md(error.message[:200])}",
            *(f"- {code(c)}" for c in suspension_commands(eid, sid)),
        ]
    for waiting in state.pending_events.values():
        lines += [
            "",
            f"**{code(waiting.step_id)} waits for the event {code(waiting.name)}** "
            f"(since {md(waiting.since)})",
            *(f"- {code(c)}" for c in event_commands(eid, waiting)),
        ]
    if state.buffered_events:
        lines += ["", f"events kept for later steps: {len(state.buffered_events)}"]
    return lines


def authorship(definition: AdvancedWorkflow | None) -> list[str]:
    """`written by X on Y`, from the definition's `created_by` and `created_at`."""
    if definition is None or not (definition.created_by or definition.created_at):
        return []
    by = f" by {md(definition.created_by)}" if definition.created_by else ""
    at = f" on {md(definition.created_at)}" if definition.created_at else ""
    return ["", f"definition written{by}{at}"]


def markdown_table(rows: list[ProgressRow]) -> list[str]:
    """The progress rows as a Markdown table, every cell escaped."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [md(c) for c in row.cells()]
        cells[0] = code(row.step_id)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def approval_commands(execution_id: str, pending: PendingApproval) -> list[str]:
    """The exact commands that approve `pending` (cadenza CLI, temporal CLI), quoted."""
    who = pending.approvers[0] if pending.approvers else "YOUR-NAME"
    body = json.dumps({"step_id": pending.step_id, "by": who})
    return [
        shell("cadenza", "approve", execution_id, pending.step_id, "--by", who),
        shell("temporal", "workflow", "signal", "--workflow-id", execution_id, "--name")
        + f" approve --input {shell_quote(body)}",
    ]


def suspension_commands(execution_id: str, step_id: str) -> list[str]:
    """The exact commands that decide a suspended step, quoted."""
    return [
        shell("cadenza", "retry-step", execution_id, step_id, "--by", "YOUR-NAME"),
        shell("cadenza", "skip-step", execution_id, step_id, "--by", "YOUR-NAME", "--output")
        + " '{...}'",
        shell("cadenza", "fail-step", execution_id, step_id, "--by", "YOUR-NAME", "--reason")
        + " '...'",
    ]


def event_commands(execution_id: str, pending: PendingEvent) -> list[str]:
    """The exact commands that send `pending`'s event (cadenza CLI, temporal CLI), quoted."""
    body = json.dumps({"name": pending.name, "data": {}})
    return [
        shell("cadenza", "send", execution_id, pending.name, "--data", "{}"),
        shell("temporal", "workflow", "update", "execute", "--workflow-id", execution_id)
        + f" --name event --input {shell_quote(body)}",
    ]


_SHELL_SAFE = re.compile(r"[A-Za-z0-9@%+=:,./_-]+")
_MARKDOWN = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def shell_quote(value: str) -> str:
    """`value` as one word of a POSIX shell, as `shlex.quote` writes it (no import of shlex in
    workflow code): bare when only safe characters, else in single quotes."""
    if _SHELL_SAFE.fullmatch(value):
        return value
    return "'" + value.replace("'", "'\"'\"'") + "'"


def shell(*words: str) -> str:
    return " ".join(shell_quote(w) for w in words)


def md(text: object) -> str:
    """User text as literal Markdown: ASCII punctuation backslash-escaped (no link, image,
    HTML, emphasis, heading or table cell can start), control characters and newlines gone."""
    flat = _CONTROLS.sub(" ", str(text))
    return _MARKDOWN.sub(r"\\\1", flat)


def code(text: object) -> str:
    """User text as a Markdown code span: fenced with more backticks than it holds."""
    flat = _CONTROLS.sub(" ", str(text))
    longest = max((len(run) for run in re.findall("`+", flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") or not flat.strip() else ""
    return f"{fence}{pad}{flat}{pad}{fence}"
