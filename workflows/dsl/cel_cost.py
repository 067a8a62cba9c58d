"""The cost model of CEL expressions: what an evaluation can touch, priced from the parse.

The native binding holds the GIL while it evaluates, so an expensive expression freezes the
whole worker (heartbeats, polling, `/livez`) and the workflow task that runs it. Every
expression is priced by an abstract evaluation of its syntax tree (`workflows.dsl.cel_parse`):
each value is a `Size` (its length, the weight of copying it, its longest string, and the sizes
of its elements and fields), each node adds what the binding spends on it. Priced twice:

- at validation, with every value read from the run (input, vars, steps, result, a map's item)
  at the design sizes (`DESIGN_ITEMS` items, strings of `DESIGN_CHARS`): an expression over
  that budget is refused before any run starts;
- before each evaluation, with the sizes of the values it actually reads: over the budget (or a
  value over `MAX_VALUE_BYTES`) the step fails with an ExpressionError, and the binding never
  runs it.

The weights are nanoseconds of CPU measured on the development machine (2 cores): the binding
builds a map()/filter() result by copying it at every element (quadratic), so copying weights
dominate. The budget and its calibration are next to `BUDGET`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cadenza.errors import CadenzaError
from workflows.dsl.cel_parse import Node

# -- the budget

BUDGET = 100_000_000
"""Estimated nanoseconds of CPU one evaluation may take: a twentieth of Temporal's 2 s deadlock
timeout. Calibration on this machine (2 cores; `tests/support/cost.py` units, one unit = the
reference workload, about 0.043 s here; tests/unit/test_cel_cost.py): the costliest evaluations
the check accepts, on the largest values it accepts for them, take a map over 1,571 ints
0.052 s (1.2 units), a filter over 1,570 ints 0.054 s, a map over 234 records of 10 fields
0.047 s, a map with `+` over 945 strings of 1,000 characters 0.088 s (2.1 units), all over
116,507 ints 0.037 s, contains over a 1 MiB string under 0.001 s: all under the 0.2 s target
(the model overestimates about twofold)."""

DESIGN_ITEMS = 1_000
"""At validation, a collection read from the run is priced as this many items."""
DESIGN_CHARS = 65_536
"""At validation, a string read from the run is priced as this many characters."""
DESIGN_ROW_CHARS = 256
"""At validation, an element of a collection read from the run is priced as a scalar or a
string of this many characters."""

MAX_VALUE_BYTES = 1_048_576
"""The hard limit on one value entering an evaluation (about its JSON size): the run input's
own limit. Only what an expression reads enters (`input.a.b` passes input.a.b, not all input)."""
MAX_VALUE_DEPTH = 64
"""Values nested deeper than this do not enter an evaluation."""

# -- weights, in nanoseconds of this machine's CPU

NODE = 60  # interpreting one node once
ITER = 100  # one iteration of a comprehension, besides its body
SCALAR_W = 20  # copying a number, a bool, null, a timestamp
LIST_ELEM_W = 20  # copying one element's slot of a list
MAP_ENTRY_W = 130  # copying one entry of a map (rebuilt as a hash map)
CHAR_W = 0.05  # copying one character
SCAN = 1.5  # scanning one character (contains, ==, conversions)
REGEX = 200.0  # compiling one character of a regular expression
CONVERT = 3  # converting what enters from Python, per unit of copy weight
RESULT = 10  # converting the result back to Python (to_json), per unit of copy weight


@dataclass(slots=True, eq=False)
class Size:
    """An upper bound on a value: `n` its length if it is a collection (0 if not), `w` the
    weight of copying it (ns), `l` its longest string, `item` the bound of its elements (of a
    map: its keys), `field` the bound of a map's values. None: no elements.

    Never changed once made (not frozen: a frozen dataclass takes 4x as long to make, and
    measuring the values entering every evaluation makes a few)."""

    n: float
    w: float
    l: float  # noqa: E741
    item: Size | None = None
    field: Size | None = None


SCALAR = Size(0, SCALAR_W, 0)


def string_size(chars: float) -> Size:
    return Size(0, SCALAR_W + chars * CHAR_W, chars)


def merge(a: Size | None, b: Size | None, depth: int = 0) -> Size | None:
    """The least bound of both (field by field the larger)."""
    if a is None or a is b:
        return b
    if b is None:
        return a
    if depth > 8:  # the design sizes refer to themselves: stop with the heavier
        return a if a.w >= b.w else b
    return Size(
        max(a.n, b.n),
        max(a.w, b.w),
        max(a.l, b.l),
        merge(a.item, b.item, depth + 1),
        merge(a.field, b.field, depth + 1),
    )


def _design() -> tuple[Size, Size]:
    """The sizes validation assumes for values read from the run: (any value, the run's
    roots). Any value: a list of DESIGN_ITEMS rows, a map of such values, or a string of
    DESIGN_CHARS; a row: a scalar or a string of DESIGN_ROW_CHARS (its own parts alike)."""
    row = Size(16, SCALAR_W + DESIGN_ROW_CHARS * CHAR_W, DESIGN_ROW_CHARS)
    object.__setattr__(row, "item", row)
    object.__setattr__(row, "field", row)
    weight = max(DESIGN_ITEMS * (LIST_ELEM_W + row.w), DESIGN_CHARS * CHAR_W)
    value = Size(DESIGN_ITEMS, weight, DESIGN_CHARS, row)
    object.__setattr__(value, "field", value)
    return value, value


DESIGN_VALUE, DESIGN_ROOT = _design()


def within(size: Size | None, bound: Size | None, depth: int = 0) -> bool:
    """Whether `size` is at most `bound` in every part (length, weight, longest string, its
    elements' and fields' bounds): then any pricing of a value of `size` is at most the same
    pricing of `bound`, since every cost and result size here grows with the sizes it is given
    (`tests/unit/test_cel_cost.py` checks it)."""
    if size is None or size is bound:
        return True
    if bound is None or depth > MAX_VALUE_DEPTH:
        return False
    return (
        size.n <= bound.n
        and size.w <= bound.w
        and size.l <= bound.l
        and within(size.item, bound.item, depth + 1)
        and within(size.field, bound.field, depth + 1)
    )


class ValueLimit(CadenzaError):
    """A value too large or too deep to enter an evaluation; `args[0]` says which limit."""


def measure(value: Any, memo: dict[int, Size], depth: int = 0) -> tuple[Size, int]:
    """The Size of a concrete value and its approximate JSON length; sizes of its parts land in
    `memo` (by id), so a lookup of a part is free.

    Raises:
        ValueLimit: deeper than MAX_VALUE_DEPTH.
    """
    if depth > MAX_VALUE_DEPTH:
        raise ValueLimit(f"it nests more than {MAX_VALUE_DEPTH} levels deep")
    if isinstance(value, str | bytes):
        size, length = string_size(len(value)), len(value) + 2
    elif isinstance(value, dict):
        size, length = _measure_map(value, memo, depth)
    elif isinstance(value, list | tuple):
        size, length = _measure_list(value, memo, depth)
    else:
        size, length = SCALAR, 8
    memo[id(value)] = size
    return size, length


def _measure_list(value: list[Any] | tuple[Any, ...], memo: dict[int, Size], depth: int) -> Any:
    item: Size | None = None
    weight, length = 0.0, 2 + len(value)
    if all(type(v) in (int, float, bool) or v is None for v in value):  # the common case
        item = SCALAR if value else None
        weight, length = len(value) * SCALAR_W, length + 8 * len(value)
    else:
        for v in value:
            size, part = measure(v, memo, depth + 1)
            item = merge(item, size)
            weight += size.w
            length += part
            if length > MAX_VALUE_BYTES:
                break
    n = max([len(value)] + ([item.n] if item else []))
    chars = item.l if item else 0
    # a collection weighs at least what a scalar does, an empty one too (sizes stay monotone)
    return Size(n, SCALAR_W + weight + len(value) * LIST_ELEM_W, chars, item), length


def _measure_map(value: dict[Any, Any], memo: dict[int, Size], depth: int) -> Any:
    keys: Size | None = None
    field: Size | None = None
    weight, length = 0.0, 2 + len(value)
    for k, v in value.items():
        key, key_length = measure(k, memo, depth + 1)
        size, part = measure(v, memo, depth + 1)
        keys, field = merge(keys, key), merge(field, size)
        weight += key.w + size.w
        length += key_length + part + 1
        if length > MAX_VALUE_BYTES:
            break
    n = max([len(value)] + ([field.n] if field else []))
    chars = max(keys.l if keys else 0, field.l if field else 0)
    return Size(n, SCALAR_W + weight + len(value) * MAP_ENTRY_W, chars, keys, field), length


# -- functions the binding knows, by what they cost and give

SCALAR_FUNCTIONS = frozenset(
    {"int", "uint", "double", "timestamp", "duration", "type", "size"}
    | {"getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear"}
    | {"getHours", "getMinutes", "getSeconds", "getMilliseconds"}
)
TEST_FUNCTIONS = frozenset({"contains", "startsWith", "endsWith", "matches"})
TEXT_FUNCTIONS = frozenset({"string", "bytes"})
FUNCTIONS = SCALAR_FUNCTIONS | TEST_FUNCTIONS | TEXT_FUNCTIONS | {"dyn"}
"""Every function an expression may call (besides the macros has, all, exists, exists_one,
map, filter): the binding's standard library."""
MACROS = frozenset({"has", "all", "exists", "exists_one", "map", "filter"})

_MISSING = object()


class Estimate:
    """One pricing of a syntax tree: `cost` (ns) and `size` of the result.

    `env` gives each free name's Size, or its concrete value (`values`, at run time: a select
    of a concrete map resolves to the field's own size).
    """

    def __init__(self, sizes: dict[str, Size], values: dict[str, Any] | None = None) -> None:
        self.sizes = sizes
        self.values = values or {}
        self.memo: dict[int, Size] = {}

    def run(self, node: Node) -> tuple[float, Size]:
        cost, size, _ = self.price(node, {})
        return cost, size

    def size_of(self, value: Any) -> Size:
        known = self.memo.get(id(value))
        if known is None:
            known, _ = measure(value, self.memo)
        return known

    def price(self, node: Node, bound: dict[str, Size]) -> tuple[float, Size, Any]:
        """(cost, size, concrete value or _MISSING) of `node` with comprehension vars `bound`."""
        kind = node.kind
        if kind == "lit":
            if node.name in ("string", "bytes"):
                return NODE, string_size(len(node.value)), _MISSING
            return NODE, SCALAR, _MISSING
        if kind == "ident":
            if node.name in bound:
                return NODE, bound[node.name], _MISSING
            if node.name in self.values:
                value = self.values[node.name]
                return NODE, self.size_of(value), value
            return NODE, self.sizes.get(node.name, DESIGN_VALUE), _MISSING
        if kind in ("select", "index"):
            return self.access(node, bound)
        if kind == "macro":
            return self.comprehension(node, bound)
        parts = [self.price(child, bound) for child in node.children]
        cost = NODE + sum(p[0] for p in parts)
        sizes = [p[1] for p in parts]
        if kind == "list":
            item = None
            for s in sizes:
                item = merge(item, s)
            weight = sum(s.w for s in sizes) + len(sizes) * LIST_ELEM_W
            n = max([len(sizes)] + [s.n for s in sizes])
            return cost, Size(n, weight, max([0] + [s.l for s in sizes]), item), _MISSING
        if kind == "map":
            keys, values = sizes[0::2], sizes[1::2]
            key = field = None
            for k, v in zip(keys, values, strict=True):
                key, field = merge(key, k), merge(field, v)
            weight = sum(s.w for s in sizes) + len(values) * MAP_ENTRY_W
            n = max([len(values)] + [s.n for s in sizes])
            return cost, Size(n, weight, max([0] + [s.l for s in sizes]), key, field), _MISSING
        if kind == "binary":
            return cost + _operator(node.name, sizes), _operator_size(node.name, sizes), _MISSING
        if kind == "cond":
            branch = max(parts[1][0], parts[2][0])
            result = merge(sizes[1], sizes[2]) or SCALAR
            return NODE + parts[0][0] + branch, result, _MISSING
        if kind == "call":
            return self.call(node, cost, sizes)
        return cost, SCALAR, _MISSING  # unary, has, struct (refused by name elsewhere)

    def access(self, node: Node, bound: dict[str, Size]) -> tuple[float, Size, Any]:
        operand = node.args[0]
        cost, size, value = self.price(operand, bound)
        key: Any = node.name
        if node.kind == "index":
            key_node = node.args[1]
            key_cost, key_size, _ = self.price(key_node, bound)
            cost += key_cost + SCAN * key_size.l
            key = key_node.value if key_node.kind == "lit" else _MISSING
        if value is not _MISSING and key is not _MISSING:
            child = _lookup(value, key)
            if child is not _MISSING:
                return cost + NODE, self.size_of(child), child
            return cost + NODE, SCALAR, _MISSING  # a missing key: an error, not a cost
        if node.kind == "select":
            return cost + NODE, size.field or SCALAR, _MISSING
        return cost + NODE, merge(size.item, size.field) or SCALAR, _MISSING

    def comprehension(self, node: Node, bound: dict[str, Size]) -> tuple[float, Size, Any]:
        assert node.target is not None
        cost, range_size, value = self.price(node.target, bound)
        count = len(value) if isinstance(value, list | tuple | dict) else range_size.n
        element = range_size.item or SCALAR
        inner = {**bound, node.var: element}
        body = [self.price(arg, inner) for arg in node.args]
        per_item = ITER + sum(b[0] for b in body)
        cost += count * per_item
        if node.name == "map":
            produced = body[-1][1]
            result_weight = count * (LIST_ELEM_W + produced.w)
            size = Size(max(count, produced.n), result_weight, produced.l, produced)
        elif node.name == "filter":
            result_weight = min(range_size.w, count * (LIST_ELEM_W + element.w))
            size = Size(count, result_weight, element.l, element)
        else:
            return cost + NODE, SCALAR, _MISSING
        # the binding copies the result built so far at every element: quadratic
        return cost + NODE + count * result_weight, size, _MISSING

    def call(self, node: Node, cost: float, sizes: list[Size]) -> tuple[float, Size, Any]:
        longest = max([0.0] + [s.l for s in sizes])
        name = node.name
        if name in TEST_FUNCTIONS:
            extra = SCAN * sum(s.l for s in sizes)
            if name == "matches":
                extra += REGEX * (sizes[-1].l if sizes else 0)
            return cost + extra, SCALAR, _MISSING
        if name in TEXT_FUNCTIONS:
            chars = max(longest, 32.0)
            return cost + SCAN * longest + CHAR_W * chars, string_size(chars), _MISSING
        if name == "dyn":
            return cost, sizes[0] if sizes else SCALAR, _MISSING
        if name == "size":  # counts the characters of a string
            return cost + CHAR_W * longest, SCALAR, _MISSING
        # numbers, timestamps, durations: parsing stops within a few dozen characters
        return cost + SCAN * min(longest, 64), SCALAR, _MISSING


def _lookup(value: Any, key: Any) -> Any:
    if isinstance(value, dict) and isinstance(key, str | int | bool):
        return value.get(key, _MISSING)
    if isinstance(value, list | tuple) and isinstance(key, int) and -len(value) < key < len(value):
        return value[key] if key >= 0 else _MISSING
    return _MISSING


def _operator(name: str, sizes: list[Size]) -> float:
    """What an operator spends on its operands (besides evaluating them)."""
    if name == "+":  # may concatenate strings, bytes or lists: copies both sides
        return sum(s.w for s in sizes)
    if name in ("==", "!=", "<", "<=", ">", ">="):  # compares as far as the smaller goes
        weights = sorted(s.w for s in sizes)
        return sum(weights[:-1]) + SCAN * min(s.l for s in sizes)
    if name == "in":
        return sizes[-1].w + SCAN * sizes[-1].l
    return 0.0


def _operator_size(name: str, sizes: list[Size]) -> Size:
    if name != "+":
        return SCALAR
    item = field = None
    for s in sizes:
        item, field = merge(item, s.item), merge(field, s.field)
    return Size(
        sum(s.n for s in sizes), sum(s.w for s in sizes), sum(s.l for s in sizes), item, field
    )
