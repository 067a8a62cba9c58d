"""Validation: each malformed definition gets a diagnostic with the right path and code."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from activities.std import default_registry
from tests.support.cases import CASES, base, with_step
from tests.support.cases_v2 import LANGUAGE_CASES
from workflows.dsl.validate import validate_definition


@pytest.mark.parametrize(
    ("definition", "path", "code", "fragment"),
    [c[1:] for c in CASES + LANGUAGE_CASES],
    ids=[c[0] for c in CASES + LANGUAGE_CASES],
)
def test_malformed_definition_gets_a_precise_diagnostic(
    definition: Any, path: str, code: str, fragment: str
) -> None:
    report = validate_definition(copy.deepcopy(definition), default_registry().names())
    assert not report.ok
    found = [d for d in report.errors if d.path == path and d.code == code]
    assert found, f"expected {path}: {code}; got {[str(d) for d in report.diagnostics]}"
    assert fragment in found[0].message, str(found[0])


def test_there_are_at_least_thirty_malformed_cases() -> None:
    assert len(CASES) >= 30


def test_valid_definition_has_no_errors() -> None:
    report = validate_definition(base(), default_registry().names())
    assert report.ok and report.definition is not None
    assert report.diagnostics == []


def test_actions_are_not_checked_when_the_registry_is_unknown() -> None:
    assert validate_definition(with_step(0, action="custom.thing")).ok


def test_diagnostic_text_names_path_code_and_fix() -> None:
    report = validate_definition(with_step(1, dependencies=["chrage"]))
    assert str(report.errors[0]) == (
        "steps[1].dependencies[0]: unknown_dependency: "
        "unknown step 'chrage'; did you mean 'charge'?"
    )
    assert json.loads(json.dumps(report.errors[0].as_dict()))["code"] == "unknown_dependency"


def test_sla_targets_are_accepted_and_their_steps_checked() -> None:
    report = validate_definition(base(sla_targets={"max_duration_seconds": 10}))
    assert report.ok and report.diagnostics == []
    report = validate_definition(base(sla_targets={"step_max_seconds": {"nope": 1}}))
    assert [d.code for d in report.errors] == ["unknown_step"]


def test_reports_of_a_definition_started_again_are_remembered() -> None:
    from workflows.dsl.validate import CACHED_MAX_CHARS, validate_cached

    definition = {"workflow_id": "cached", "steps": [{"step_id": "a", "action": "std.echo"}]}
    first = validate_cached(definition, ["std.echo"])
    assert first.ok
    assert validate_cached(json.loads(json.dumps(definition)), ["std.echo"]) is first
    assert validate_cached(definition, ["std.log"]) is not first  # other actions: checked again
    assert not validate_cached(definition, ["std.log"]).ok
    changed = {**definition, "steps": [{"step_id": "b", "action": "std.echo"}]}
    assert validate_cached(changed, ["std.echo"]).definition.steps[0].step_id == "b"  # type: ignore[union-attr]
    big = {
        "workflow_id": "big",
        "description": "x" * CACHED_MAX_CHARS,
        "steps": definition["steps"],
    }
    assert validate_cached(big) is not validate_cached(big)  # too large to remember
