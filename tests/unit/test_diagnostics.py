"""The diagnostic codes: one enum, documented in docs/diagnostics.md, used everywhere."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, get_args

from pydantic_core.core_schema import ErrorType

from workflows.dsl.diagnostics import DiagnosticCode
from workflows.dsl.explanations import EXPLANATIONS, render_markdown
from workflows.dsl.validate import input_diagnostics, validate_definition

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(ROOT / "workflows").rglob("*.py"), *(ROOT / "worker").rglob("*.py")])
VALUES = {code.value for code in DiagnosticCode}
# Names that carry a code into a Diagnostic without choosing one: the checker's helpers forward
# their `code` parameter; `kind` is pydantic's error type for a field the model refused.
FORWARDED = {"code", "kind"}


def _code_arguments() -> list[tuple[str, ast.expr]]:
    """(where, expression) for each place that hands a code to a Diagnostic."""
    found: list[tuple[str, ast.expr]] = []
    for path in SOURCES:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                is_checker = isinstance(func, ast.Attribute) and (
                    isinstance(func.value, ast.Name) and func.value.id in {"self", "report"}
                )
                wanted = name == "Diagnostic" or (
                    is_checker and name in {"error", "warn", "_unknown_ref"}
                )
                if not wanted:
                    continue
                code = [k.value for k in node.keywords if k.arg == "code"]
                if len(node.args) >= 2:
                    code.append(node.args[1])
                found += [(where, c) for c in code]
            elif path.name == "schemas.py" and isinstance(node, ast.Return | ast.Yield):
                found += [(where, problem.elts[1]) for problem in _problems(node.value)]
    return found


def _problems(value: ast.expr | None) -> list[ast.Tuple]:
    """The `(path, code, message)` tuples schemas.py returns or yields."""
    items = value.elts if isinstance(value, ast.List) else [value]
    return [i for i in items if isinstance(i, ast.Tuple) and len(i.elts) == 3]


def test_docs_match_the_enum() -> None:
    doc = ROOT / "docs" / "diagnostics.md"
    assert doc.read_text(encoding="utf-8") == render_markdown(), (
        "docs/diagnostics.md is out of date: run `.venv/bin/python -m worker.diagnostics_doc`"
    )


def test_every_code_is_explained() -> None:
    assert set(EXPLANATIONS) == set(DiagnosticCode)
    for code, (meaning, example, fix) in EXPLANATIONS.items():
        assert meaning and fix, code
        assert f": {code}: " in example, f"the example of {code} does not show the code"


def test_no_bare_string_codes() -> None:
    arguments = _code_arguments()
    assert len(arguments) > 45  # the walk finds the validator's calls
    bare = [where for where, expr in arguments if isinstance(expr, ast.Constant)]
    assert not bare, f"use a DiagnosticCode member, not a string, at {bare}"


def test_every_code_the_validator_can_emit_is_in_the_enum() -> None:
    for where, expr in _code_arguments():
        if isinstance(expr, ast.Name):
            assert expr.id in FORWARDED, f"{where}: code {expr.id!r} is not a DiagnosticCode"
            continue
        assert isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name), where
        assert expr.value.id == "DiagnosticCode", f"{where}: code is not a DiagnosticCode"
        assert hasattr(DiagnosticCode, expr.attr), f"{where}: no DiagnosticCode.{expr.attr}"


def test_every_member_is_emitted_somewhere() -> None:
    used = {
        node.attr
        for path in SOURCES
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "DiagnosticCode"
    }
    unused = sorted({code.name for code in DiagnosticCode} - used)
    assert not unused, f"codes nothing emits: {unused}: remove them"


def _definition(step: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"workflow_id": "w", "steps": [{"step_id": "a", **step}], **extra}


BROKEN: list[Any] = [
    [],
    {"workflow_id": "Bad!", "steps": []},
    _definition({"action": "std.echo", "retry_policy": {"max_attempts": 0}}),
    _definition({"action": "std.echo", "timeout_seconds": "soon"}),
    _definition({"step_type": "teleport"}),
    _definition({"action": "std.echo", "dependecies": ["a"]}),
    _definition({"action": "nope", "dependencies": ["a", "b"], "wait": {"seconds": 1}}),
    _definition({"step_type": "loop", "input_mapping": {"x": "inptu.y +"}}),
    _definition({"action": "std.echo", "input_validation": {"$ref": "http://x/s.json"}}),
    _definition(
        {"step_type": "approval", "approval": {"approvers": ["a"], "required_approvals": 2}}
    ),
]


def test_codes_emitted_for_broken_definitions_are_enum_members_or_pydantic_types() -> None:
    pydantic_types = set(get_args(ErrorType))
    emitted = {
        d.code
        for data in BROKEN
        for d in validate_definition(data, known_actions=["std.echo"]).diagnostics
    }
    emitted |= {d.code for d in input_diagnostics([1])}
    assert len(emitted) >= 10
    assert not emitted - VALUES - pydantic_types
