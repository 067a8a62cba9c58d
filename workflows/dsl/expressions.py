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

MAX_EXPRESSION_LENGTH = 4096

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


class ExpressionError(Exception):
    """An expression that does not compile, reads an unknown name or fails to evaluate."""

    def __init__(self, expression: str, message: str) -> None:
        super().__init__(f"{message} (in expression {expression!r})")
        self.expression = expression
        self.reason = message


class Expression:
    """A compiled CEL expression with the names it reads."""

    __slots__ = ("_program", "names", "source", "step_references", "steps_dynamic")

    def __init__(self, source: str) -> None:
        if len(source) > MAX_EXPRESSION_LENGTH:
            raise ExpressionError(
                source[:60] + "...",
                f"expression is {len(source)} characters long; the limit is "
                f"{MAX_EXPRESSION_LENGTH}: move the logic into an action",
            )
        try:
            self._program = cel.compile(source)
        except ValueError as exc:
            raise ExpressionError(source, _first_line(str(exc))) from None
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
        try:
            value = self._program.execute(scope)
        except Exception as exc:  # the binding raises KeyError, TypeError, ValueError, ...
            raise ExpressionError(self.source, _describe(exc)) from None
        return to_json(value)


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
