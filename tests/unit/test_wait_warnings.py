"""Warnings for definitions that wait for people or other systems without saying how long
(issue 19): the run's timeout, an approval's on_timeout without a timeout; `validate --strict`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.processes import cadenza
from workflows.dsl.diagnostics import DiagnosticCode
from workflows.dsl.validate import validate_definition


def definition(step: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"workflow_id": "w", **top, "steps": [{"step_id": "a", "action": "std.echo"}, step]}


DAY = 86_400
APPROVAL = {"step_id": "ok", "step_type": "approval"}
EVENT = {"step_id": "paid", "step_type": "event", "event": {"name": "paid"}}


def warnings(data: dict[str, Any]) -> list[tuple[str, str]]:
    report = validate_definition(data)
    assert report.ok, report.summary()
    return [(d.path, d.code) for d in report.diagnostics if d.severity == "warning"]


@pytest.mark.parametrize("step", [APPROVAL, EVENT], ids=["approval", "event"])
def test_a_waiting_step_without_a_run_timeout_is_warned_about(step: dict[str, Any]) -> None:
    assert warnings(definition(step)) == [("timeout", DiagnosticCode.RUN_TIMEOUT_DEFAULT)]
    report = validate_definition(definition(step))
    assert "steps[1] waits for a decision or an event" in str(report.diagnostics[0])
    assert warnings(definition(step, timeout=3600)) == []  # explicit, even at the default


def test_named_definitions_are_warned_about_too() -> None:
    data = definition(
        {"step_id": "sub", "step_type": "workflow", "workflow": {"name": "ask"}},
        timeout=7200,
        definitions={"ask": {"steps": [APPROVAL]}},
    )
    assert warnings(data) == [("definitions.ask.timeout", DiagnosticCode.RUN_TIMEOUT_DEFAULT)]


def test_no_warning_without_waiting_steps() -> None:
    assert warnings({"workflow_id": "w", "steps": [{"step_id": "a", "action": "std.echo"}]}) == []


def test_on_timeout_without_a_step_timeout_is_warned_about() -> None:
    step = {**APPROVAL, "approval": {"on_timeout": "escalate", "escalate_to": ["boss"]}}
    assert warnings(definition(step, timeout=DAY)) == [
        ("steps[1].approval.on_timeout", DiagnosticCode.ON_TIMEOUT_WITHOUT_TIMEOUT)
    ]
    assert warnings(definition({**step, "timeout": 3600}, timeout=DAY)) == []


def test_validate_prints_warnings_and_fails_on_them_only_with_strict(tmp_path: Path) -> None:
    file = tmp_path / "approval.yaml"
    file.write_text(yaml.safe_dump(definition(APPROVAL)))
    plain = cadenza("validate", str(file))
    assert plain.returncode == 0, plain.stderr
    assert "warning: run_timeout_default" in plain.stdout and f"{file}: valid" in plain.stdout
    strict = cadenza("validate", "--strict", str(file))
    assert strict.returncode == 2
    assert "warning: run_timeout_default" in strict.stdout
    assert "warnings fail with --strict" in strict.stderr
    file.write_text(yaml.safe_dump(definition(APPROVAL, timeout=DAY)))
    assert cadenza("validate", "--strict", str(file)).returncode == 0
