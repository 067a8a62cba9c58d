"""Checks of the JSON Schemas users write (`input_validation`) before anything runs them.

A schema is data from the definition, so it is held to what the step executor can run safely:
a valid schema of its draft; local references only (a schema may not make a worker fetch URLs or
read files); no reference that loops without consuming data (infinite recursion); patterns that
compile and have no nested quantifiers (`(a+)+`: exponential backtracking on a crafted input).

Patterns run on RE2 (`activities/schema_engine.py`: linear in the input), so a pattern must be RE2
syntax: backreferences and lookarounds, which only a backtracking engine can run, are refused
here, with `unevaluatedProperties` beside `patternProperties` (jsonschema matches those with
Python's backtracking `re`, outside the keywords the engine replaces). The nested-quantifier
check predates RE2 and stays as a lint (RE2 runs `(a+)+` in linear time).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jsonschema

from activities.schema_engine import PatternError, compile_pattern, validator_class
from workflows.dsl.diagnostics import DiagnosticCode

REF_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
# a group holding a quantifier, itself quantified: (a+)+, (x*)*, (\w+\s?)*, (a{1,})+ ...
_NESTED_QUANTIFIER = re.compile(
    r"\((?:[^()\\]|\\.)*(?:[+*]|\{\d*,\d*\})(?:[^()\\]|\\.)*\)(?:[+*]|\{\d*,\d*\})"
)
# what RE2 says of the constructs only a backtracking engine runs (backreferences, lookarounds)
_BACKTRACKING = re.compile(
    r"invalid escape sequence: \\[1-9]"
    r"|invalid (?:perl operator|named capture group): \(\?(?:<?[=!]|P)"
)
SAMPLES: tuple[Any, ...] = (None, {}, [], "", 0, {"a": {"b": [1]}}, [[{}]])


Problem = tuple[list[str | int], DiagnosticCode, str]


def schema_problems(schema: Any) -> list[Problem]:
    """(path inside the schema, code, message) for each problem; empty when the schema is fine."""
    if not isinstance(schema, dict):
        return [([], DiagnosticCode.INVALID_JSON_SCHEMA, "a JSON Schema is a mapping")]
    try:
        cls = validator_class(schema)
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return [
            (
                list(exc.path),
                DiagnosticCode.INVALID_JSON_SCHEMA,
                f"not a valid JSON Schema: {exc.message}",
            )
        ]
    except RecursionError:
        return [([], DiagnosticCode.TOO_DEEP, "the schema nests too deeply")]
    problems = list(_walk(schema))
    if problems:
        return problems
    try:
        validator = cls(schema)
        for sample in SAMPLES:
            for _ in validator.iter_errors(sample):
                pass
    except RecursionError:
        return [
            (
                [],
                DiagnosticCode.RECURSIVE_SCHEMA,
                "the schema refers to itself without consuming any data (infinite recursion)",
            )
        ]
    except Exception as exc:
        return [
            ([], DiagnosticCode.UNRESOLVABLE_REF, f"the schema cannot be used: {str(exc)[:200]}")
        ]
    return []


def _walk(schema: Any) -> Iterator[Problem]:
    stack: list[tuple[Any, list[str | int]]] = [(schema, [])]
    unevaluated: list[list[str | int]] = []
    patterned = False
    while stack:
        node, path = stack.pop()
        if isinstance(node, list):
            stack.extend((item, [*path, i]) for i, item in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            here = [*path, key]
            if key in REF_KEYWORDS and isinstance(value, str) and not value.startswith("#"):
                yield (
                    here,
                    DiagnosticCode.REMOTE_REF,
                    f"reference {value[:80]!r}: only local references (#/...) are allowed; "
                    "a schema may not load other documents",
                )
            elif key == "pattern" and isinstance(value, str):
                yield from _pattern(here, value)
            elif key == "patternProperties" and isinstance(value, dict):
                patterned = True
                for pattern in value:
                    yield from _pattern([*here, pattern], pattern)
            elif key == "unevaluatedProperties":
                unevaluated.append(here)
            if isinstance(value, dict | list):
                stack.append((value, here))
    if unevaluated and patterned:
        # jsonschema finds the properties patternProperties evaluated (in this schema and the
        # ones it applies: allOf, $ref, if/then...) with Python's `re`, not the keywords replaced
        yield (
            min(unevaluated, key=len),
            DiagnosticCode.CATASTROPHIC_PATTERN,
            "unevaluatedProperties in a schema with patternProperties is not supported: "
            "jsonschema would match those patterns with Python's backtracking engine, which a "
            "crafted input can keep busy for minutes; use additionalProperties",
        )


def _pattern(path: list[str | int], pattern: str) -> Iterator[Problem]:
    try:
        compile_pattern(pattern)
    except PatternError as exc:
        said = exc.args[0] if exc.args else exc
        reason = said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
        backtracking = _BACKTRACKING.search(reason) is not None
        code = DiagnosticCode.INVALID_PATTERN
        if backtracking:
            code = DiagnosticCode.CATASTROPHIC_PATTERN
        yield (
            path,
            code,
            f"pattern {pattern[:60]!r} is not RE2 syntax ({reason[:120]}): patterns run on RE2, "
            "which matches in time linear in the input"
            + (
                "; backreferences and lookarounds need a backtracking engine, which a crafted "
                "input can keep busy for hours: rewrite the pattern without them"
                if backtracking
                else ""
            ),
        )
        return
    if _NESTED_QUANTIFIER.search(pattern):
        yield (
            path,
            DiagnosticCode.CATASTROPHIC_PATTERN,
            f"pattern {pattern[:60]!r} repeats a repeated group, which can take exponential "
            "time on a crafted input: rewrite it without nested quantifiers",
        )
