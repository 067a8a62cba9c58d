"""Malformed definitions and the diagnostic each gets (path, code, message fragment): checked by
the validator's unit tests and by `cadenza validate --json` in the CLI tests."""

from __future__ import annotations

from typing import Any

from workflows.dsl.validate import MAX_STEPS


def base(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "workflow_id": "orders",
        "steps": [
            {"step_id": "charge", "action": "std.echo"},
            {"step_id": "ship", "action": "std.echo", "dependencies": ["charge"]},
        ],
    }
    doc.update(fields)
    return doc


def with_step(index: int, **fields: Any) -> dict[str, Any]:
    doc = base()
    doc["steps"][index].update(fields)
    return doc


def chain(n: int) -> list[dict[str, Any]]:
    return [
        {"step_id": f"s{i}", "action": "std.echo", "dependencies": [f"s{i - 1}"] if i else []}
        for i in range(n)
    ]


def nested(depth: int) -> dict[str, Any]:
    step: dict[str, Any] = {"step_id": f"n{depth}", "action": "std.echo"}
    for d in range(depth - 1, 0, -1):
        step = {"step_id": f"n{d}", "step_type": "parallel", "parallel_steps": [step]}
    return {"workflow_id": "deep", "steps": [step]}


# (case id, definition, expected path, expected code, fragment of the message)
CASES: list[tuple[str, Any, str, str, str]] = [
    ("not a mapping", ["a"], "$", "not_a_mapping", "mapping"),
    ("missing workflow_id", {"steps": []}, "workflow_id", "missing", "required"),
    (
        "bad workflow_id",
        base(workflow_id="Orders Now"),
        "workflow_id",
        "string_pattern_mismatch",
        "does not match",
    ),
    ("no steps", base(steps=[]), "steps", "no_steps", "at least one step"),
    ("steps not a list", base(steps="charge"), "steps", "list_type", "valid list"),
    ("unknown top-level field", base(stpes=[]), "stpes", "extra_forbidden", "did you mean 'steps'"),
    (
        "unknown step field",
        with_step(0, dependecies=["x"]),
        "steps[0].dependecies",
        "extra_forbidden",
        "did you mean 'dependencies'",
    ),
    (
        "missing step_id",
        base(steps=[{"action": "std.echo"}]),
        "steps[0].step_id",
        "missing",
        "required",
    ),
    (
        "bad step_id",
        with_step(0, step_id="9 lives"),
        "steps[0].step_id",
        "string_pattern_mismatch",
        "does not match",
    ),
    (
        "duplicate step id",
        with_step(1, step_id="charge", dependencies=[]),
        "steps[1].step_id",
        "duplicate_step_id",
        "already used at steps[0]",
    ),
    (
        "unknown dependency",
        with_step(1, dependencies=["chrage"]),
        "steps[1].dependencies[0]",
        "unknown_dependency",
        "did you mean 'charge'",
    ),
    (
        "self dependency",
        with_step(0, dependencies=["charge"]),
        "steps[0].dependencies[0]",
        "self_dependency",
        "depends on itself",
    ),
    (
        "two-step cycle",
        with_step(0, dependencies=["ship"]),
        "steps[0].dependencies",
        "dependency_cycle",
        "charge -> ship -> charge",
    ),
    (
        "three-step cycle",
        base(
            steps=[
                {"step_id": "a", "action": "std.echo", "dependencies": ["c"]},
                {"step_id": "b", "action": "std.echo", "dependencies": ["a"]},
                {"step_id": "c", "action": "std.echo", "dependencies": ["b"]},
            ]
        ),
        "steps[0].dependencies",
        "dependency_cycle",
        "a -> b -> c -> a",
    ),
    ("bad step type", with_step(0, step_type="fork"), "steps[0].step_type", "enum", "'action'"),
    (
        "parallel without children",
        with_step(0, step_type="parallel", action=None),
        "steps[0].parallel_steps",
        "empty_container",
        "needs parallel_steps",
    ),
    (
        "parallel with an action",
        with_step(0, step_type="parallel", parallel_steps=[{"step_id": "c", "action": "std.echo"}]),
        "steps[0].action",
        "unexpected_action",
        "runs no action",
    ),
    (
        "loop without condition",
        with_step(0, step_type="loop"),
        "steps[0].loop_condition",
        "missing_loop_condition",
        "needs loop_condition",
    ),
    (
        "loop with two bodies",
        with_step(
            0,
            step_type="loop",
            loop_condition="false",
            parallel_steps=[{"step_id": "c", "action": "std.echo"}],
        ),
        "steps[0].action",
        "loop_body",
        "exactly one body",
    ),
    (
        "loop_condition outside a loop",
        with_step(0, loop_condition="true"),
        "steps[0].loop_condition",
        "unexpected_loop_condition",
        "only applies to loop",
    ),
    (
        "loop condition unknown name",
        with_step(0, step_type="loop", loop_condition="reslt.more"),
        "steps[0].loop_condition",
        "unknown_name",
        "'reslt'",
    ),
    (
        "children on an action step",
        with_step(0, parallel_steps=[{"step_id": "c", "action": "std.echo"}]),
        "steps[0].parallel_steps",
        "unexpected_children",
        "has no children",
    ),
    (
        "wait without a spec",
        with_step(0, step_type="wait", action=None),
        "steps[0].wait",
        "missing_wait",
        "exactly one of",
    ),
    (
        "wait with both seconds and until",
        with_step(0, step_type="wait", action=None, wait={"seconds": 1, "until": "now"}),
        "steps[0].wait",
        "missing_wait",
        "exactly one of",
    ),
    (
        "wait with seconds and a condition",
        with_step(0, step_type="wait", action=None, wait={"seconds": 1, "condition": "true"}),
        "steps[0].wait",
        "missing_wait",
        "exactly one",
    ),
    (
        "wait condition reading an unknown name",
        with_step(0, step_type="wait", action=None, wait={"condition": "flag == 1"}),
        "steps[0].wait.condition",
        "unknown_name",
        "'flag'",
    ),
    (
        "map without settings",
        with_step(1, step_type="map", action=None),
        "steps[1].map",
        "missing_map",
        "items",
    ),
    (
        "map settings on an action step",
        with_step(1, map={"items": "[1]", "step": {"step_id": "one", "action": "std.echo"}}),
        "steps[1].map",
        "unexpected_map",
        "only applies to map steps",
    ),
    (
        "map body with dependencies",
        with_step(
            1,
            step_type="map",
            action=None,
            map={
                "items": "[1]",
                "step": {"step_id": "one", "action": "std.echo", "dependencies": ["charge"]},
            },
        ),
        "steps[1].map.step.dependencies",
        "map_body",
        "no dependencies",
    ),
    (
        "map body that is a container",
        with_step(
            1,
            step_type="map",
            action=None,
            map={
                "items": "[1]",
                "step": {
                    "step_id": "box",
                    "step_type": "parallel",
                    "parallel_steps": [{"step_id": "in_box", "action": "std.echo"}],
                },
            },
        ),
        "steps[1].map.step.step_type",
        "map_body",
        "one step run per item",
    ),
    (
        "map item named like a scope name",
        with_step(
            1,
            step_type="map",
            action=None,
            map={"items": "[1]", "as": "input", "step": {"step_id": "one", "action": "std.echo"}},
        ),
        "steps[1].map.as",
        "map_body",
        "hides a name",
    ),
    (
        "map body reading a name the map does not bind",
        with_step(
            1,
            step_type="map",
            action=None,
            map={
                "items": "input.orders",
                "as": "order",
                "step": {"step_id": "one", "action": "std.echo", "input_mapping": {"x": "item"}},
            },
        ),
        "steps[1].map.step.input_mapping.x",
        "unknown_name",
        "order",
    ),
    (
        "map body id used elsewhere",
        with_step(
            1,
            step_type="map",
            action=None,
            map={"items": "[1]", "step": {"step_id": "charge", "action": "std.echo"}},
        ),
        "steps[1].map.step.step_id",
        "duplicate_step_id",
        "already used",
    ),
    (
        "completion on an action step",
        with_step(1, completion={"min_successes": 1}),
        "steps[1].completion",
        "unexpected_completion",
        "parallel and map",
    ),
    (
        "completion asking for more children than there are",
        with_step(
            1,
            step_type="parallel",
            action=None,
            completion={"min_successes": 3},
            parallel_steps=[
                {"step_id": "left", "action": "std.echo"},
                {"step_id": "right", "action": "std.echo"},
            ],
        ),
        "steps[1].completion.min_successes",
        "completion_unreachable",
        "2 children",
    ),
    (
        "terminate without settings",
        with_step(1, step_type="terminate", action=None),
        "steps[1].terminate",
        "missing_terminate",
        "status: completed | failed",
    ),
    (
        "terminate settings on an action step",
        with_step(1, terminate={"status": "completed"}),
        "steps[1].terminate",
        "unexpected_terminate",
        "only applies to terminate steps",
    ),
    (
        "terminate with an unknown status",
        with_step(1, step_type="terminate", action=None, terminate={"status": "maybe"}),
        "steps[1].terminate.status",
        "literal_error",
        "completed",
    ),
    (
        "wait on an action step",
        with_step(0, wait={"seconds": 1}),
        "steps[0].wait",
        "unexpected_wait",
        "only applies to wait",
    ),
    (
        "conditional without conditions",
        with_step(0, step_type="conditional", action=None),
        "steps[0].conditions",
        "missing_conditions",
        "needs conditions",
    ),
    (
        "conditional branch to unknown step",
        with_step(
            0,
            step_type="conditional",
            action=None,
            conditions=[{"when": "true", "next_steps": ["shipp"]}],
        ),
        "steps[0].conditions[0].next_steps[0]",
        "unknown_next_step",
        "did you mean 'ship'",
    ),
    (
        "branch target in every branch",
        with_step(
            0,
            step_type="conditional",
            action=None,
            next_steps=["ship"],
            conditions=[{"when": "true", "next_steps": ["ship"]}],
        ),
        "steps[0].next_steps",
        "branch_target_unconditional",
        "always runs",
    ),
    (
        "conditional with an action",
        with_step(
            0, step_type="conditional", conditions=[{"when": "true", "next_steps": ["ship"]}]
        ),
        "steps[0].action",
        "unexpected_action",
        "runs no action",
    ),
    (
        "approval quorum unreachable",
        with_step(
            0,
            step_type="approval",
            action=None,
            approval={"approvers": ["ann"], "required_approvals": 2},
        ),
        "steps[0].approval.required_approvals",
        "quorum_unreachable",
        "only 1 approvers",
    ),
    (
        "escalation without escalate_to",
        with_step(0, step_type="approval", action=None, approval={"on_timeout": "escalate"}),
        "steps[0].approval.escalate_to",
        "missing_escalate_to",
        "needs escalate_to",
    ),
    (
        "approval with an action",
        with_step(0, step_type="approval"),
        "steps[0].action",
        "unexpected_action",
        "runs no action",
    ),
    (
        "unknown reminder action",
        with_step(0, step_type="approval", action=None, approval={"reminder_action": "std.lgo"}),
        "steps[0].approval.reminder_action",
        "unknown_action",
        "did you mean 'std.log'",
    ),
    (
        "agent step without its agent spec",
        with_step(0, step_type="agent"),
        "steps[0].agent",
        "missing_agent",
        "an agent step needs",
    ),
    (
        "action step without action",
        with_step(0, action=None),
        "steps[0].action",
        "missing_action",
        "needs `action",
    ),
    (
        "unknown action",
        with_step(0, action="std.ecko"),
        "steps[0].action",
        "unknown_action",
        "did you mean 'std.echo'",
    ),
    (
        "unknown rollback action",
        with_step(0, rollback_actions=["refund.card"]),
        "steps[0].rollback_actions[0]",
        "unknown_action",
        "--actions",
    ),
    (
        "unknown error handler",
        with_step(0, error_handlers=["std.lg"]),
        "steps[0].error_handlers[0]",
        "unknown_action",
        "did you mean 'std.log'",
    ),
    (
        "expression syntax error",
        with_step(0, input_mapping={"x": "input.amount +"}),
        "steps[0].input_mapping.x",
        "invalid_expression",
        "Syntax error",
    ),
    (
        "expression unknown name",
        with_step(0, input_mapping={"x": "inptu.amount"}),
        "steps[0].input_mapping.x",
        "unknown_name",
        "'inptu'",
    ),
    (
        "result outside output_mapping",
        with_step(0, input_mapping={"x": "result.id"}),
        "steps[0].input_mapping.x",
        "unknown_name",
        "'result'",
    ),
    (
        "expression reads unknown step",
        with_step(1, input_mapping={"x": "steps.chrage.output"}),
        "steps[1].input_mapping.x",
        "unknown_step_reference",
        "did you mean 'charge'",
    ),
    (
        "guard syntax error",
        with_step(0, conditions=[{"when": "input.a ="}]),
        "steps[0].conditions[0].when",
        "invalid_expression",
        "Syntax error",
    ),
    (
        "guard with next_steps",
        with_step(0, conditions=[{"when": "true", "next_steps": ["ship"]}]),
        "steps[0].conditions[0].next_steps",
        "next_steps_outside_conditional",
        "only conditional",
    ),
    (
        "next_steps on action step",
        with_step(0, next_steps=["ship"]),
        "steps[0].next_steps",
        "next_steps_outside_conditional",
        "use dependencies",
    ),
    (
        "expression too long",
        with_step(0, input_mapping={"x": "1 + " * 2000 + "1"}),
        "steps[0].input_mapping.x",
        "invalid_expression",
        "limit is 4096",
    ),
    (
        "output mapping unknown name",
        with_step(0, output_mapping={"y": "reslt.id"}),
        "steps[0].output_mapping.y",
        "unknown_name",
        "'reslt'",
    ),
    (
        "bad JSON schema type",
        with_step(0, input_validation={"type": "numbr"}),
        "steps[0].input_validation.type",
        "invalid_json_schema",
        "not a valid JSON Schema",
    ),
    (
        "bad JSON schema required",
        with_step(0, input_validation={"required": "amount"}),
        "steps[0].input_validation.required",
        "invalid_json_schema",
        "not a valid JSON Schema",
    ),
    (
        "negative timeout",
        with_step(0, timeout=-1),
        "steps[0].timeout",
        "greater_than",
        "greater than 0",
    ),
    ("timeout wrong type", base(timeout="soon"), "timeout", "float_parsing", "'soon'"),
    (
        "zero max_parallel_steps",
        base(max_parallel_steps=0),
        "max_parallel_steps",
        "greater_than_equal",
        "greater than or equal to 1",
    ),
    (
        "retry max_attempts zero",
        with_step(0, retry_policy={"max_attempts": 0}),
        "steps[0].retry_policy.max_attempts",
        "greater_than_equal",
        "greater than or equal",
    ),
    (
        "unknown retry key",
        base(retry_policy={"max_retries": 3}),
        "retry_policy.max_retries",
        "extra_forbidden",
        "did you mean 'max_attempts'",
    ),
    (
        "threshold above one",
        base(retry_policy={"parallel_failure_threshold": 1.5}),
        "retry_policy.parallel_failure_threshold",
        "less_than_equal",
        "less than or equal to 1",
    ),
    (
        "global_variables not a mapping",
        base(global_variables=[1, 2]),
        "global_variables",
        "dict_type",
        "valid dictionary",
    ),
    (
        "input_mapping value not a string",
        with_step(0, input_mapping={"x": 5}),
        "steps[0].input_mapping.x",
        "string_type",
        "valid string",
    ),
    (
        "sla for unknown step",
        base(sla_targets={"step_max_seconds": {"chargee": 3}}),
        "sla_targets.step_max_seconds.chargee",
        "unknown_step",
        "did you mean 'charge'",
    ),
    (
        "dependency on nested step",
        base(
            steps=[
                {
                    "step_id": "box",
                    "step_type": "parallel",
                    "parallel_steps": [{"step_id": "inner", "action": "std.echo"}],
                },
                {"step_id": "after", "action": "std.echo", "dependencies": ["inner"]},
            ]
        ),
        "steps[1].dependencies[0]",
        "unknown_dependency",
        "not at this level",
    ),
    (
        "too many steps",
        {"workflow_id": "big", "steps": chain(MAX_STEPS + 1)},
        "steps",
        "too_many_steps",
        "the limit is",
    ),
    (
        "definition too large",
        base(global_variables={"blob": "x" * 1_600_000}),
        "$",
        "definition_too_large",
        "the limit is",
    ),
    (
        "nesting too deep",
        nested(20),
        "steps[0]" + ".parallel_steps[0]" * 16,
        "too_deep",
        "deeper than",
    ),
]
