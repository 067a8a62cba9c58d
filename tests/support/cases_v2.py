"""Malformed definitions of the language's second edition (sub-workflows, events, mutexes):
(case id, definition, expected path, expected code, fragment of the message)."""

from __future__ import annotations

from typing import Any

from tests.support.cases import base, with_step


def _call(**spec: Any) -> dict[str, Any]:
    return with_step(1, step_type="workflow", action=None, workflow=spec)


REFUND = {"steps": [{"step_id": "pay_back", "action": "std.echo"}]}

LANGUAGE_CASES: list[tuple[str, Any, str, str, str]] = [
    (
        "workflow step without name or file",
        _call(wait=True),
        "steps[1].workflow",
        "missing_workflow",
        "exactly one of",
    ),
    (
        "workflow step with both name and file",
        _call(name="refund", file="refund.yaml"),
        "steps[1].workflow",
        "missing_workflow",
        "exactly one of",
    ),
    (
        "workflow step calling an unknown name",
        {**_call(name="refnd"), "definitions": {"refund": REFUND}},
        "steps[1].workflow.name",
        "unknown_definition",
        "did you mean 'refund'",
    ),
    (
        "workflow step with a file not inlined",
        _call(file="refund.yaml"),
        "steps[1].workflow.file",
        "definition_file",
        "not inlined",
    ),
    (
        "max_depth on an action step",
        with_step(0, max_depth=3),
        "steps[0].max_depth",
        "unexpected_max_depth",
        "only applies to workflow steps",
    ),
    (
        "max_depth over the limit",
        {**_call(name="refund"), "definitions": {"refund": REFUND}, "steps": None}
        | {"steps": [_call(name="refund")["steps"][1] | {"max_depth": 1000}]},
        "steps[0].max_depth",
        "less_than_equal",
        "100",
    ),
    (
        "a named definition that does not validate",
        base(definitions={"refund": {"steps": [{"step_id": "x", "action": "std.ech"}]}}),
        "definitions.refund.steps[0].action",
        "unknown_action",
        "did you mean 'std.echo'",
    ),
    (
        "a named definition with definitions of its own",
        base(definitions={"refund": {**REFUND, "definitions": {}}}),
        "definitions.refund.definitions",
        "invalid_definition",
        "share the document's top-level",
    ),
    (
        "a definition name that cannot be a workflow id",
        base(definitions={"Refund Flow": REFUND}),
        "definitions.Refund Flow",
        "invalid_definition",
        "cannot name a definition",
    ),
    (
        "event step without settings",
        with_step(1, step_type="event", action=None),
        "steps[1].event",
        "missing_event",
        "name, schema, transient",
    ),
    (
        "event settings on an action step",
        with_step(1, event={"name": "payment"}),
        "steps[1].event",
        "unexpected_event",
        "only applies to event steps",
    ),
    (
        "event name with spaces",
        with_step(1, step_type="event", action=None, event={"name": "pay ment"}),
        "steps[1].event.name",
        "string_pattern_mismatch",
        "does not match",
    ),
    (
        "event schema that is not a JSON Schema",
        with_step(
            1, step_type="event", action=None, event={"name": "p", "schema": {"type": "objec"}}
        ),
        "steps[1].event.schema.type",
        "invalid_json_schema",
        "not a valid JSON Schema",
    ),
    (
        "event schema with a catastrophic pattern",
        with_step(
            1,
            step_type="event",
            action=None,
            event={"name": "p", "schema": {"type": "string", "pattern": "(a+)+$"}},
        ),
        "steps[1].event.schema.pattern",
        "catastrophic_pattern",
        "",
    ),
    (
        "mutex that does not parse",
        with_step(0, mutex='"deploy-" +'),
        "steps[0].mutex",
        "invalid_expression",
        "",
    ),
    (
        "mutex reading an unknown name",
        with_step(0, mutex="env"),
        "steps[0].mutex",
        "unknown_name",
        "names in scope",
    ),
]

LANGUAGE_CASES += [
    (
        "an approver listed twice under another spelling",
        with_step(
            1,
            step_type="approval",
            action=None,
            approval={"approvers": ["alice", "Alice ", "bob"], "required_approvals": 2},
        ),
        "steps[1].approval.approvers[1]",
        "duplicate_approver",
        "are the same person",
    ),
]
