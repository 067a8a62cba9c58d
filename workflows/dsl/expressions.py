"""CEL adapter: compile each expression once, evaluate it deterministically with limits.

CEL (Common Expression Language) is side-effect free and not Turing complete, so user
expressions can run inside the workflow sandbox. The binding (`cel`, a native extension) must be
passed through the sandbox; compiled programs are cached per expression text.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

import cel

from cadenza.errors import EXIT_USAGE, CadenzaError

MAX_EXPRESSION_LENGTH = 4096
MAX_COMPREHENSION_DEPTH = 3
"""Comprehension macros (all, exists, exists_one, map, filter) nested deeper are refused."""
MAX_COMPREHENSION_COST = 4_000_000
"""Estimated element visits of one evaluation (n ** depth, times n again for map/filter, which
the binding builds in quadratic time): above it the expression is refused before it runs, so an
expression cannot stall a workflow task (n = 2,000 with one map is about 0.1 s here)."""

# Names an expression may read, by the place where it is written.
BASE_NAMES = frozenset({"input", "vars", "steps", "now"})
RESULT_NAMES = BASE_NAMES | {"result"}
LOOP_NAMES = RESULT_NAMES | {"iteration"}

_COMPREHENSION_VAR = re.compile(
    r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,"
)
_STEP_REFERENCE = re.compile(
    r"\bsteps\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*[\"']([^\"']+)[\"']\s*\])"
)


_STEPS_OTHER_USE = re.compile(r"\bsteps\b")
_MACRO_CALL = re.compile(r"\.\s*(all|exists_one|exists|map|filter)\s*\(")


def _comprehension_nesting(source: str) -> tuple[int, bool]:
    """How deeply comprehension macros nest in `source`, and whether map/filter are used."""
    opens = {m.end() - 1: m.group(1) for m in _MACRO_CALL.finditer(source)}
    stack: list[bool] = []
    deepest = depth = 0
    quote = ""
    escaped = False
    for i, char in enumerate(source):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "(":
            is_macro = i in opens
            stack.append(is_macro)
            depth += is_macro
            deepest = max(deepest, depth)
        elif char == ")" and stack:
            depth -= stack.pop()
    return deepest, any(name in ("map", "filter") for name in opens.values())


def _largest_collection(values: list[Any], budget: int = 2_000_000) -> int:
    """The length of the largest list or map inside `values` (walks at most `budget` items)."""
    largest = 0
    stack = list(values)
    while stack and budget > 0:
        item = stack.pop()
        budget -= 1
        if isinstance(item, dict):
            largest = max(largest, len(item))
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            largest = max(largest, len(item))
            stack.extend(item)
    return largest


class ExpressionError(CadenzaError):
    """An expression that does not compile, reads an unknown name or fails to evaluate.

    `reason` says what is wrong; fix the expression (`cadenza validate` checks it statically).
    """

    exit_code = EXIT_USAGE

    def __init__(self, expression: str, message: str) -> None:
        super().__init__(f"{message} (in expression {expression!r})")
        self.expression = expression
        self.reason = message


class Expression:
    """A compiled CEL expression with the names it reads."""

    __slots__ = (
        "_program",
        "comprehension_depth",
        "names",
        "quadratic",
        "source",
        "step_references",
        "steps_dynamic",
    )

    def __init__(self, source: str) -> None:
        if len(source) > MAX_EXPRESSION_LENGTH:
            raise ExpressionError(
                source[:60] + "...",
                f"expression is {len(source)} characters long; the limit is "
                f"{MAX_EXPRESSION_LENGTH}: move the logic into an action",
            )
        self.comprehension_depth, self.quadratic = _comprehension_nesting(source)
        if self.comprehension_depth > MAX_COMPREHENSION_DEPTH:
            raise ExpressionError(
                source,
                f"comprehensions nest {self.comprehension_depth} deep; the limit is "
                f"{MAX_COMPREHENSION_DEPTH}: move the logic into an action",
            )
        try:
            self._program = cel.compile(source)
        except (ValueError, RecursionError) as exc:
            raise ExpressionError(source, _first_line(str(exc)) or "too deeply nested") from None
        bound = set(_COMPREHENSION_VAR.findall(source))
        self.source = source
        self.names = frozenset(set(self._program.variables()) - bound)
        self.step_references = frozenset(
            a or b for a, b in _STEP_REFERENCE.findall(source) if (a or b)
        )
        # `steps` used other than as steps.<id> / steps["<id>"] (steps[x], size(steps), ...):
        # the whole map must be in scope
        self.steps_dynamic = "steps" in self.names and bool(
            _STEPS_OTHER_USE.search(_STEP_REFERENCE.sub("", source))
        )

    def evaluate(self, scope: dict[str, Any]) -> Any:
        """Evaluate over `scope`; the result is converted to JSON-compatible values.

        Raises:
            ExpressionError: a missing key, a type error, a division by zero and the like.
        """
        if self.comprehension_depth:
            self._check_cost(scope)
        try:
            value = self._program.execute(scope)
        except Exception as exc:  # the binding raises KeyError, TypeError, ValueError, ...
            raise ExpressionError(self.source, _describe(exc)) from None
        return to_json(value)

    def _check_cost(self, scope: dict[str, Any]) -> None:
        n = _largest_collection([scope[name] for name in self.names if name in scope])
        cost = n ** (self.comprehension_depth + (1 if self.quadratic else 0))
        if cost > MAX_COMPREHENSION_COST:
            raise ExpressionError(
                self.source,
                f"it would iterate over {n:,} elements {self.comprehension_depth} level(s) deep "
                f"(about {cost:,} steps; the limit is {MAX_COMPREHENSION_COST:,}): process "
                "collections this large in an action",
            )


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> Expression:
    """Compile `source` once; the same text returns the same compiled expression."""
    return Expression(source)


def evaluate(source: str, scope: dict[str, Any]) -> Any:
    """Compile (cached) and evaluate `source` over `scope`."""
    return compile_expression(source).evaluate(scope)


def to_json(value: Any) -> Any:
    """Turn CEL results (timestamps, durations, bytes, tuples) into JSON-compatible values."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _first_line(message: str) -> str:
    lines = [line for line in message.splitlines() if line.strip()]
    if len(lines) >= 2 and "Syntax error" in message:
        return " ".join(line.strip() for line in lines[:1])
    return lines[0] if lines else message


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"no such key {exc.args[0]!r}: guard it with has(...) or check the name"
    return _first_line(str(exc)) or type(exc).__name__
