"""The architecture, checked: import rules between the packages, no import cycles, files and
functions one person can hold, and a handler for every step type."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("cadenza", "workflows", "activities", "worker")
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 60
LONG_REASON = "# long:"
"""A function longer than MAX_FUNCTION_LINES carries this comment with a one-line reason."""


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[tuple[str, list[str]]]:
    """(module, imported names) of every import that runs, anywhere in the module (function
    bodies too: an import in a function is still a dependency), not under TYPE_CHECKING."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking_only(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, [a.name for a in node.names]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):  # an import by string is an import too
            yield node.args[0].value, []
        stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    """Module -> the cadenza modules it imports (`from pkg import submodule` -> the submodule)."""
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for module, names in _imports(ast.parse(path.read_text())):
            targets = [f"{module}.{n}" for n in names if f"{module}.{n}" in known]
            if not targets and module in known:
                targets = [module]
            graph[name].update(t for t in targets if t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle_between_cadenza_modules() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


# what each layer may not import (a prefix matches the module and its sub-modules)
FORBIDDEN_LAYERS = {
    "activities": ("workflows", "worker"),
    "workflows": ("worker",),
    "workflows.dsl": ("workflows.engine", "workflows.agent", "workflows.orchestrator"),
    "workflows.contracts": ("workflows.engine", "workflows.agent", "workflows.orchestrator"),
    "workflows.agent": ("workflows.engine", "workflows.orchestrator"),
    "workflows.engine": ("workflows.orchestrator",),
    "cadenza.errors": ("workflows", "activities", "worker"),
}


def test_each_layer_imports_only_the_layers_below_it() -> None:
    problems = []
    for module, targets in import_graph().items():
        for layer, forbidden in FORBIDDEN_LAYERS.items():
            if module != layer and not module.startswith(layer + "."):
                continue
            for target in targets:
                if any(target == f or target.startswith(f + ".") for f in forbidden):
                    problems.append(f"{module} imports {target} (layer {layer})")
    assert not problems, "\n".join(problems)


def test_source_files_stay_small_enough_to_hold() -> None:
    big = {
        name: n
        for name, path in modules().items()
        if (n := len(path.read_text().splitlines())) > MAX_FILE_LINES
    }
    assert not big, f"files over {MAX_FILE_LINES} lines (split them along a real seam): {big}"


def test_long_functions_say_why() -> None:
    long = []
    for name, path in modules().items():
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            end = node.end_lineno or node.lineno
            body = lines[node.lineno - 1 : end]
            if end - node.lineno + 1 > MAX_FUNCTION_LINES and not any(
                LONG_REASON in line for line in body
            ):
                long.append(f"{name}.{node.name} ({end - node.lineno + 1} lines)")
    assert not long, (
        f"functions over {MAX_FUNCTION_LINES} lines without a '{LONG_REASON} <reason>' comment: "
        + ", ".join(long)
    )


def test_every_step_type_has_a_shape_rule_and_a_handler() -> None:
    from workflows.dsl.models import StepType
    from workflows.dsl.rules import RULES
    from workflows.engine.context import StepHandler
    from workflows.engine.steps import HANDLERS

    assert set(RULES) == set(StepType)
    assert set(HANDLERS) == set(StepType)
    for kind, handler in HANDLERS.items():
        assert isinstance(handler, StepHandler), kind
        assert type(handler).run is not StepHandler.run, f"{kind}: run() not implemented"


def test_test_modules_share_helpers_through_tests_support_only() -> None:
    """Test modules do not import each other: shared helpers live in tests/support/."""
    problems = []
    for path in (ROOT / "tests").rglob("*.py"):
        if "support" in path.parts:
            continue
        for module, _ in _imports(ast.parse(path.read_text())):
            if module.startswith("tests.") and not module.startswith("tests.support"):
                problems.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not problems, "\n".join(problems)
