"""The JSON Schema validator every user schema runs with: patterns on RE2, uniqueness by hashing.

jsonschema runs `pattern`, `patternProperties` (and the `additionalProperties` that depends on
them) with Python's backtracking `re`, where `^\\d*\\d*\\d*x$`-shaped patterns take polynomial or
exponential time in the input's length, and `uniqueItems` compares unhashable items pairwise
(quadratic: 45 s over 5,000 objects). Here those keywords run on RE2 (`google-re2`: matching in
time linear in the input, no backreferences or lookarounds) and uniqueness is one pass over a
canonical hashable form of each item. Schemas go through `workflows/dsl/schemas.py` first, which
refuses the patterns RE2 cannot compile, so a pattern that reaches a validator here compiles.

Pure (no I/O): imported by the step executor and by workflow code (event schemas).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache, lru_cache
from typing import Any

import jsonschema
import re2
from jsonschema import ValidationError

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is a diagnostic, not a line on the worker's stderr
PatternError = re2.error
"""What `compile_pattern` raises for a pattern RE2 cannot run."""


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> Any:
    """The RE2 program of a pattern (cached: schemas repeat their patterns on every item)."""
    return re2.compile(pattern, _OPTIONS)


def search(pattern: str, text: str) -> bool:
    """Whether the pattern matches anywhere in the text (JSON Schema: patterns are unanchored)."""
    try:
        return compile_pattern(pattern).search(text) is not None
    except UnicodeEncodeError:  # a lone surrogate (legal in a JSON string, not in UTF-8)
        safe = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
        return compile_pattern(pattern).search(safe) is not None


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not search(pattern, instance):
        yield ValidationError(f"{instance[:100]!r} does not match {pattern[:100]!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional(instance: Mapping[str, Any], schema: Mapping[str, Any]) -> set[str]:
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    return {
        key
        for key in instance
        if key not in properties and not any(search(p, key) for p in patterns)
    }


def _additional_properties(
    validator: Any, allowed: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    """jsonschema's `additionalProperties`, with the patterns matched by RE2."""
    if not validator.is_type(instance, "object"):
        return
    extras = _additional(instance, schema)
    if validator.is_type(allowed, "object"):
        for extra in sorted(extras):
            yield from validator.descend(instance[extra], allowed, path=extra)
    elif not allowed and extras:
        shown = ", ".join(repr(e[:100]) for e in sorted(extras)[:10])
        if "patternProperties" in schema:
            yield ValidationError(f"{shown}: not matched by any of the patternProperties")
        else:
            yield ValidationError(f"Additional properties are not allowed ({shown} unexpected)")


def canonical(value: Any) -> Any:
    """A hashable form equal for values JSON Schema calls equal (1 == 1.0, true != 1, key order
    ignored), so uniqueness is a set lookup per item instead of a comparison per pair."""
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, Mapping):
        return ("object", frozenset((k, canonical(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("array", tuple(canonical(v) for v in value))
    return ("other", repr(value))


def _unique_items(
    validator: Any, unique: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not unique or not validator.is_type(instance, "array"):
        return
    seen: dict[Any, int] = {}
    for index, item in enumerate(instance):
        key = canonical(item)
        if key in seen:
            yield ValidationError(
                f"the array has non-unique elements (item {index} repeats item {seen[key]})"
            )
            return
        seen[key] = index


_REPLACED = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
    "uniqueItems": _unique_items,
}


@cache
def _bounded(base: Any) -> Any:
    keywords = {k: fn for k, fn in _REPLACED.items() if k in base.VALIDATORS}
    return jsonschema.validators.extend(base, keywords)


def validator_class(schema: Any) -> Any:
    """The validator class for a schema: its draft's (by `$schema`), with the keywords above
    replaced. `check_schema` and the draft's other keywords are the draft's own."""
    return _bounded(jsonschema.validators.validator_for(schema))


def schema_validator(schema: Any) -> Any:
    """A validator of `schema` (see `validator_class`)."""
    return validator_class(schema)(schema)
