"""Graph analysis: order, critical path, width, cycles; linear time on large graphs."""

from __future__ import annotations

from typing import Any

from tests.support.cost import cpu_units
from workflows.dsl.models import AdvancedWorkflow, WorkflowStep
from workflows.dsl.plan import build_plan, find_cycle
from workflows.dsl.validate import validate_definition


def steps(spec: dict[str, list[str]]) -> list[WorkflowStep]:
    return [WorkflowStep(step_id=s, action="std.echo", dependencies=d) for s, d in spec.items()]


def test_order_critical_path_and_width() -> None:
    plan = build_plan(steps({"a": [], "b": ["a"], "c": ["a"], "d": ["b"], "e": ["d", "c"]}))
    assert plan.order == ["a", "b", "c", "d", "e"]
    assert plan.critical_path == {"a": 4, "b": 3, "c": 2, "d": 2, "e": 1}
    assert plan.width == 2 and plan.length == 4


def test_find_cycle_reports_the_loop() -> None:
    assert find_cycle({"a": ["c"], "b": ["a"], "c": ["b"]}) in (
        ["a", "b", "c", "a"],
        ["b", "c", "a", "b"],
        ["c", "a", "b", "c"],
    )
    assert find_cycle({"a": [], "b": ["a"]}) is None


def test_ten_thousand_step_definition_validates_and_plans_quickly() -> None:
    spec = [
        {
            "step_id": f"s{i}",
            "action": "std.echo",
            "dependencies": [f"s{i - 1}"] if i % 10 else [],
            "input_mapping": {"x": f"input.v + {i % 7}"},
        }
        for i in range(10_000)
    ]

    def validate_and_plan() -> Any:
        report = validate_definition({"workflow_id": "big", "steps": spec})
        assert report.ok and isinstance(report.definition, AdvancedWorkflow)
        return build_plan(report.definition.steps)

    plan, units = cpu_units(validate_and_plan)
    assert plan.length == 10 and plan.width == 1000
    # about 10 reference units of CPU (tests/support/cost.py); quadratic behaviour costs thousands
    assert units < 100, f"{units:.1f} reference units of CPU"


def test_analysis_names_the_critical_path_and_strategy() -> None:
    from workflows.dsl.plan import analyse

    definition = AdvancedWorkflow(
        workflow_id="w",
        steps=steps({"a": [], "b": ["a"], "c": ["a"], "d": ["b"], "e": ["d", "c"]}),
    )
    analysis = analyse(definition)
    assert analysis.critical_path == ["a", "b", "d", "e"]
    assert (analysis.steps, analysis.depth, analysis.width) == (5, 4, 2)
    assert analysis.strategy == "parallel"
    assert 0 < analysis.complexity < 1
    chain = AdvancedWorkflow(workflow_id="w", steps=steps({"a": [], "b": ["a"]}))
    assert analyse(chain).strategy == "sequential"
    assert analyse(chain).complexity < analysis.complexity


async def test_priority_slots_serve_the_highest_priority_and_skip_cancelled_waiters() -> None:
    import asyncio

    from workflows.engine.slots import Slots

    slots = Slots(1)
    await slots.acquire((0, 0))
    order: list[str] = []

    async def wait(name: str, priority: tuple[int, int]) -> None:
        await slots.acquire(priority)
        order.append(name)

    low = asyncio.ensure_future(wait("low", (0, 5)))
    high = asyncio.ensure_future(wait("high", (-3, 9)))
    gone = asyncio.ensure_future(wait("gone", (-9, 0)))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    slots.release()
    await asyncio.sleep(0)
    assert order == ["high"]
    slots.release()
    await asyncio.sleep(0)
    assert order == ["high", "low"]
    slots.release()
    assert slots.free == 1
    await asyncio.gather(low, high)
