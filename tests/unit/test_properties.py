"""Property-based tests (hypothesis) of the validator, the document loader and the expression
layer: whatever they are given, they answer with a result or their own error type, in bounded
time; nothing else escapes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st

from workflows.dsl.expressions import ExpressionError, compile_expression
from workflows.dsl.loader import DocumentError, parse_document
from workflows.dsl.validate import validate_definition

FAST = settings(
    max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow], database=None
)

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
FIELDS = [
    "workflow_id",
    "steps",
    "step_id",
    "step_type",
    "action",
    "dependencies",
    "parallel_steps",
    "conditions",
    "input_mapping",
    "output_mapping",
    "retry_policy",
    "timeout",
    "approval",
    "wait",
    "loop_condition",
    "input_validation",
    "sla_targets",
    "max_parallel_steps",
]
STEP_TYPES = ["action", "parallel", "loop", "conditional", "approval", "wait", "agent", "x"]


@st.composite
def steps(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    step: dict[str, Any] = {"step_id": draw(st.sampled_from(["a", "b", "c", "d", "A B", ""]))}
    for name in draw(st.lists(st.sampled_from(FIELDS[2:]), max_size=4)):
        if name == "parallel_steps" and depth < 3:
            step[name] = draw(st.lists(steps(depth + 1), max_size=3))
        elif name == "step_type":
            step[name] = draw(st.sampled_from(STEP_TYPES))
        elif name == "dependencies":
            step[name] = draw(st.lists(st.sampled_from(["a", "b", "c", "zz"]), max_size=3))
        else:
            step[name] = draw(json_values)
    return step


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "workflow_id": draw(st.sampled_from(["w", "W", "", "ok-1", "x" * 200])),
        "steps": draw(st.lists(steps(), max_size=6)),
    }
    for name in draw(st.lists(st.sampled_from(FIELDS[14:]), max_size=3)):
        doc[name] = draw(json_values)
    return doc


def _check_report(data: Any) -> None:
    report = validate_definition(data, {"std.echo", "std.log"})
    if not report.ok:
        assert report.errors
    for diagnostic in report.diagnostics:
        assert diagnostic.path and diagnostic.code and diagnostic.message
        assert diagnostic.severity in ("error", "warning")


@FAST
@given(definitions())
def test_validator_answers_every_definition_shaped_value(data: dict[str, Any]) -> None:
    _check_report(data)


@FAST
@given(json_values)
def test_validator_answers_any_json_value(data: Any) -> None:
    _check_report(data)


@FAST
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_loader_parses_or_refuses_any_bytes(raw: bytes) -> None:
    try:
        data = parse_document(raw, "fuzz.yaml")
    except DocumentError as exc:
        assert str(exc).startswith("fuzz.yaml: ")
        return
    assert isinstance(data, dict)
    _check_report(data)


@FAST
@given(json_values)
def test_loader_reads_back_what_json_wrote(value: Any) -> None:
    document = {"workflow_id": "w", "v": value}
    text = json.dumps(document, allow_nan=False) if _finite(value) else None
    if text is None:
        return
    assert parse_document(text.encode(), "doc.json") == document


TOKENS = [
    "input",
    "vars",
    "steps",
    "result",
    "now",
    ".a",
    ".b",
    "[0]",
    "['k']",
    " + ",
    " - ",
    " * ",
    " / ",
    " % ",
    " == ",
    " && ",
    " || ",
    " ? ",
    " : ",
    "!",
    "(",
    ")",
    "1",
    "0",
    "-1",
    "2.5",
    "'s'",
    "true",
    "null",
    "[1, 2]",
    "{'k': 1}",
    "size(",
    "has(",
    "int(",
    "string(",
    "timestamp(",
    "duration(",
    ".map(x, ",
    ".filter(x, ",
    ".exists(x, ",
    ".all(x, ",
    "x",
    ".size()",
    ".contains(",
    ".matches(",
    ".startsWith(",
]


@FAST
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=14), json_values, json_values)
def test_expressions_compile_and_evaluate_or_raise_expression_errors(
    tokens: list[str], input_value: Any, vars_value: Any
) -> None:
    source = "".join(tokens)
    scope = {
        "input": input_value,
        "vars": vars_value if isinstance(vars_value, dict) else {},
        "steps": {"a": {"status": "completed", "output": input_value}},
        "result": vars_value,
        "now": "2026-01-01T00:00:00+00:00",
    }
    try:
        value = compile_expression(source).evaluate(scope)
    except ExpressionError as exc:
        assert exc.reason
        return
    json.dumps(value, default=str)  # whatever comes back is JSON-compatible


@FAST
@given(st.text(max_size=200))
def test_any_text_compiles_or_raises_an_expression_error(source: str) -> None:
    try:
        compile_expression(source)
    except ExpressionError as exc:
        assert exc.reason


def _finite(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True
