"""User JSON Schemas run in bounded CPU (issue 18, item 2): `pattern` and `patternProperties` on
RE2, `uniqueItems` by hashing, and the patterns RE2 cannot run refused at validation."""

from __future__ import annotations

from typing import Any

import pytest

from activities.contracts import StepActivityInput
from activities.registry import ActionError, ActionSpec
from activities.schema_engine import canonical, schema_validator
from activities.steps import _validated_params
from tests.support.cost import cpu_units
from tests.support.hostile import schema_step
from workflows.dsl.models import WorkflowStep
from workflows.dsl.schemas import schema_problems
from workflows.dsl.validate import validate_definition
from workflows.engine.events import _schema_refusal

# Python's `re` took 205 s on the first with 300 characters; RE2 takes well under one unit
CATASTROPHIC = (r"^\d*\d*\d*\d*\d*x$", r"^(a|a)*$", r"^(\d|\d\d)*$")
HOSTILE_TEXT = ("1" * 300, "a" * 300 + "b", "1" * 300 + "x")
CPU_UNITS = 5
UNIQUE_UNITS = 25
"""uniqueItems over 5,000 nested objects canonicalises each once (about 5 units here); the
pairwise comparison it replaces took 45 s, well over 1,000 units."""


def _errors(schema: dict[str, Any], instance: Any) -> list[str]:
    return [e.message for e in schema_validator(schema).iter_errors(instance)]


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_backtracking_shapes_are_accepted_and_run_in_linear_time(pattern: str) -> None:
    schema = {
        "type": "object",
        "properties": {"s": {"type": "string", "pattern": pattern}},
        "patternProperties": {pattern: {"type": "string"}},
        "additionalProperties": False,
    }
    assert schema_problems(schema) == []
    for text in HOSTILE_TEXT:
        _, units = cpu_units(lambda t=text: _errors(schema, {"s": t, t: t}))  # type: ignore[misc]
        assert units < CPU_UNITS, f"{pattern!r} on {text[:5]}...: {units:.1f} units"


def test_patterns_keep_json_schema_semantics() -> None:
    schema = {"pattern": "b+", "patternProperties": {"^x": {"type": "integer"}}}
    assert _errors(schema, "abbbc") == []  # unanchored, like re.search
    assert _errors(schema, "ac")
    assert _errors(schema, {"x1": 1, "y": "anything"}) == []
    assert _errors(schema, {"x1": "no"})
    closed = {
        "properties": {"a": {}},
        "patternProperties": {"^x": {}},
        "additionalProperties": False,
    }
    assert _errors(closed, {"a": 1, "x2": 2}) == []
    assert _errors(closed, {"a": 1, "zz": 2})
    assert _errors({"pattern": "^.$"}, "\ud800") == []  # a lone surrogate does not crash RE2


@pytest.mark.parametrize(
    ("pattern", "code"),
    [
        (r"^(a+)\1$", "catastrophic_pattern"),
        (r"^(?=a)a$", "catastrophic_pattern"),
        (r"(?<!x)y", "catastrophic_pattern"),
        (r"(?P<n>a)(?P=n)", "catastrophic_pattern"),
        (r"\Z", "invalid_pattern"),
    ],
)
def test_patterns_re2_cannot_run_are_refused_with_a_located_diagnostic(
    pattern: str, code: str
) -> None:
    doc = schema_step({"type": "object", "properties": {"id": {"pattern": pattern}}})
    report = validate_definition(doc, {"std.echo"})
    assert not report.ok
    found = [d for d in report.errors if d.code == code]
    assert found, report.errors
    assert "input_validation" in str(found[0].path) and "pattern" in str(found[0].path)
    assert "RE2" in found[0].message


def test_pattern_properties_re2_cannot_run_are_refused() -> None:
    problems = schema_problems({"patternProperties": {r"(a)\1": {}}})
    assert [(p[0], p[1]) for p in problems] == [
        (["patternProperties", r"(a)\1"], "catastrophic_pattern")
    ]


def test_unevaluated_properties_beside_pattern_properties_is_refused() -> None:
    for schema in (
        {"patternProperties": {"^a": {}}, "unevaluatedProperties": False},
        {"allOf": [{"patternProperties": {"^a": {}}}], "unevaluatedProperties": False},
    ):
        problems = schema_problems(schema)
        assert [(p[0], p[1]) for p in problems] == [
            (["unevaluatedProperties"], "catastrophic_pattern")
        ]
    assert schema_problems({"properties": {"a": {}}, "unevaluatedProperties": False}) == []


def test_unique_items_over_5000_objects_is_linear() -> None:
    schema = {"type": "array", "uniqueItems": True}
    items = [{"id": i, "tags": [str(i), {"n": i}]} for i in range(5_000)]
    errors, units = cpu_units(lambda: _errors(schema, items))
    assert errors == []
    assert units < UNIQUE_UNITS, f"{units:.1f} units"
    errors, units = cpu_units(lambda: _errors(schema, [*items, {"tags": ["7", {"n": 7}], "id": 7}]))
    assert errors == ["the array has non-unique elements (item 5000 repeats item 7)"]
    assert units < UNIQUE_UNITS, f"{units:.1f} units"


def test_uniqueness_follows_json_schema_equality() -> None:
    assert canonical(1) == canonical(1.0)
    assert canonical(True) != canonical(1) and canonical(False) != canonical(0)
    assert canonical({"a": 1, "b": [1]}) == canonical({"b": [1.0], "a": 1})
    assert canonical([1, 2]) != canonical([2, 1])
    assert canonical(None) != canonical(False)
    assert _errors({"uniqueItems": True}, [1, True, "1", [1], {"1": 1}]) == []
    assert _errors({"uniqueItems": True}, [[1, {"a": 0}], [1.0, {"a": 0.0}]])


def test_the_step_executor_and_event_steps_use_the_bounded_validator() -> None:
    pattern = CATASTROPHIC[0]
    spec = ActionSpec(name="t.x", fn=lambda params, ctx: None, input_model=None, description="")
    request = StepActivityInput(
        workflow_id="w",
        step_id="s",
        params={"s": "1" * 300},
        input_schema={"properties": {"s": {"pattern": pattern}}},
    )

    def executor() -> None:
        with pytest.raises(ActionError, match="does not match"):
            _validated_params(spec, request)

    _, units = cpu_units(executor)
    assert units < CPU_UNITS
    event = WorkflowStep.model_validate(
        {
            "step_id": "e",
            "step_type": "event",
            "event": {"name": "n", "schema": {"pattern": pattern}},
        }
    )
    refusal, units = cpu_units(lambda: _schema_refusal(event, "1" * 300))
    assert refusal and "does not match" in refusal
    assert units < CPU_UNITS
