"""The shape of each step type, as a table: which fields a step of that type needs, which it
must not have, and its own checks. `validate._Checker` applies it; `RULES` has one entry per
`StepType` (a unit test checks that)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from workflows.dsl.diagnostics import DiagnosticCode
from workflows.dsl.models import StepType, WorkflowStep

Need = Literal["required", "allowed", "never"]

# fields only some step types may carry, in the order their misuse is reported
OWN_FIELDS: dict[str, tuple[DiagnosticCode, str]] = {
    "loop_condition": (
        DiagnosticCode.UNEXPECTED_LOOP_CONDITION,
        "loop_condition only applies to loop steps",
    ),
    "wait": (DiagnosticCode.UNEXPECTED_WAIT, "`wait` only applies to wait steps"),
    "next_steps": (
        DiagnosticCode.NEXT_STEPS_OUTSIDE_CONDITIONAL,
        "next_steps only applies to conditional steps: use dependencies instead",
    ),
    "approval": (DiagnosticCode.UNEXPECTED_APPROVAL, "`approval` only applies to approval steps"),
    "agent": (DiagnosticCode.UNEXPECTED_AGENT, "`agent` only applies to agent steps"),
    "router": (DiagnosticCode.UNEXPECTED_ROUTER, "`router` only applies to conditional steps"),
    "map": (DiagnosticCode.UNEXPECTED_MAP, "`map` only applies to map steps"),
    "completion": (
        DiagnosticCode.UNEXPECTED_COMPLETION,
        "`completion` only applies to parallel and map steps",
    ),
    "terminate": (
        DiagnosticCode.UNEXPECTED_TERMINATE,
        "`terminate` only applies to terminate steps",
    ),
    "event": (DiagnosticCode.UNEXPECTED_EVENT, "`event` only applies to event steps"),
    "workflow": (DiagnosticCode.UNEXPECTED_WORKFLOW, "`workflow` only applies to workflow steps"),
    "max_depth": (
        DiagnosticCode.UNEXPECTED_MAX_DEPTH,
        "`max_depth` only applies to workflow steps (it bounds their recursion)",
    ),
}


class Report(Protocol):
    """Where a rule reports (the validator)."""

    def error(self, path: str, code: DiagnosticCode, message: str) -> None: ...

    def check_approval(self, step: WorkflowStep, path: str) -> None: ...

    def check_model(self, model: str | None, path: str) -> None: ...

    def check_schema(self, schema: dict[str, object], path: str) -> None: ...


Check = Callable[[WorkflowStep, str, Report], None]


@dataclass(frozen=True)
class StepRule:
    """What a step type needs: an action, children, its own fields, its own checks."""

    action: Need
    children: Need
    owns: frozenset[str] = field(default_factory=frozenset)
    check: Check | None = None
    loop_names: bool = False
    """Its mappings see `iteration` and `result` (the loop names)."""
    local: bool = False
    """It may run its action as a local activity (`execution: local`)."""


def _loop(step: WorkflowStep, path: str, report: Report) -> None:
    if not step.loop_condition:
        report.error(
            f"{path}.loop_condition",
            DiagnosticCode.MISSING_LOOP_CONDITION,
            "a loop needs loop_condition (CEL over result, iteration, vars): "
            "it repeats while the condition is true",
        )
    if bool(step.action) == bool(step.parallel_steps):
        report.error(
            f"{path}.action",
            DiagnosticCode.LOOP_BODY,
            "a loop needs exactly one body: `action` or `parallel_steps`",
        )


def _wait(step: WorkflowStep, path: str, report: Report) -> None:
    spec = step.wait
    given = (
        []
        if spec is None
        else [v for v in (spec.seconds, spec.until, spec.condition) if v is not None]
    )
    if len(given) != 1:
        report.error(
            f"{path}.wait",
            DiagnosticCode.MISSING_WAIT,
            "a wait step needs exactly one of `wait: {seconds: N}`, "
            "`wait: {until: <CEL timestamp>}` or `wait: {condition: <CEL>}`",
        )


def _conditional(step: WorkflowStep, path: str, report: Report) -> None:
    if not step.conditions:
        report.error(
            f"{path}.conditions",
            DiagnosticCode.MISSING_CONDITIONS,
            "a conditional step needs conditions: [{when, next_steps}]",
        )
        return
    branches = [set(c.next_steps) for c in step.conditions] + [set(step.next_steps)]
    for target in sorted(set.intersection(*branches)):
        report.error(
            f"{path}.next_steps",
            DiagnosticCode.BRANCH_TARGET_UNCONDITIONAL,
            f"step '{target}' is a target of every branch, so it always runs: make it "
            f"depend on '{step.step_id}' instead",
        )


def _approval(step: WorkflowStep, path: str, report: Report) -> None:
    report.check_approval(step, path)
    if step.approval is None:
        return
    for people in ("approvers", "escalate_to"):
        seen: dict[str, str] = {}
        for k, name in enumerate(getattr(step.approval, people)):
            key = same_person(name)
            if key in seen:
                report.error(
                    f"{path}.approval.{people}[{k}]",
                    DiagnosticCode.DUPLICATE_APPROVER,
                    f"{name!r} and {seen[key]!r} are the same person (names compare after "
                    "Unicode NFKC, case folding and stripping): list each approver once",
                )
            elif not key:
                report.error(
                    f"{path}.approval.{people}[{k}]",
                    DiagnosticCode.DUPLICATE_APPROVER,
                    "an empty approver name: remove it",
                )
            seen.setdefault(key, name)


def same_person(name: str) -> str:
    """An approver's name as compared: Unicode NFKC, case-folded, stripped (`alice`, `Alice `
    and the full-width `ALICE` are one person)."""
    return unicodedata.normalize("NFKC", name).casefold().strip()


def _agent(step: WorkflowStep, path: str, report: Report) -> None:
    if step.agent is None:
        report.error(
            f"{path}.agent",
            DiagnosticCode.MISSING_AGENT,
            "an agent step needs `agent: {instructions, tools, max_iterations, model}`",
        )
    else:
        report.check_model(step.agent.model, f"{path}.agent.model")


def _parallel(step: WorkflowStep, path: str, report: Report) -> None:
    spec = step.completion
    if spec is not None and step.parallel_steps and spec.min_successes > len(step.parallel_steps):
        report.error(
            f"{path}.completion.min_successes",
            DiagnosticCode.COMPLETION_UNREACHABLE,
            f"{spec.min_successes} successes required but the container has "
            f"{len(step.parallel_steps)} children",
        )


RESERVED_NAMES = frozenset({"input", "vars", "steps", "now", "result", "iteration", "index"})


def _map(step: WorkflowStep, path: str, report: Report) -> None:
    spec = step.map
    if spec is None:
        report.error(
            f"{path}.map",
            DiagnosticCode.MISSING_MAP,
            "a map step needs `map: {items: <CEL list>, as: NAME, step: {...}}`",
        )
        return
    body = spec.step
    if body.dependencies:
        report.error(
            f"{path}.map.step.dependencies",
            DiagnosticCode.MAP_BODY,
            "the body of a map runs once per item on its own: it has no dependencies (give "
            "them to the map step)",
        )
    if body.parallel_steps or body.map is not None or body.step_type == StepType.CONDITIONAL:
        report.error(
            f"{path}.map.step.step_type",
            DiagnosticCode.MAP_BODY,
            f"a map's body is one step run per item: a {body.step_type} step with children or "
            "branches cannot be (map over a sub-workflow or an action instead)",
        )
    if spec.as_ in RESERVED_NAMES:
        report.error(
            f"{path}.map.as",
            DiagnosticCode.MAP_BODY,
            f"the item name {spec.as_!r} hides a name expressions use: choose another "
            "(e.g. `item`, `order`)",
        )


def _terminate(step: WorkflowStep, path: str, report: Report) -> None:
    if step.terminate is None:
        report.error(
            f"{path}.terminate",
            DiagnosticCode.MISSING_TERMINATE,
            "a terminate step needs `terminate: {status: completed | failed, message, error_type}`",
        )


def _event(step: WorkflowStep, path: str, report: Report) -> None:
    if step.event is None:
        report.error(
            f"{path}.event",
            DiagnosticCode.MISSING_EVENT,
            "an event step needs `event: {name, schema, transient}`",
        )
    elif step.event.schema_:
        report.check_schema(step.event.schema_, f"{path}.event.schema")


def _workflow(step: WorkflowStep, path: str, report: Report) -> None:
    spec = step.workflow
    if spec is None or (spec.name is None) == (spec.file is None):
        report.error(
            f"{path}.workflow",
            DiagnosticCode.MISSING_WORKFLOW,
            "a workflow step needs exactly one of `workflow: {name: NAME}` (a key of "
            "`definitions`) and `workflow: {file: PATH}`",
        )


RULES: dict[StepType, StepRule] = {
    StepType.ACTION: StepRule(action="required", children="never", local=True),
    StepType.PARALLEL: StepRule(
        action="never", children="required", owns=frozenset({"completion"}), check=_parallel
    ),
    StepType.LOOP: StepRule(
        action="allowed",
        children="allowed",
        owns=frozenset({"loop_condition"}),
        check=_loop,
        loop_names=True,
        local=True,
    ),
    StepType.CONDITIONAL: StepRule(
        action="never",
        children="never",
        owns=frozenset({"next_steps", "router"}),
        check=_conditional,
    ),
    StepType.APPROVAL: StepRule(
        action="never", children="never", owns=frozenset({"approval"}), check=_approval
    ),
    StepType.AGENT: StepRule(
        action="allowed", children="never", owns=frozenset({"agent"}), check=_agent
    ),
    StepType.MAP: StepRule(
        action="never", children="never", owns=frozenset({"map", "completion"}), check=_map
    ),
    StepType.TERMINATE: StepRule(
        action="never", children="never", owns=frozenset({"terminate"}), check=_terminate
    ),
    StepType.WAIT: StepRule(
        action="never", children="never", owns=frozenset({"wait"}), check=_wait
    ),
    StepType.EVENT: StepRule(
        action="never", children="never", owns=frozenset({"event"}), check=_event
    ),
    StepType.WORKFLOW: StepRule(
        action="never",
        children="never",
        owns=frozenset({"workflow", "max_depth"}),
        check=_workflow,
    ),
}


def check_step_shape(step: WorkflowStep, path: str, report: Report) -> None:
    """The fields each step type needs, and the ones it must not have (`RULES`)."""
    kind = step.step_type
    rule = RULES[kind]
    if rule.action == "required" and not step.action:
        report.error(
            f"{path}.action",
            DiagnosticCode.MISSING_ACTION,
            f"{_a(kind)} step needs `action: <name>`",
        )
    if rule.action == "never" and step.action:
        report.error(
            f"{path}.action",
            DiagnosticCode.UNEXPECTED_ACTION,
            f"a {kind} step runs no action: move it into a step of its own",
        )
    if rule.children == "required" and not step.parallel_steps:
        report.error(
            f"{path}.parallel_steps",
            DiagnosticCode.EMPTY_CONTAINER,
            f"a {kind} step needs parallel_steps: the children to run",
        )
    if rule.children == "never" and step.parallel_steps:
        report.error(
            f"{path}.parallel_steps",
            DiagnosticCode.UNEXPECTED_CHILDREN,
            f"a {kind} step has no children: use step_type parallel (or loop)",
        )
    if rule.check is not None:
        rule.check(step, path, report)
    for name, (code, message) in OWN_FIELDS.items():
        if name not in rule.owns and getattr(step, name) not in (None, []):
            report.error(f"{path}.{name}", code, message)
    if step.execution == "local":
        if not rule.local or not step.action:
            report.error(
                f"{path}.execution",
                DiagnosticCode.LOCAL_WITHOUT_ACTION,
                "execution: local applies to steps that run an action",
            )
        if step.agent_capability:
            report.error(
                f"{path}.execution",
                DiagnosticCode.LOCAL_WITH_CAPABILITY,
                "a local activity runs on the workflow's worker: it cannot be routed to "
                "agent_capability's task queue",
            )
    if step.router is not None:
        report.check_model(step.router.model, f"{path}.router.model")


def _a(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind
