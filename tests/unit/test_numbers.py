"""Every number of a definition is finite and bounded: a value the models accept can always
become a Temporal timer or a count, so no number can wedge a run (issue 18, item 6).

The walk finds every int and float field reachable from `AdvancedWorkflow` (inside optionals,
lists and dicts too), so a field added later without bounds fails here."""

from __future__ import annotations

import math
import types
from datetime import timedelta
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
from hypothesis import given, settings, strategies as st
from pydantic import BaseModel, ValidationError

from workflows.dsl import models
from workflows.dsl.models import MAX_SECONDS, AdvancedWorkflow
from workflows.dsl.validate import validate_definition

# The smallest valid data of each definition model with required fields.
MINIMAL: dict[type[BaseModel], dict[str, Any]] = {
    models.AdvancedWorkflow: {"workflow_id": "w"},
    models.WorkflowStep: {"step_id": "a"},
    models.Condition: {"when": "true"},
    models.AgentSpec: {"instructions": "x"},
    models.RouterSpec: {"instructions": "x"},
    models.MapSpec: {"items": "input.a", "step": {"step_id": "b"}},
    models.EventSpec: {"name": "e"},
    models.CompletionSpec: {"min_successes": 1},
}

BAD_NUMBERS: list[Any] = [math.nan, math.inf, -math.inf, -1, -1e-9, 1e300, 10**30]


def _leaves(annotation: Any) -> list[Any]:
    """The types a field's annotation holds, through Annotated, unions, lists and dicts."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _leaves(get_args(annotation)[0])
    if origin in (Union, types.UnionType, list):
        return [leaf for arg in get_args(annotation) for leaf in _leaves(arg)]
    if origin is dict:
        return _leaves(get_args(annotation)[1])
    return [annotation]


def _wrap(annotation: Any, value: Any) -> Any:
    """`value` placed where the annotation's number goes (in a list or a dict if it is one)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _wrap(get_args(annotation)[0], value)
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        return _wrap(inner[0], value)
    if origin is list:
        return [value]
    if origin is dict:
        return {"a": value}
    return value


def _numeric_fields() -> list[tuple[type[BaseModel], str]]:
    found: list[tuple[type[BaseModel], str]] = []
    seen: set[type[BaseModel]] = set()
    todo: list[type[BaseModel]] = [AdvancedWorkflow]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            for leaf in _leaves(info.annotation):
                if isinstance(leaf, type) and issubclass(leaf, BaseModel):
                    todo.append(leaf)
                elif leaf in (int, float):
                    found.append((model, name))
    return sorted(set(found), key=lambda mf: (mf[0].__name__, mf[1]))


FIELDS = _numeric_fields()


def _data(model: type[BaseModel], name: str, value: Any) -> dict[str, Any]:
    info = model.model_fields[name]
    return {**MINIMAL.get(model, {}), info.alias or name: _wrap(info.annotation, value)}


def test_the_walk_finds_the_numbers() -> None:
    names = {f"{m.__name__}.{n}" for m, n in FIELDS}
    assert {
        "WaitSpec.seconds",
        "SlaTargets.step_max_seconds",
        "SlaTargets.max_duration_seconds",
        "ApprovalSpec.reminder_every",
        "ApprovalSpec.escalation_timeout",
        "RetryPolicySpec.initial_interval",
        "WorkflowStep.timeout",
        "AdvancedWorkflow.timeout",
    } <= names
    assert len(FIELDS) >= 20


@pytest.mark.parametrize("model", sorted({m for m, _ in FIELDS}, key=lambda m: m.__name__))
def test_minimal_data_of_each_model_is_valid(model: type[BaseModel]) -> None:
    model.model_validate(MINIMAL.get(model, {}))


@pytest.mark.parametrize(("model", "name"), FIELDS, ids=[f"{m.__name__}.{n}" for m, n in FIELDS])
@pytest.mark.parametrize("bad", BAD_NUMBERS, ids=repr)
def test_every_number_refuses_nan_inf_negative_and_huge(
    model: type[BaseModel], name: str, bad: Any
) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(_data(model, name, bad))
    alias = model.model_fields[name].alias or name
    assert any(e["loc"][0] == alias for e in caught.value.errors()), caught.value


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(FIELDS),
    value=st.one_of(st.floats(), st.integers(), st.floats(min_value=-1e12, max_value=1e12)),
)
def test_whatever_a_model_accepts_is_a_valid_timer(
    field: tuple[type[BaseModel], str], value: float
) -> None:
    model, name = field
    try:
        model.model_validate(_data(model, name, value))
    except ValidationError:
        return
    assert math.isfinite(value)
    assert 0 <= value <= max(MAX_SECONDS, 1_000_000)  # seconds, or a count
    timedelta(seconds=value)


@pytest.mark.parametrize(
    ("where", "value", "path", "code"),
    [
        ("wait", {"seconds": math.inf}, "steps[0].wait.seconds", "finite_number"),
        ("wait", {"seconds": 1e300}, "steps[0].wait.seconds", "less_than_equal"),
        (
            "approval",
            {"reminder_every": 1e-6},
            "steps[0].approval.reminder_every",
            "greater_than_equal",
        ),
        (
            "approval",
            {"escalation_timeout": math.inf},
            "steps[0].approval.escalation_timeout",
            "finite_number",
        ),
        ("sla", {"max_duration_seconds": math.nan}, "sla_targets.max_duration_seconds", ""),
        ("sla", {"max_duration_seconds": -5}, "sla_targets.max_duration_seconds", "greater_than"),
        ("sla", {"step_max_seconds": {"a": -1}}, "sla_targets.step_max_seconds.a", "greater_than"),
        ("sla", {"step_max_seconds": {"a": math.nan}}, "sla_targets.step_max_seconds.a", ""),
        ("retry", {"maximum_interval": math.inf}, "steps[0].retry_policy.maximum_interval", ""),
    ],
)
def test_values_that_wedged_a_run_get_a_located_diagnostic(
    where: str, value: dict[str, Any], path: str, code: str
) -> None:
    step: dict[str, Any] = {"step_id": "a", "action": "std.echo"}
    definition: dict[str, Any] = {"workflow_id": "w", "steps": [step]}
    if where == "wait":
        step.update(step_type="wait", action=None, wait=value)
    elif where == "approval":
        step.update(step_type="approval", action=None, approval=value)
    elif where == "retry":
        step["retry_policy"] = value
    else:
        definition["sla_targets"] = value
    report = validate_definition(definition)
    found = [d for d in report.errors if d.path == path and (not code or d.code == code)]
    assert found, [str(d) for d in report.diagnostics]


def test_the_longest_duration_is_accepted_and_fits_a_timer() -> None:
    definition = {
        "workflow_id": "w",
        "steps": [{"step_id": "a", "step_type": "wait", "wait": {"seconds": MAX_SECONDS}}],
        "sla_targets": {"max_duration_seconds": MAX_SECONDS},
    }
    assert validate_definition(definition).ok
    assert timedelta(seconds=MAX_SECONDS).days == 3650
