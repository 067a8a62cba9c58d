"""The cost of CEL expressions (issue 18, item 1): priced from a real parse, refused at
validation over the budget, values checked as they enter, the budget calibrated in CPU units."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cel
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.support.cost import cpu_units, reference_cpu_seconds
from workflows.dsl.cel_cost import (
    BUDGET,
    DESIGN_VALUE,
    MAX_VALUE_BYTES,
    Estimate,
    measure,
    merge,
    within,
)
from workflows.dsl.cel_parse import ParseError, parse, tokenize
from workflows.dsl.diagnostics import DiagnosticCode
from workflows.dsl.expressions import Expression, ExpressionError, compile_expression
from workflows.dsl.validate import validate_definition

FOUR_DEEP = "input.a.all(w, input.a.all(x, input.a.all(y, input.a.all(z, true))))"
LITERAL_500 = "[" + ",".join(str(i) for i in range(500)) + "]"


def refused(source: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        Expression(source)  # not the cache: each case compiles
    return info.value


# -- each finding of issue 18, item 1, refused before it runs


@pytest.mark.parametrize(
    "source",
    [
        "input.a.map(x, input.a)",  # 800 ints: 36 s
        f"{LITERAL_500}.map(x, {LITERAL_500}.map(y, x + y))",  # literals: 20 s
        "input.a.map(x, input.s + input.s)",  # a string map: 91 s, 1.5 GiB
        "input.a.all(x, input.a.all(y, input.a.map(z, z)))",  # at the old limit: 3 s
    ],
)
def test_costly_expressions_are_refused_at_compile(source: str) -> None:
    error = refused(source)
    assert error.code == DiagnosticCode.EXPRESSION_TOO_COSTLY
    assert "budget" in error.reason and "ms" in error.reason


@pytest.mark.parametrize(
    "trick",
    [
        "r'\\\\' + string(",  # a raw string ending in a backslash
        "'''it's''' + string(",  # a quote inside a triple-quoted string
        "// don't\n string(",  # a quote inside a comment
        'b"\\"" + string(',  # an escaped quote in bytes
    ],
)
def test_string_and_comment_tricks_do_not_hide_nesting(trick: str) -> None:
    error = refused(trick + FOUR_DEEP + ")")
    assert error.code == DiagnosticCode.EXPRESSION_TOO_COSTLY
    assert "inside another" in error.reason


def test_unknown_functions_and_names_are_refused_at_validation_with_what_exists() -> None:
    definition = {
        "workflow_id": "w",
        "steps": [
            {
                "step_id": "a",
                "action": "std.echo",
                "input_mapping": {"s": "input.s.lowerAscii()", "t": "inptu.t", "u": "exec('1')"},
            }
        ],
    }
    report = validate_definition(definition, {"std.echo"})
    by_path = {d.path: d for d in report.errors}
    lower = by_path["steps[0].input_mapping.s"]
    assert lower.code == DiagnosticCode.UNKNOWN_FUNCTION
    assert "'lowerAscii'" in lower.message and "startsWith" in lower.message
    assert by_path["steps[0].input_mapping.u"].code == DiagnosticCode.UNKNOWN_FUNCTION
    name = by_path["steps[0].input_mapping.t"]
    assert name.code == DiagnosticCode.UNKNOWN_NAME and "did you mean 'input'" in name.message
    assert "did you mean 'startsWith'" in refused("'a'.startWith('a')").reason


def test_a_costly_expression_is_a_located_diagnostic() -> None:
    definition = {
        "workflow_id": "w",
        "steps": [
            {"step_id": "a", "action": "std.echo", "input_mapping": {"p": "input.a.map(x, input)"}}
        ],
    }
    (diagnostic,) = validate_definition(definition, {"std.echo"}).errors
    assert diagnostic.path == "steps[0].input_mapping.p"
    assert diagnostic.code == DiagnosticCode.EXPRESSION_TOO_COSTLY
    assert "action" in diagnostic.message  # the fix


# -- what stays accepted


@pytest.mark.parametrize(
    "source",
    [
        "input.a.map(x, x * 2)",
        "input.a.map(x, x.price * vars.scale)",
        "input.a.map(x, x + 1)",
        "input.a.map(x, x + int(input.b))",
        "vars.rows.filter(r, r > 3)",
        "input.a.exists(x, x == input.b)",
        "[1, 2, 3].map(x, input.a.exists(y, y == x))",
        "size(input.s) > 3 && input.s.startsWith('a') && input.s.matches('^a+$')",
        "{'a': input.a, 'b': [input.b, vars.c]}",
        "steps.a.output.x + steps['b'].output.y",
        "has(input.a.b) ? input.a.b : 'none'",
        "timestamp(input.t) < now && duration('1s') > duration('0s')",
    ],
)
def test_ordinary_expressions_are_accepted(source: str) -> None:
    assert Expression(source).cost < BUDGET


# -- at run time: values entering, the cost on the actual sizes


def test_a_value_over_the_size_limit_fails_the_evaluation() -> None:
    blob = "x" * (MAX_VALUE_BYTES + 10)
    with pytest.raises(ExpressionError) as info:
        compile_expression("size(input.blob)").evaluate({"input": {"blob": blob}})
    assert f"{MAX_VALUE_BYTES:,}" in info.value.reason
    assert info.value.code == DiagnosticCode.EXPRESSION_TOO_COSTLY


def test_only_what_an_expression_reads_enters() -> None:
    scope = {"input": {"n": 2, "blob": "x" * (MAX_VALUE_BYTES + 10)}}
    assert compile_expression("input.n + 1").evaluate(scope) == 3
    assert compile_expression("has(input.a.b)").evaluate({"input": {"a": {"c": 1}}}) is False
    assert compile_expression("has(input.a.c) && !has(input.z)").evaluate(
        {"input": {"a": {"c": 1}}}
    )


def test_values_nested_too_deep_do_not_enter() -> None:
    value: Any = 1
    for _ in range(200):
        value = {"a": value}
    with pytest.raises(ExpressionError, match="levels deep"):
        compile_expression("input.v").evaluate({"input": {"v": value}})


@pytest.mark.parametrize(
    ("source", "scope"),
    [
        ("input.a.map(x, x * 2)", {"input": {"a": list(range(20_000))}}),
        ("input.a.map(x, x + 'y')", {"input": {"a": ["x" * 500] * 2_000}}),
        ("input.a.map(x, x)", {"input": {"a": [{f"k{i}": i for i in range(10)}] * 1_000}}),
    ],
)
def test_values_too_large_for_the_expression_are_refused_before_it_runs(
    source: str, scope: dict[str, Any]
) -> None:
    expression = compile_expression(source)

    def attempt() -> str:
        with pytest.raises(ExpressionError) as info:
            expression.evaluate(scope)
        return info.value.reason

    reason, units = cpu_units(attempt)
    assert "budget" in reason
    # refusing reads every entering value once: 10,000 map entries took 0.66-1.0 units here
    # (between processes); running the evaluation it refuses would take hundreds
    assert units < 2, f"{units:.1f} reference units to refuse"


# -- the calibration: the costliest accepted evaluation stays well under Temporal's 2 s

WORST: list[tuple[str, Callable[[int], dict[str, Any]]]] = [
    ("input.a.map(x, x * 2)", lambda n: {"input": {"a": list(range(n))}}),
    ("input.a.filter(x, x > 0)", lambda n: {"input": {"a": list(range(n))}}),
    ("input.a.map(x, x)", lambda n: {"input": {"a": [{f"k{i}": i for i in range(10)}] * n}}),
    ("input.a.map(x, x + 'y')", lambda n: {"input": {"a": ["x" * 1000] * n}}),
    (
        "input.a.filter(x, x.k0 >= 0)",
        lambda n: {"input": {"a": [{f"k{i}": i for i in range(10)}] * n}},
    ),
    ("input.a.all(x, x >= 0)", lambda n: {"input": {"a": list(range(n))}}),
    ("input.s.contains('zz')", lambda n: {"input": {"s": "x" * n}}),
    ("[1,2,3,4,5,6,7,8].all(y, input.a.all(x, x != y))", lambda n: {"input": {"a": [0] * n}}),
]


def _largest_accepted(expression: Expression, make: Callable[[int], dict[str, Any]]) -> int:
    low, high = 1, 1_000_000
    while low < high:
        mid = (low + high + 1) // 2
        try:
            expression.check(make(mid))
            low = mid
        except ExpressionError:
            high = mid - 1
    return low


@pytest.mark.parametrize(("source", "make"), WORST, ids=[w[0] for w in WORST])
def test_the_costliest_accepted_evaluation_takes_under_a_fifth_of_a_second(
    source: str, make: Callable[[int], dict[str, Any]]
) -> None:
    expression = compile_expression(source)
    n = _largest_accepted(expression, make)
    scope = make(n)
    _, units = cpu_units(lambda: expression.evaluate(scope))
    seconds = units * reference_cpu_seconds()
    # 0.2 s on this machine is about 5 units; the largest measured is about 2 (README of the
    # budget: workflows/dsl/cel_cost.py)
    assert units < 5, f"{source} on n={n:,}: {units:.1f} units ({seconds:.3f} s)"
    with pytest.raises(ExpressionError):
        expression.evaluate(make(n * 2 + 10))


# -- the parser reads every kind of literal as the binding does

_texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(_texts, st.sampled_from(["'", '"', "'''", '"""']), st.booleans())
def test_string_literals_parse_to_what_the_binding_evaluates(
    text: str, quote: str, raw: bool
) -> None:
    if raw:
        if quote[0] in text or "\\" in text or (len(quote) == 1 and "\n" in text):
            return
        source = f"r{quote}{text}{quote}"
    else:
        body = "".join(
            "\\" + c if c in "\\'\"" else "\\n" if c == "\n" else "\\r" if c == "\r" else c
            for c in text
        )
        source = f"{quote}{body}{quote}"
    try:
        expected = cel.evaluate(source)
    except Exception:  # the binding refuses some control characters: nothing to compare
        return
    assert parse(source).value == expected


def test_comments_and_raw_strings_are_tokens_not_code() -> None:
    tokens = [t.text for t in tokenize("a // (((\n + r'\\' + '''x)''' // ]]]")]
    assert tokens == ["a", "+", "r'\\'", "+", "'''x)'''", ""]
    with pytest.raises(ParseError, match="levels deep"):
        parse("(" * 40 + "1" + ")" * 40)


TOKENS = [
    "input.a", "vars.b", "x", "y", "1", "'s'", "r'\\\\'", "'''t'''", "b'z'", " + ", " * ",
    " == ", " && ", " ? ", " : ", "(", ")", "[", "]", ", ", ".map(x, ", ".filter(y, ",
    ".exists(x, ", ".all(y, ", "size(", "string(", "has(", " // c\n", "!", "-",
]  # fmt: skip


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.lists(st.sampled_from(TOKENS), min_size=1, max_size=16),
    st.lists(st.integers(0, 50) | st.text(max_size=20), max_size=40),
)
def test_whatever_compiles_reads_the_names_the_binding_reads_and_stays_in_budget(
    tokens: list[str], items: list[Any]
) -> None:
    source = "".join(tokens)
    try:
        expression = Expression(source)
    except ExpressionError as exc:
        assert exc.reason
        return
    bound = {t.split("(")[1].split(",")[0] for t in tokens if t.startswith(".") and "," in t}
    assert set(cel.compile(source).variables()) - bound <= set(expression.names) | bound
    scope = {"input": {"a": items}, "vars": {"b": items}}

    def run() -> None:
        try:
            expression.evaluate(scope)
        except ExpressionError:
            pass

    _, units = cpu_units(run)
    assert units < 5


# -- the fast path: values no larger than the design sizes are not priced again


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from("abxy"), inner),
    max_leaves=12,
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.lists(st.sampled_from(TOKENS), min_size=1, max_size=12),
    st.dictionaries(st.sampled_from("abxy"), _json, max_size=4),
    st.dictionaries(st.sampled_from("abxy"), _json, max_size=4),
)
def test_pricing_grows_with_the_sizes_it_is_given(
    tokens: list[str], small: dict[str, Any], other: dict[str, Any]
) -> None:
    """What lets `Expression.check` skip pricing the tree on values within the design sizes:
    pricing concrete values costs no more than pricing their sizes, and pricing sizes no
    more than pricing larger ones (the design sizes are the largest validation assumes)."""
    source = "".join(tokens)
    try:
        Expression(source)
    except ExpressionError:
        return
    tree = parse(source)
    memo: dict[int, Any] = {}
    size = measure(small, memo)[0]
    larger = merge(size, measure(other, memo)[0])
    assert larger is not None and within(size, larger)
    concrete = Estimate({}, {"input": small, "vars": small}).run(tree)
    sized = Estimate({"input": size, "vars": size}).run(tree)
    bigger = Estimate({"input": larger, "vars": larger}).run(tree)
    pairs = [(concrete, sized), (sized, bigger)]
    if within(larger, DESIGN_VALUE):  # what check() asks before it skips the pricing
        pairs.append((bigger, Estimate({}).run(tree)))
    for lower, upper in pairs:
        assert lower[0] <= upper[0] and within(lower[1], upper[1]), (source, small, other)


def test_the_fast_path_still_refuses_values_over_the_design_sizes() -> None:
    expression = compile_expression("input.a.map(x, x * 2)")
    assert expression.evaluate({"input": {"a": [1, 2]}}) == [2, 4]  # within: not priced
    with pytest.raises(ExpressionError, match="budget"):
        expression.evaluate({"input": {"a": list(range(50_000))}})  # priced, refused
