"""How a step's action runs (local activity or activity) and the order measured durations give."""

from __future__ import annotations

from typing import Any

import pytest

from activities.contracts import STD_EXECUTION
from activities.registry import ActionRegistry, action
from activities.std import register_std
from workflows.contracts import ExecutionOptions
from workflows.dsl.models import AdvancedWorkflow
from workflows.dsl.plan import analyse, build_plan, execution_of
from workflows.engine import facts


def definition(*steps: dict[str, Any], **extra: Any) -> AdvancedWorkflow:
    return AdvancedWorkflow.model_validate({"workflow_id": "x", "steps": list(steps), **extra})


def test_builtin_declarations_match_what_the_workers_register() -> None:
    registry = register_std(ActionRegistry())
    assert registry.executions(registry.names()) == STD_EXECUTION
    assert STD_EXECUTION["std.echo"] == STD_EXECUTION["std.log"] == "local"


def test_an_action_declares_its_execution_and_a_bad_one_is_refused() -> None:
    registry = ActionRegistry()

    @action("t.quick", registry=registry, execution="local")
    def quick(params: Any, ctx: Any) -> Any:
        return params

    @action("t.slow", registry=registry)
    def slow(params: Any, ctx: Any) -> Any:
        return params

    assert registry.executions(["t.quick", "t.slow", "t.absent"]) == {
        "t.quick": "local",
        "t.slow": "activity",
    }
    with pytest.raises(ValueError, match="execution must be"):
        registry.register("t.bad", quick, execution="remote")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("step", "extra", "declared", "expected"),
    [
        ({"action": "std.echo"}, {}, None, "local"),
        ({"action": "std.sleep"}, {}, None, "activity"),
        ({"action": "std.echo", "execution": "activity"}, {}, None, "activity"),
        ({"action": "t.quick"}, {}, {"t.quick": "local"}, "local"),
        ({"action": "t.quick"}, {}, None, None),  # only the workers know
        ({"action": "t.unknown"}, {}, {}, "activity"),
        ({"action": "t.slow"}, {"default_execution": "local"}, {"t.slow": "activity"}, "local"),
        ({"action": "std.echo"}, {"default_execution": "activity"}, None, "activity"),
        ({"action": "std.echo", "agent_capability": "gpu"}, {}, None, "activity"),
    ],
)
def test_resolution_order_step_then_definition_then_action(
    step: dict[str, Any], extra: dict[str, Any], declared: Any, expected: str | None
) -> None:
    d = definition({"step_id": "s", **step}, **extra)
    assert execution_of(d, d.steps[0], d.steps[0].action or "", declared) == expected


def test_a_run_that_predates_declarations_runs_activities() -> None:
    d = definition({"step_id": "s", "action": "std.echo"})
    old = ExecutionOptions()
    assert facts.execution_of(d, d.steps[0], "std.echo", old) == "activity"
    new = ExecutionOptions(action_execution={})
    assert facts.execution_of(d, d.steps[0], "std.echo", new) == "local"


def test_plan_shows_how_each_step_runs() -> None:
    d = definition(
        {"step_id": "a", "action": "std.echo"},
        {"step_id": "b", "action": "std.http", "input_mapping": {"url": "'https://x.org'"}},
        {"step_id": "c", "action": "t.quick"},
    )
    assert analyse(d).executions == {"a": "local", "b": "activity", "c": "declared by t.quick"}
    assert analyse(d, {"t.quick": "local"}).executions["c"] == "local"
    assert analyse(d).as_dict()["execution"] == analyse(d).executions


def test_measured_seconds_reorder_what_step_counts_would_start_first() -> None:
    # a chain of three quick steps has the most steps; one long step takes longest
    d = definition(
        {"step_id": "m1", "action": "std.sleep"},
        {"step_id": "long", "action": "std.sleep"},
        {"step_id": "c0", "action": "std.sleep"},
        {"step_id": "c1", "action": "std.sleep", "dependencies": ["c0"]},
        {"step_id": "c2", "action": "std.sleep", "dependencies": ["c1"]},
    )
    counted = build_plan(d.steps)
    assert max(counted.critical_seconds, key=counted.critical_seconds.__getitem__) == "c0"
    measured = build_plan(d.steps, {"long": 2.0, "m1": 1.0, "c0": 0.1, "c1": 0.1, "c2": 0.1})
    assert measured.critical_seconds["long"] == 2.0
    assert measured.critical_seconds["c0"] == pytest.approx(0.3)
    # a step never measured counts as the median of the measured ones
    partly = build_plan(d.steps, {"long": 2.0, "c0": 0.1, "c1": 0.1})
    assert partly.critical_seconds["m1"] == 0.1 and partly.critical_seconds["c2"] == 0.1


def test_a_run_asks_its_workers_only_what_it_needs() -> None:
    std_only = definition(
        {"step_id": "a", "action": "std.echo"}, {"step_id": "b", "action": "std.log"}
    )
    assert facts._undecided(std_only, std_only.all_steps(), {}) == []
    assert not facts._wants_durations(std_only, std_only.all_steps())
    user = definition(
        {"step_id": "a", "action": "t.quick", "error_handlers": ["t.fix"]},
        {"step_id": "b", "action": "t.slow", "execution": "activity"},
    )
    steps = user.all_steps()
    assert facts._undecided(user, steps, {}) == ["t.fix", "t.quick"]
    assert facts._undecided(user, steps, {"t.quick": "local"}) == ["t.fix"]
    local = user.model_copy(update={"default_execution": "local"})
    assert facts._undecided(local, steps, {}) == []
    many = definition(*({"step_id": f"s{i}", "action": "std.sleep"} for i in range(3)))
    assert facts._wants_durations(
        many.model_copy(update={"max_parallel_steps": 2}), many.all_steps()
    )
    assert not facts._wants_durations(
        many.model_copy(update={"max_parallel_steps": 2, "optimization_enabled": False}),
        many.all_steps(),
    )
