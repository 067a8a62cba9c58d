"""The orchestrator's analysis as pure functions: declared capabilities route subtasks, shapes
that used to raise in workflow code (and hang the task) are reported as problems."""

from __future__ import annotations

import json
from typing import Any

from workflows.orchestrator.strategy import analysis_prompt, parse_analysis

TOOLS = ["std.echo", "std.fail"]


def answer(**fields: Any) -> str:
    return json.dumps({"complexity": 0.3, "dependencies": "independent", **fields})


def test_subtasks_name_declared_capabilities_and_the_analysis_lists_those_used() -> None:
    subtasks = [
        {"tool": "std.echo", "args": {}, "capability": "gpu"},
        {"tool": "std.echo", "args": {}},
    ]
    analysis, problem = parse_analysis(
        answer(capabilities=["gpu", "cpu"], subtasks=subtasks), TOOLS, ["gpu", "cpu"]
    )
    assert problem == "" and analysis is not None
    assert analysis["subtasks"] == [
        {"tool": "std.echo", "args": {}, "capability": "gpu"},
        {"tool": "std.echo", "args": {}},
    ]
    assert analysis["capabilities"] == ["gpu"]  # what the subtasks are routed to


def test_an_undeclared_capability_is_a_problem_and_without_declarations_it_is_ignored() -> None:
    subtasks = [{"tool": "std.echo", "args": {}, "capability": "quantum"}]
    analysis, problem = parse_analysis(answer(subtasks=subtasks), TOOLS, ["gpu"])
    assert analysis is None
    assert problem == "subtask 0: capability 'quantum' is not in ['gpu']"
    analysis, problem = parse_analysis(answer(subtasks=subtasks, capabilities=["x"]), TOOLS)
    assert analysis is not None and analysis["subtasks"] == [{"tool": "std.echo", "args": {}}]
    assert analysis["capabilities"] == ["x"]  # informational, as before


def test_shapes_that_used_to_raise_are_problems_or_ignored() -> None:
    assert parse_analysis(answer(branches=3), TOOLS) == (None, "branches is not a list")
    analysis, _ = parse_analysis(answer(capabilities=5), TOOLS)  # was TypeError
    assert analysis is not None and analysis["capabilities"] == []


def test_the_prompt_offers_capabilities_only_when_the_task_declares_some() -> None:
    assert "capability queues" not in analysis_prompt(TOOLS, [])
    assert "capability queues: gpu, cpu" in analysis_prompt(TOOLS, ["gpu", "cpu"])
