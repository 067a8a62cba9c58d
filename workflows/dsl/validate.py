"""Static validation of definitions: every problem becomes a Diagnostic (path, code, message).

The same function runs at the edge (CLI, client) and again inside the workflow, so a definition
that slipped past the edge still fails fast with the same words instead of stalling a task.
A diagnostic names the place, the bad value and the fix:
`steps[2].dependencies[0]: unknown_dependency: unknown step 'chrage'; did you mean 'charge'?`
The codes are `DiagnosticCode` members (workflows/dsl/diagnostics.py, docs/diagnostics.md).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Iterator, Sequence
from typing import Any

from pydantic import ValidationError

from activities.contracts import model_problem
from workflows.dsl.diagnostics import Diagnostic, DiagnosticCode, ValidationReport
from workflows.dsl.errors import did_you_mean, format_path, pydantic_diagnostics
from workflows.dsl.expressions import (
    BASE_NAMES,
    LOOP_NAMES,
    RESULT_NAMES,
    ExpressionError,
    compile_expression,
)
from workflows.dsl.loader import ShapeError, check_shape
from workflows.dsl.metric_rules import metric_problems, tag_problems
from workflows.dsl.models import AdvancedWorkflow, StepType, WorkflowStep
from workflows.dsl.plan import find_cycle, upstream_edges
from workflows.dsl.rules import RULES, check_step_shape
from workflows.dsl.schemas import schema_problems
from workflows.dsl.subworkflows import named_definition_problems, subworkflow_problems

# The run input (definition + input) must stay under Temporal's 2 MB payload limit.
MAX_DEFINITION_BYTES = 1_572_864
MAX_INPUT_BYTES = 1_048_576
MAX_STEPS = 20_000
MAX_NESTING = 16

# Step types whose execution lands in later work; until then they are refused, never ignored.
UNSUPPORTED_STEP_TYPES: dict[StepType, str] = {}


CACHED_MAX_CHARS = 256 * 1024
"""Definitions up to this size (JSON) have their reports remembered (see validate_cached)."""


def validate_cached(
    data: dict[str, Any] | AdvancedWorkflow, known_actions: Collection[str] | None = None
) -> ValidationReport:
    """`validate_definition`, remembering the last 32 reports by the definition's content, so a
    definition started many times is checked once per process (clients and workers; about 2 ms
    for 100 steps). Validation is a pure function of the definition, so a remembered report is
    what validating again would give: replay-safe. Callers must not change the report."""
    if not isinstance(data, dict):
        return validate_definition(data, known_actions)
    try:
        check_shape(data)  # bounded first: json.dumps would expand shared references
        text = json.dumps(data, separators=(",", ":"))
    except (ShapeError, TypeError, ValueError, RecursionError):
        return validate_definition(data, known_actions)
    if len(text) > CACHED_MAX_CHARS:
        return validate_definition(data, known_actions)
    known = None if known_actions is None else tuple(sorted(known_actions))
    return _validated(text, known)


@functools.lru_cache(maxsize=32)
def _validated(text: str, known_actions: tuple[str, ...] | None) -> ValidationReport:
    return validate_definition(json.loads(text), known_actions)


def validate_definition(
    data: dict[str, Any] | AdvancedWorkflow,
    known_actions: Collection[str] | None = None,
    definition_names: Collection[str] | None = None,
) -> ValidationReport:
    """Validate a definition given as parsed data (or an already built model).

    Args:
        data: the parsed YAML/JSON document, or an `AdvancedWorkflow`.
        known_actions: action names the worker registers; None skips the action-name check.
        definition_names: for a named definition: the names its workflow steps may call (the
            document's `definitions`, checked by the document's own validation).
    """
    if isinstance(data, AdvancedWorkflow):
        definition = data
    else:
        refused = _too_large(data)
        if refused is not None:
            return ValidationReport(None, [refused])
        try:
            definition = AdvancedWorkflow.model_validate(data)
        except ValidationError as exc:
            return ValidationReport(None, list(pydantic_diagnostics(exc)))
        except RecursionError:
            too_deep = f"nesting is deeper than {MAX_NESTING}"
            return ValidationReport(None, [Diagnostic("steps", DiagnosticCode.TOO_DEEP, too_deep)])
    checker = _Checker(definition, known_actions, definition_names)
    checker.run()
    if definition_names is None and definition.definitions:
        checker.diagnostics += named_definition_problems(
            definition, lambda body, names: validate_definition(body, known_actions, names)
        )
    return ValidationReport(definition, checker.diagnostics)


def _too_large(data: Any) -> Diagnostic | None:
    """Why a document is refused before it is modelled (not a mapping, too large, too deep,
    too many steps): checked on its shape first, so no size bomb reaches pydantic or JSON."""
    if not isinstance(data, dict):
        return Diagnostic(
            "$",
            DiagnosticCode.NOT_A_MAPPING,
            f"a definition is a mapping with workflow_id and steps, got {type(data).__name__}",
        )
    try:
        check_shape(data)
    except ShapeError as exc:
        return Diagnostic("$", DiagnosticCode.TOO_LARGE, str(exc))
    count = _count_steps(data)
    if count > MAX_STEPS:
        return Diagnostic(
            "steps",
            DiagnosticCode.TOO_MANY_STEPS,
            f"{count} steps; the limit is {MAX_STEPS}: split the workflow",
        )
    size = len(json.dumps(data, default=str))
    if size > MAX_DEFINITION_BYTES:
        return Diagnostic(
            "$",
            DiagnosticCode.DEFINITION_TOO_LARGE,
            f"definition is {size} bytes as JSON; the limit is {MAX_DEFINITION_BYTES}:"
            " move large constants into the run input or an action",
        )
    return None


def input_diagnostics(value: Any) -> list[Diagnostic]:
    """Problems of a run input: it must be a JSON object of bounded shape and size."""
    if not isinstance(value, dict):
        return [
            Diagnostic("input", DiagnosticCode.NOT_A_MAPPING, "the run input must be a JSON object")
        ]
    try:
        check_shape(value)
        size = len(json.dumps(value, allow_nan=False))
    except ShapeError as exc:
        return [Diagnostic("input", DiagnosticCode.INPUT_TOO_LARGE, f"the run input {exc}")]
    except (TypeError, ValueError) as exc:
        return [
            Diagnostic("input", DiagnosticCode.NOT_JSON, f"the run input is not plain JSON: {exc}")
        ]
    if size > MAX_INPUT_BYTES:
        return [
            Diagnostic(
                "input",
                DiagnosticCode.INPUT_TOO_LARGE,
                f"the run input is {size} bytes as JSON; the limit is {MAX_INPUT_BYTES}: pass "
                "a reference to large data (a URL, a storage key) instead",
            )
        ]
    return []


def _count_steps(data: dict[str, Any]) -> int:
    count = 0
    stack: list[Any] = [data.get("steps")]
    while stack:
        steps = stack.pop()
        if not isinstance(steps, list):
            continue
        count += len(steps)
        stack.extend(s.get("parallel_steps") for s in steps if isinstance(s, dict))
    return count


class _Checker:
    """Semantic checks over a structurally valid definition."""

    def __init__(
        self,
        definition: AdvancedWorkflow,
        known_actions: Collection[str] | None,
        definition_names: Collection[str] | None,
    ):
        self.definition = definition
        self.definition_names = (
            definition.definitions if definition_names is None else definition_names
        )
        self.known_actions = set(known_actions) if known_actions is not None else None
        self.diagnostics: list[Diagnostic] = []
        self.step_paths: dict[str, str] = {}

    def error(self, path: str, code: DiagnosticCode, message: str) -> None:
        self.diagnostics.append(Diagnostic(path, code, message))

    def warn(self, path: str, code: DiagnosticCode, message: str) -> None:
        self.diagnostics.append(Diagnostic(path, code, message, "warning"))

    def run(self) -> None:
        d = self.definition
        if not d.steps:
            self.error("steps", DiagnosticCode.NO_STEPS, "a workflow needs at least one step")
        self._collect_ids(d.steps, "steps", depth=1)
        self._bound = _bound_names(d.steps)
        self._check_level(d.steps, "steps")
        for step, path in self._walk(d.steps, "steps"):
            self._check_step(step, path)
        self._check_run_timeout(d)
        self.diagnostics += tag_problems(d.tags)
        if d.sla_targets is not None:
            for sid in d.sla_targets.step_max_seconds:
                if sid not in self.step_paths:
                    self.error(
                        f"sla_targets.step_max_seconds.{sid}",
                        DiagnosticCode.UNKNOWN_STEP,
                        f"unknown step '{sid}'" + did_you_mean(sid, self.step_paths),
                    )

    def _check_run_timeout(self, d: AdvancedWorkflow) -> None:
        """A run that waits for people or other systems should say how long it may take."""
        if "timeout" in d.model_fields_set:
            return
        waits = [
            path
            for step, path in self._walk(d.steps, "steps")
            if step.step_type in (StepType.APPROVAL, StepType.EVENT)
        ]
        if waits:
            self.warn(
                "timeout",
                DiagnosticCode.RUN_TIMEOUT_DEFAULT,
                f"{waits[0]} waits for a decision or an event, but the run has no `timeout`: "
                f"it ends after the default {d.timeout:g} s, decided or not; set `timeout` to "
                "how long the run may take (e.g. 604800 for a week)",
            )

    def _walk(self, steps: Sequence[WorkflowStep], base: str) -> Iterator[tuple[WorkflowStep, str]]:
        stack = [(s, f"{base}[{i}]") for i, s in reversed(list(enumerate(steps)))]
        while stack:
            step, path = stack.pop()
            yield step, path
            stack.extend(reversed(_children(step, path)))

    def _collect_ids(self, steps: Sequence[WorkflowStep], base: str, depth: int) -> None:
        for step, path in self._walk(steps, base):
            if path.count("parallel_steps") + path.count(".map.step") + 1 > MAX_NESTING:
                self.error(
                    path, DiagnosticCode.TOO_DEEP, f"steps nest deeper than {MAX_NESTING} levels"
                )
                continue
            if step.step_id in self.step_paths:
                self.error(
                    f"{path}.step_id",
                    DiagnosticCode.DUPLICATE_STEP_ID,
                    f"step id '{step.step_id}' is already used at {self.step_paths[step.step_id]}: "
                    "step ids must be unique across the whole definition",
                )
            else:
                self.step_paths[step.step_id] = path

    def _check_level(self, steps: Sequence[WorkflowStep], base: str) -> None:
        """Dependencies and branch targets refer to steps of the same level; no cycles."""
        level_ids = {s.step_id for s in steps}
        for i, step in enumerate(steps):
            path = f"{base}[{i}]"
            for j, dep in enumerate(step.dependencies):
                where = f"{path}.dependencies[{j}]"
                if dep == step.step_id:
                    self.error(
                        where,
                        DiagnosticCode.SELF_DEPENDENCY,
                        f"step '{dep}' depends on itself: remove it",
                    )
                elif dep not in level_ids:
                    self._unknown_ref(where, DiagnosticCode.UNKNOWN_DEPENDENCY, dep, level_ids)
            targets = [(f"{path}.next_steps[{j}]", t) for j, t in enumerate(step.next_steps)]
            for k, cond in enumerate(step.conditions):
                targets += [
                    (f"{path}.conditions[{k}].next_steps[{j}]", t)
                    for j, t in enumerate(cond.next_steps)
                ]
            for where, target in targets:
                if target not in level_ids:
                    self._unknown_ref(where, DiagnosticCode.UNKNOWN_NEXT_STEP, target, level_ids)
            if step.parallel_steps:
                self._check_level(step.parallel_steps, f"{path}.parallel_steps")
        cycle = find_cycle(upstream_edges(steps))
        if cycle and len(cycle) > 2:
            index = {s.step_id: i for i, s in enumerate(steps)}
            loop = cycle[:-1]
            first = min(range(len(loop)), key=lambda i: index[loop[i]])
            loop = loop[first:] + loop[:first]
            cycle = [*loop, loop[0]]
            self.error(
                f"{base}[{index[cycle[0]]}].dependencies",
                DiagnosticCode.DEPENDENCY_CYCLE,
                "steps wait for each other in a cycle: "
                + " -> ".join(cycle)
                + "; remove one of these dependencies",
            )

    def _unknown_ref(self, where: str, code: DiagnosticCode, ref: str, level_ids: set[str]) -> None:
        if ref in self.step_paths:
            self.error(
                where,
                code,
                f"step '{ref}' is at {self.step_paths[ref]}, not at this level: a step may only "
                "refer to steps of its own list",
            )
        else:
            hint = did_you_mean(ref, level_ids) or (
                f"; known steps: {', '.join(sorted(level_ids)[:10])}" if level_ids else ""
            )
            self.error(where, code, f"unknown step '{ref}'{hint}")

    def _check_step(self, step: WorkflowStep, path: str) -> None:
        kind = step.step_type
        if kind in UNSUPPORTED_STEP_TYPES:
            self.error(
                f"{path}.step_type",
                DiagnosticCode.UNSUPPORTED_STEP_TYPE,
                f"{UNSUPPORTED_STEP_TYPES[kind]} (step_type '{kind}') are not supported yet by "
                "this version of cadenza",
            )
        check_step_shape(step, path, self)
        self.diagnostics += metric_problems(step, path)
        for k, cond in enumerate(step.conditions):
            if kind != StepType.CONDITIONAL and cond.next_steps:
                self.error(
                    f"{path}.conditions[{k}].next_steps",
                    DiagnosticCode.NEXT_STEPS_OUTSIDE_CONDITIONAL,
                    "a guard has no next_steps: only conditional steps branch",
                )
        bound = self._bound.get(step.step_id, frozenset())  # a map body's item and index
        base = BASE_NAMES | bound
        for k, cond in enumerate(step.conditions):
            self._expression(f"{path}.conditions[{k}].when", cond.when, base)
        loop = RULES[kind].loop_names
        mapping_names = (LOOP_NAMES if loop else BASE_NAMES) | bound
        for name, expr in step.input_mapping.items():
            self._expression(f"{path}.input_mapping.{name}", expr, mapping_names)
        output_names = (LOOP_NAMES if loop else RESULT_NAMES) | bound
        for name, expr in step.output_mapping.items():
            self._expression(f"{path}.output_mapping.{name}", expr, output_names)
        if step.loop_condition is not None:
            self._expression(f"{path}.loop_condition", step.loop_condition, LOOP_NAMES | bound)
        if step.wait is not None and step.wait.until is not None:
            self._expression(f"{path}.wait.until", step.wait.until, base)
        if step.wait is not None and step.wait.condition is not None:
            self._expression(f"{path}.wait.condition", step.wait.condition, base)
        if step.map is not None:
            self._expression(f"{path}.map.items", step.map.items, base)
        if step.action:
            self._action(f"{path}.action", step.action)
        for j, name in enumerate(step.error_handlers):
            self._action(f"{path}.error_handlers[{j}]", name)
        for j, name in enumerate(step.rollback_actions):
            self._action(f"{path}.rollback_actions[{j}]", name)
        if step.agent is not None:
            for j, name in enumerate(step.agent.tools):
                self._action(f"{path}.agent.tools[{j}]", name)
        if step.input_validation:
            self.check_schema(step.input_validation, f"{path}.input_validation")
        if step.mutex is not None:
            self._expression(f"{path}.mutex", step.mutex, base)
        if step.workflow is not None:
            self.diagnostics += subworkflow_problems(step.workflow, path, self.definition_names)

    def check_schema(self, schema: dict[str, Any], path: str) -> None:
        for where, code, message in schema_problems(schema):
            self.error(format_path([path, *where]), code, message)

    def check_model(self, model: str | None, path: str) -> None:
        problem = model_problem(model) if model is not None else None
        if problem is not None:
            self.error(path, DiagnosticCode.INVALID_MODEL, problem)

    def check_approval(self, step: WorkflowStep, path: str) -> None:
        spec = step.approval
        if spec is None:
            return  # defaults: anyone may approve, one approval
        if spec.approvers and spec.required_approvals > len(spec.approvers):
            self.error(
                f"{path}.approval.required_approvals",
                DiagnosticCode.QUORUM_UNREACHABLE,
                f"{spec.required_approvals} approvals required but only "
                f"{len(spec.approvers)} approvers listed",
            )
        if spec.on_timeout == "escalate" and not spec.escalate_to:
            self.error(
                f"{path}.approval.escalate_to",
                DiagnosticCode.MISSING_ESCALATE_TO,
                "on_timeout: escalate needs escalate_to: the approvers asked next",
            )
        if spec.escalate_to and spec.on_timeout != "escalate":
            self.warn(
                f"{path}.approval.escalate_to",
                DiagnosticCode.ESCALATION_UNUSED,
                f"escalate_to is ignored: on_timeout is {spec.on_timeout!r}",
            )
        if "timeout" not in step.model_fields_set and (
            spec.on_timeout != "reject" or spec.escalation_timeout is not None
        ):
            self.warn(
                f"{path}.approval.on_timeout",
                DiagnosticCode.ON_TIMEOUT_WITHOUT_TIMEOUT,
                f"on_timeout {spec.on_timeout!r} never acts: the step has no `timeout` of its "
                "own, so it waits until decided (or the run's timeout); set the step's `timeout`",
            )
        self._action(f"{path}.approval.reminder_action", spec.reminder_action)

    def _expression(self, path: str, source: str, allowed: frozenset[str]) -> None:
        try:
            expr = compile_expression(source)
        except ExpressionError as exc:
            code = exc.code  # invalid_expression, unknown_function, expression_too_costly
            self.error(path, code, exc.reason)
            return
        unknown = sorted(expr.names - allowed)
        if unknown:
            self.error(
                path,
                DiagnosticCode.UNKNOWN_NAME,
                f"expression {source!r} reads {', '.join(repr(n) for n in unknown)}"
                f"{did_you_mean(unknown[0], allowed)}; names in scope here: "
                f"{', '.join(sorted(allowed))}",
            )
        for ref in sorted(r for r in expr.step_references if r not in self.step_paths):
            self.error(
                path,
                DiagnosticCode.UNKNOWN_STEP_REFERENCE,
                f"expression {source!r} reads steps.{ref}, which is not a step"
                + did_you_mean(ref, self.step_paths),
            )

    def _action(self, path: str, name: str) -> None:
        if self.known_actions is None or name in self.known_actions:
            return
        hint = did_you_mean(name, self.known_actions) or (
            "; register it with @action or load its module with `cadenza worker --actions`"
        )
        self.error(path, DiagnosticCode.UNKNOWN_ACTION, f"unknown action '{name}'{hint}")


def _children(step: WorkflowStep, path: str) -> list[tuple[WorkflowStep, str]]:
    """The steps nested in `step`, with their paths: a container's children, a map's body."""
    out = [(c, f"{path}.parallel_steps[{i}]") for i, c in enumerate(step.parallel_steps)]
    if step.map is not None:
        out.append((step.map.step, f"{path}.map.step"))
    return out


def _bound_names(steps: Sequence[WorkflowStep]) -> dict[str, frozenset[str]]:
    """Step id -> the names a map binds for it (its item name and `index`), for every step in a
    map's body."""
    bound: dict[str, frozenset[str]] = {}
    stack = [(s, frozenset[str]()) for s in steps]
    while stack:
        step, names = stack.pop()
        if names:
            bound[step.step_id] = names
        if step.map is not None:
            inner = names | {step.map.as_, "index"}
            stack.append((step.map.step, inner))
        stack.extend((c, names) for c in step.parallel_steps)
    return bound
