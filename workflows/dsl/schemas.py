"""Checks of the JSON Schemas users write (`input_validation`) before anything runs them.

A schema is data from the definition, so it is held to what the step executor can run safely:
a valid schema of its draft; local references only (a schema may not make a worker fetch URLs or
read files); no reference that loops without consuming data (infinite recursion); patterns that
compile and have no nested quantifiers (`(a+)+`: exponential backtracking on a crafted input).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jsonschema

from workflows.dsl.diagnostics import DiagnosticCode

REF_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
# a group holding a quantifier, itself quantified: (a+)+, (x*)*, (\w+\s?)*, (a{1,})+ ...
_NESTED_QUANTIFIER = re.compile(
    r"\((?:[^()\\]|\\.)*(?:[+*]|\{\d*,\d*\})(?:[^()\\]|\\.)*\)(?:[+*]|\{\d*,\d*\})"
)
SAMPLES: tuple[Any, ...] = (None, {}, [], "", 0, {"a": {"b": [1]}}, [[{}]])


Problem = tuple[list[str | int], DiagnosticCode, str]


def schema_problems(schema: Any) -> list[Problem]:
    """(path inside the schema, code, message) for each problem; empty when the schema is fine."""
    if not isinstance(schema, dict):
        return [([], DiagnosticCode.INVALID_JSON_SCHEMA, "a JSON Schema is a mapping")]
    try:
        cls = jsonschema.validators.validator_for(schema)
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
                for pattern in value:
                    yield from _pattern([*here, pattern], pattern)
            if isinstance(value, dict | list):
                stack.append((value, here))


def _pattern(path: list[str | int], pattern: str) -> Iterator[Problem]:
    try:
        re.compile(pattern)
    except re.error as exc:
        yield (
            path,
            DiagnosticCode.INVALID_PATTERN,
            f"pattern {pattern[:60]!r} does not compile: {exc}",
        )
        return
    if _NESTED_QUANTIFIER.search(pattern):
        yield (
            path,
            DiagnosticCode.CATASTROPHIC_PATTERN,
            f"pattern {pattern[:60]!r} repeats a repeated group, which can take exponential "
            "time on a crafted input: rewrite it without nested quantifiers",
        )
