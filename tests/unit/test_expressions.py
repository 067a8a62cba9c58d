"""CEL expressions: compiled once, deterministic, errors that say what is wrong."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from workflows.dsl.expressions import ExpressionError, compile_expression, evaluate


def test_evaluates_over_scope_and_returns_json_values() -> None:
    scope = {"input": {"n": 2}, "vars": {"k": [1, 2]}, "now": datetime(2026, 1, 2, tzinfo=UTC)}
    assert evaluate("input.n * 3 + size(vars.k)", scope) == 8
    assert evaluate("{'a': vars.k.map(x, x * 2)}", scope) == {"a": [2, 4]}
    assert evaluate("now", scope) == "2026-01-02T00:00:00+00:00"
    assert evaluate("timestamp('2026-01-01T00:00:00Z') < now", scope) is True


def test_compiled_once_per_text() -> None:
    assert compile_expression("1 + 1") is compile_expression("1 + 1")


def test_names_exclude_comprehension_variables_and_collect_step_references() -> None:
    expr = compile_expression("vars.items.all(item, item > 0) && steps.charge.status == 'ok'")
    assert expr.names == {"vars", "steps"}
    assert expr.step_references == {"charge"}
    assert compile_expression("steps['ship-it'].output").step_references == {"ship-it"}


@pytest.mark.parametrize(
    ("source", "scope", "fragment"),
    [
        ("input.missing", {"input": {}}, "no such key 'missing'"),
        ("1 / 0", {}, "division by zero"),
        ("'a' + 1", {}, "'a' + 1"),
    ],
)
def test_evaluation_errors_are_expression_errors(source: str, scope: dict, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate(source, scope)
    assert fragment in str(info.value)


def test_syntax_error_names_the_column() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression("input.x +")
    assert "1:10" in info.value.reason and "Syntax error" in info.value.reason


def test_no_python_escape_hatches() -> None:
    for source in ("__import__('os')", "open('/etc/passwd')", "input.__class__"):
        with pytest.raises(ExpressionError):
            evaluate(source, {"input": {}})


def test_static_and_dynamic_uses_of_steps() -> None:
    assert not compile_expression("steps.a.output.x + steps['b'].output.y").steps_dynamic
    assert compile_expression("steps[input.which].output").steps_dynamic
    assert compile_expression("size(steps) > 2").steps_dynamic
    assert not compile_expression("input.steps").steps_dynamic
