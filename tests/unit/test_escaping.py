"""User text is shown as written: in the CLI never as Rich markup, terminal escapes or links;
in the Web UI's details never as Markdown; in the details' commands quoted for a shell.
Every text of the hostile corpus (`tests/support/hostile.py`: TERMINAL_TEXTS) goes through
each renderer."""

from __future__ import annotations

import io
import json
import re
import shlex
from pathlib import Path

import pytest
from rich.table import Table

from tests.support.hostile import TERMINAL_TEXTS
from tests.support.processes import cadenza
from worker.cli.render import SafeConsole, clean, result_view, task_view
from workflows.contracts import (
    AuditEntry,
    ErrorInfo,
    ExecutionResult,
    PendingApproval,
    PendingEvent,
    StepRecord,
    StepStatus,
    SuspendedStep,
    WorkflowState,
)
from workflows.dsl.models import AdvancedWorkflow
from workflows.engine.visibility import (
    approval_commands,
    authorship,
    code,
    event_commands,
    md,
    shell_quote,
    suspension_commands,
    waiting_lines,
)
from workflows.orchestrator import TaskResult

TEXTS = list(TERMINAL_TEXTS.items())
IDS = [name for name, _ in TEXTS]
SINCE = "2026-01-01T00:00:00+00:00"


def printed(renderable: object) -> str:
    """What the CLI's console prints on a colour terminal."""
    buffer = io.StringIO()
    console = SafeConsole(file=buffer, width=400, force_terminal=True, color_system=None)
    console.print(renderable)
    return buffer.getvalue()


def hostile_result(text: str) -> ExecutionResult:
    error = ErrorInfo(type=text, message=text, step_id="a")
    return ExecutionResult(
        execution_id=text,
        workflow_id=text,
        version=text,
        status=WorkflowState.FAILED,
        error=error,
        vars={text: text},
        steps={"a": StepRecord(status=StepStatus.FAILED, error=error, attempts=1)},
        audit=[AuditEntry(at=SINCE, kind="pause", by=text, detail=text)],
        pending_approvals={
            "b": PendingApproval(step_id="b", approvers=[text], required=1, since=SINCE)
        },
    )


def assert_shown_as_text(out: str, text: str) -> None:
    assert "\x1b" not in out and "\x9b" not in out, repr(out)  # no escape of any kind
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f\u202e]", out), repr(out)
    visible = clean(text).split("\n")[0]
    assert visible[:20] in out, (visible, out)  # markup and emoji codes shown literally


@pytest.mark.parametrize(("name", "text"), TEXTS, ids=IDS)
def test_a_run_status_shows_user_text_as_text(name: str, text: str) -> None:
    assert_shown_as_text(printed(result_view(hostile_result(text))), text)


@pytest.mark.parametrize(("name", "text"), TEXTS, ids=IDS)
def test_a_task_view_shows_user_text_as_text(name: str, text: str) -> None:
    task = TaskResult(
        execution_id="t1",
        task=text,
        status="failed",
        answer=text,
        tool_calls=[{"tool": text, "args": {text: text}, "error": text}],
        error=ErrorInfo(type=text, message=text),
    )
    assert_shown_as_text(printed(task_view(task)), text)


@pytest.mark.parametrize(("name", "text"), TEXTS, ids=IDS)
def test_plain_strings_and_table_cells_are_not_markup(name: str, text: str) -> None:
    table = Table(title=text)
    table.add_column("run")
    table.add_row(text)
    for renderable in (table, f"sent {text} to {text}"):
        assert_shown_as_text(printed(renderable), text)


def test_plan_of_a_definition_naming_markup_fails_cleanly(tmp_path: Path) -> None:
    """`[/]` in a value quoted by a diagnostic crashed the error printer (a traceback)."""
    file = tmp_path / "bad.yaml"
    file.write_text('workflow_id: w\nsteps:\n  - {step_id: "[/]", action: "std.echo"}\n')
    for command in ("plan", "validate"):
        done = cadenza(command, str(file), timeout=60)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and "[/]" in done.stderr, done.stderr


# --------------------------------------------------------------------------- the Web UI


MARKDOWN_ACTIVE = re.compile(r"(?<!\\)[\[\]<>!*_#|`]")


@pytest.mark.parametrize(("name", "text"), TEXTS, ids=IDS)
def test_markdown_escaping_leaves_nothing_active(name: str, text: str) -> None:
    escaped = md(text)
    assert not MARKDOWN_ACTIVE.search(escaped), escaped
    assert "\n" not in escaped and "\x1b" not in escaped
    span = code(text)
    fence = re.match("`+", span)
    assert fence is not None and fence.group() not in span[len(fence.group()) : -len(fence.group())]


@pytest.mark.parametrize(("name", "text"), TEXTS, ids=IDS)
def test_commands_in_the_details_quote_every_value(name: str, text: str) -> None:
    text = text.replace("\x00", "")  # no shell word can hold a NUL
    assert shlex.split(shell_quote(text)) == [text]
    assert shell_quote(text) == shlex.quote(text)
    pending = PendingApproval(step_id="b", approvers=[text], required=1, since=SINCE)
    cli, signal = approval_commands(text, pending)
    assert shlex.split(cli) == ["cadenza", "approve", text, "b", "--by", text]
    words = shlex.split(signal)
    assert words[:6] == ["temporal", "workflow", "signal", "--workflow-id", text, "--name"]
    assert words[6:8] == ["approve", "--input"]
    assert json.loads(words[8]) == {"step_id": "b", "by": text}
    retry = suspension_commands(text, "s")[0]
    assert shlex.split(retry) == ["cadenza", "retry-step", text, "s", "--by", "YOUR-NAME"]
    send, _update = event_commands(text, PendingEvent(step_id="e", name=text, since=SINCE))
    assert shlex.split(send) == ["cadenza", "send", text, text, "--data", "{}"]


@pytest.mark.parametrize(("name", "text"), TEXTS, ids=IDS)
def test_waiting_lines_escape_approvers_errors_and_names(name: str, text: str) -> None:
    state = hostile_result(text)
    state.suspended = {
        "s": SuspendedStep(step_id="s", since=SINCE, error=ErrorInfo(type=text, message=text))
    }
    state.pending_events = {"e": PendingEvent(step_id="e", name=text, since=SINCE)}
    for line in waiting_lines(state):
        # outside code spans nothing is active Markdown
        outside = re.sub(r"(`+)(?:(?!\1).)*\1", "", line.removeprefix("- "))
        outside = outside.replace("**", "")
        assert not MARKDOWN_ACTIVE.search(outside), line
        assert "\n" not in line


def test_the_details_say_who_wrote_the_definition_and_when() -> None:
    definition = AdvancedWorkflow.model_validate(
        {
            "workflow_id": "w",
            "created_by": "[ops](javascript:x)",
            "created_at": "2026-01-02",
            "steps": [{"step_id": "a", "action": "std.echo"}],
        }
    )
    assert authorship(definition) == [
        "",
        r"definition written by \[ops\]\(javascript\:x\) on 2026\-01\-02",
    ]
    unsigned = AdvancedWorkflow.model_validate(
        {"workflow_id": "w", "steps": [{"step_id": "a", "action": "std.echo"}]}
    )
    assert authorship(unsigned) == []
