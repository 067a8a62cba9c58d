"""CEL adapter: compile each expression once, evaluate it deterministically with limits.

CEL (Common Expression Language) is side-effect free and not Turing complete, so user
expressions can run inside the workflow sandbox. The binding (`cel`, a native extension) must be
passed through the sandbox; compiled programs are cached per expression text.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

import cel

from cadenza.errors import EXIT_USAGE, CadenzaError
from workflows.dsl.cel_cost import (
    BUDGET,
    CONVERT,
    DESIGN_ROOT,
    DESIGN_VALUE,
    FUNCTIONS,
    MACROS,
    MAX_VALUE_BYTES,
    RESULT,
    SCALAR,
    Estimate,
    Size,
    ValueLimit,
    measure,
    within,
)
from workflows.dsl.cel_parse import Node, ParseError, parse, walk
from workflows.dsl.diagnostics import DiagnosticCode
from workflows.dsl.errors import did_you_mean

MAX_EXPRESSION_LENGTH = 4096

# Names an expression may read, by the place where it is written.
BASE_NAMES = frozenset({"input", "vars", "steps", "now"})
RESULT_NAMES = BASE_NAMES | {"result"}
LOOP_NAMES = RESULT_NAMES | {"iteration"}

# What validation assumes of each name (others, a map's item name: any value of the run).
_DESIGN_SIZES: dict[str, Size] = {
    "input": DESIGN_ROOT,
    "vars": DESIGN_ROOT,
    "steps": DESIGN_ROOT,
    "result": DESIGN_VALUE,
    "now": SCALAR,
    "iteration": SCALAR,
    "index": SCALAR,
}
_SCALAR_NAMES = frozenset({"now", "iteration", "index"})

Path = tuple[str, ...]


class ExpressionError(CadenzaError):
    """An expression that does not compile, reads an unknown name, calls an unknown function,
    would cost more than the budget, or fails to evaluate.

    `reason` says what is wrong; `code` is the DiagnosticCode validation reports it with. Fix
    the expression (`cadenza validate` checks it statically).
    """

    exit_code = EXIT_USAGE

    def __init__(
        self,
        expression: str,
        message: str,
        code: DiagnosticCode = DiagnosticCode.INVALID_EXPRESSION,
    ) -> None:
        super().__init__(f"{message} (in expression {expression!r})")
        self.expression = expression
        self.reason = message
        self.code = code


class Expression:
    """A compiled CEL expression: its syntax tree, the names and paths it reads, its cost."""

    __slots__ = (
        "_bound",
        "_plans",
        "_program",
        "_tree",
        "cost",
        "names",
        "paths",
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
        self.source = source
        self._tree = _parse(source)
        try:
            self._program = cel.compile(source)
        except (ValueError, RecursionError) as exc:
            raise ExpressionError(source, _first_line(str(exc)) or "too deeply nested") from None
        reads = _Reads(self._tree)
        self.names = frozenset(reads.paths)
        self.paths: dict[str, frozenset[Path] | None] = reads.paths
        self._plans = {name: _plan(paths) for name, paths in reads.paths.items()}
        steps = reads.paths.get("steps", frozenset())
        self.steps_dynamic = steps is None or () in steps
        self.step_references = frozenset(p[0] for p in steps or () if p)
        _check_functions(source, self._tree)
        sizes = {n: _DESIGN_SIZES.get(n, DESIGN_VALUE) for n in self.names}
        self.cost, result = Estimate(sizes).run(self._tree)
        self._bound = self.cost + result.w * RESULT
        """The cost at the design sizes, converting the result included: what any evaluation
        on values no larger than those sizes stays under (`check`)."""
        if self.cost > BUDGET:
            raise ExpressionError(
                source,
                f"it may cost about {_ms(self.cost)} of CPU on values of the design sizes (a "
                f"budget of {_ms(BUDGET)}: expressions run while the worker waits): "
                + _cost_hint(self._tree),
                DiagnosticCode.EXPRESSION_TOO_COSTLY,
            )

    def evaluate(self, scope: dict[str, Any]) -> Any:
        """Evaluate over `scope` (only the parts of it the expression reads enter); the result
        is converted to JSON-compatible values.

        Raises:
            ExpressionError: a value over MAX_VALUE_BYTES enters, the cost on these values is
                over the budget, a missing key, a type error, a division by zero and the like.
        """
        values = self.check(scope)
        try:
            value = self._program.execute(values)
        except Exception as exc:  # the binding raises KeyError, TypeError, ValueError, ...
            raise ExpressionError(self.source, _describe(exc)) from None
        return to_json(value)

    def check(self, scope: dict[str, Any]) -> dict[str, Any]:
        """What of `scope` enters the evaluation, checked against the limits and the budget.

        Raises:
            ExpressionError: a value over MAX_VALUE_BYTES or nested over MAX_VALUE_DEPTH, or
                the cost on these values over the budget.
        """
        values = {n: _prune(scope[n], self._plans[n]) for n in self.names if n in scope}
        estimate = Estimate({}, {n: v for n, v in values.items() if n not in _SCALAR_NAMES})
        entering = 0.0
        bounded = all(not _is_collection(values[n]) for n in _SCALAR_NAMES.intersection(values))
        for name, value in estimate.values.items():
            try:
                size, length = measure(value, estimate.memo)
            except ValueLimit as exc:
                raise ExpressionError(self.source, f"{name} cannot enter: {exc}") from None
            if length > MAX_VALUE_BYTES:
                raise ExpressionError(
                    self.source,
                    f"what it reads of {name} is about {length:,} bytes; the limit for a value "
                    f"entering an expression is {MAX_VALUE_BYTES:,}: read a smaller part, or "
                    "process it in an action",
                    DiagnosticCode.EXPRESSION_TOO_COSTLY,
                )
            entering += size.w
            bounded = bounded and within(size, _DESIGN_SIZES.get(name, DESIGN_VALUE))
        if bounded and self._bound + entering * CONVERT <= BUDGET:
            # no value is larger than validation priced this expression at: that bound holds
            # (pricing the tree again on these values is most of an evaluation's cost)
            return values
        cost, result = estimate.run(self._tree)
        cost += entering * CONVERT + result.w * RESULT
        if cost > BUDGET:
            raise ExpressionError(
                self.source,
                f"on these values it would cost about {_ms(cost)} of CPU (the budget is "
                f"{_ms(BUDGET)}): process collections or strings this large in an action",
                DiagnosticCode.EXPRESSION_TOO_COSTLY,
            )
        return values


def _parse(source: str) -> Node:
    try:
        return parse(source)
    except ParseError as exc:
        message = str(exc)
    if "nests more than" in message:  # refused before the binding parses it recursively
        raise ExpressionError(source, f"{message}: split it or move the logic into an action")
    try:
        cel.compile(source)
    except (ValueError, RecursionError) as exc:  # the binding's words, as before
        raise ExpressionError(source, _first_line(str(exc)) or "too deeply nested") from None
    raise ExpressionError(source, f"cadenza cannot price this expression: {message}")


class _Reads:
    """The names an expression reads (not bound by a comprehension) and, per name, the paths
    of fields it reads from it (`input.a.b` -> ("a", "b")); None: the whole value (read other
    than by field names: `input[k]`, `size(input)`)."""

    def __init__(self, tree: Node) -> None:
        self.paths: dict[str, frozenset[Path] | None] = {}
        self.visit(tree, frozenset(), extended=False)

    def visit(self, node: Node, bound: frozenset[str], extended: bool) -> None:
        chain = _chain(node, bound)
        if chain is not None and not extended:
            root, path = chain
            known = self.paths.get(root, frozenset())
            self.paths[root] = None if known is None else known | {path}
        if node.kind == "macro":
            assert node.target is not None
            self.visit(node.target, bound, extended=False)
            for arg in node.args:
                self.visit(arg, bound | {node.var}, extended=False)
            return
        for i, child in enumerate(node.children):
            extends = chain is not None and i == 0 and node.kind in ("select", "index")
            self.visit(child, bound, extended=extends)


def _chain(node: Node, bound: frozenset[str]) -> tuple[str, Path] | None:
    """(root, path) when `node` reads fields by name from a name in scope."""
    steps: list[str] = []
    while True:
        if node.kind == "ident":
            return None if node.name in bound else (node.name, tuple(reversed(steps)))
        if node.kind == "select":
            steps.append(node.name)
        elif (
            node.kind == "index"
            and node.args[1].kind == "lit"
            and isinstance(node.args[1].value, str)
        ):
            steps.append(node.args[1].value)
        else:
            return None
        node = node.args[0]


Plan = dict[str, "Plan | None"]
"""What of a value the paths read, field by field; None: all of it."""


def _plan(paths: frozenset[Path] | None) -> Plan | None:
    if paths is None or () in paths:
        return None
    heads: dict[str, set[Path]] = {}
    for path in paths:
        heads.setdefault(path[0], set()).add(path[1:])
    return {k: _plan(frozenset(rest)) for k, rest in heads.items()}


def _prune(value: Any, plan: Plan | None) -> Any:
    """The part of `value` the plan reads (the same answers, a smaller value to convert)."""
    if plan is None or not isinstance(value, dict):
        return value
    return {k: _prune(value[k], rest) for k, rest in plan.items() if k in value}


def _is_collection(value: Any) -> bool:
    return isinstance(value, dict | list | tuple | str | bytes)


def _check_functions(source: str, tree: Node) -> None:
    for node in walk(tree):
        if node.kind == "struct":
            raise ExpressionError(
                source,
                f"{node.name}{{...}} builds a message type, which cadenza expressions do not "
                "have: use a map literal {'field': value}",
                DiagnosticCode.UNKNOWN_FUNCTION,
            )
        if node.kind == "call" and node.name not in FUNCTIONS:
            known = sorted(FUNCTIONS | MACROS)
            hint = did_you_mean(node.name, known)
            raise ExpressionError(
                source,
                f"unknown function {node.name!r}{hint}; the functions are: {', '.join(known)}"
                " (and the operators): compute anything else in an action",
                DiagnosticCode.UNKNOWN_FUNCTION,
            )


def _cost_hint(tree: Node) -> str:
    macros = [n for n in walk(tree) if n.kind == "macro"]
    inner = {id(n) for m in macros for n in walk(m) if n is not m and n.kind == "macro"}
    if inner:
        return (
            "a comprehension inside another repeats its work for every element; compute the "
            "inner part once in an earlier step (output_mapping), or process the data in an "
            "action"
        )
    if macros:
        return (
            "a map()/filter() whose elements copy whole values (a `+` with a value of the run, "
            "or the value itself) grows with the square of the list; select a field, convert "
            "a number with int()/double(), or process the data in an action"
        )
    return "it builds or scans large values; move the logic into an action"


def _ms(nanoseconds: float) -> str:
    return f"{nanoseconds / 1e6:,.0f} ms" if nanoseconds >= 1e6 else "under 1 ms"


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
