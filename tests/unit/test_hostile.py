"""The hostile corpus (tests/support/hostile.py): every case is refused with a diagnostic,
within a CPU and memory bound, and nothing crashes or hangs."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from tests.support.cost import cpu_units
from tests.support.hostile import Case, corpus
from workflows.dsl.expressions import ExpressionError, compile_expression
from workflows.dsl.loader import DocumentError, parse_document
from workflows.dsl.validate import input_diagnostics, validate_definition

CASES = corpus()
# CPU time in reference units (tests/support/cost.py); the costliest case takes about 11 (1M
# dependencies), a regression to quadratic work on it takes thousands.
CPU_UNITS = 50
PEAK_BYTES = 400 * 1024 * 1024

KNOWN_ACTIONS = {"std.echo", "std.log", "std.fail", "std.sleep", "std.http"}


def refusal(case: Case, value: Any) -> str:
    """What refused the case (a diagnostic code or an error message); fails if nothing did."""
    if case.kind == "document":
        try:
            data = parse_document(value, "hostile.yaml")
        except DocumentError as exc:
            return f"document: {exc}"
        report = validate_definition(data, KNOWN_ACTIONS)
        assert not report.ok, f"{case.name}: accepted"
        return report.errors[0].code
    if case.kind == "definition":
        report = validate_definition(value, KNOWN_ACTIONS)
        assert not report.ok, f"{case.name}: accepted"
        for diagnostic in report.errors:
            assert diagnostic.path and diagnostic.code and diagnostic.message
        return report.errors[0].code
    if case.kind == "input":
        problems = input_diagnostics(value)
        assert problems, f"{case.name}: accepted"
        return problems[0].code
    source, scope = value
    try:
        compile_expression(source).evaluate(scope)
    except ExpressionError as exc:
        return exc.reason
    raise AssertionError(f"{case.name}: evaluated")


def test_the_corpus_has_at_least_a_hundred_cases() -> None:
    assert len(CASES) >= 100
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_is_refused_in_bounded_cpu_and_memory(case: Case) -> None:
    # built outside the measured calls: what is bounded is the refusal, not making the input
    value = case.build()
    why, units = cpu_units(lambda: refusal(case, value))
    assert why
    assert units < CPU_UNITS, f"{case.name}: {units:.1f} reference units of CPU"
    # memory in a second run: tracemalloc slows every allocation, so it never shares the timing
    tracemalloc.start()
    try:
        refusal(case, value)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK_BYTES, f"{case.name}: peak {peak / 2**20:.0f} MiB"
