"""What each diagnostic code means, an example message and the fix; `docs/diagnostics.md` is
generated from `EXPLANATIONS` by `python -m worker.diagnostics_doc` (a unit test keeps the two
in step)."""

from __future__ import annotations

from typing import NamedTuple

from workflows.dsl.diagnostics import DiagnosticCode


class Explanation(NamedTuple):
    """What a code means, a message it comes with (as `cadenza validate` prints it), the fix."""

    meaning: str
    example: str
    fix: str


_C = DiagnosticCode
EXPLANATIONS: dict[DiagnosticCode, Explanation] = {
    _C.UNREADABLE: Explanation(
        "The file cannot be read or parsed as YAML/JSON (only `cadenza validate` reports this).",
        "$: unreadable: broken.yaml: line 2, column 4: invalid YAML: mapping values are not "
        "allowed here",
        "Fix the file at the line and column named; save it as UTF-8.",
    ),
    _C.NOT_A_MAPPING: Explanation(
        "The definition, or the run input, is not a mapping (a JSON object).",
        "input: not_a_mapping: the run input must be a JSON object",
        "Write a mapping: `workflow_id` and `steps` for a definition, `{...}` for an input.",
    ),
    _C.TOO_LARGE: Explanation(
        "The document nests too deeply or expands (through YAML aliases) to too many values.",
        "$: too_large: expands to more than 1,000,000 values (YAML aliases?); write less",
        "Flatten the document; do not build large values out of YAML aliases.",
    ),
    _C.TOO_MANY_STEPS: Explanation(
        "The definition has more steps than one run may hold.",
        "steps: too_many_steps: 20001 steps; the limit is 20000: split the workflow",
        "Split the workflow into several definitions, or loop over data instead of listing it.",
    ),
    _C.DEFINITION_TOO_LARGE: Explanation(
        "The definition is too large as JSON to travel in a run's input (Temporal's 2 MB limit).",
        "$: definition_too_large: definition is 2000000 bytes as JSON; the limit is 1572864: "
        "move large constants into the run input or an action",
        "Move large constants into the run input or an action.",
    ),
    _C.TOO_DEEP: Explanation(
        "Parallel steps nest deeper than 16 levels, or a JSON Schema nests too deeply.",
        "steps[0].parallel_steps[0]....: too_deep: steps nest deeper than 16 levels",
        "Flatten the nesting: use dependencies between steps of one level instead.",
    ),
    _C.INPUT_TOO_LARGE: Explanation(
        "The run input is too large or nests too deeply.",
        "input: input_too_large: the run input is 2000000 bytes as JSON; the limit is 1048576: "
        "pass a reference to large data (a URL, a storage key) instead",
        "Pass a reference to large data (a URL, a storage key) instead of the data.",
    ),
    _C.NOT_JSON: Explanation(
        "The run input holds values JSON cannot carry (NaN, infinity, objects).",
        "input: not_json: the run input is not plain JSON: Out of range float values are not "
        "JSON compliant",
        "Use strings, numbers, booleans, null, lists and objects only.",
    ),
    _C.EXTRA_FORBIDDEN: Explanation(
        "A field the format does not have, often a typo.",
        "steps[0].dependecies: extra_forbidden: unknown field 'dependecies'; did you mean "
        "'dependencies'?",
        "Correct the name, or remove the field (`cadenza schema` lists the fields).",
    ),
    _C.MISSING: Explanation(
        "A required field is absent.",
        "steps[1].step_id: missing: required field is missing",
        "Add the field.",
    ),
    _C.STRING_PATTERN_MISMATCH: Explanation(
        "An id holds characters ids may not have.",
        "workflow_id: string_pattern_mismatch: 'Orders!' does not match ^[a-z0-9][a-z0-9_.-]*$: "
        "use lowercase letters, digits, '_', '-' (and '.' in workflow ids), starting with a "
        "letter or digit",
        "Rename it with lowercase letters, digits, `_` and `-` (and `.` in workflow ids).",
    ),
    _C.NO_STEPS: Explanation(
        "The workflow has no steps.",
        "steps: no_steps: a workflow needs at least one step",
        "Add at least one step.",
    ),
    _C.DUPLICATE_STEP_ID: Explanation(
        "Two steps share an id (ids are unique across the whole definition, nesting included).",
        "steps[2].step_id: duplicate_step_id: step id 'ship' is already used at steps[1]: step "
        "ids must be unique across the whole definition",
        "Rename one of the steps.",
    ),
    _C.SELF_DEPENDENCY: Explanation(
        "A step lists itself in its dependencies.",
        "steps[1].dependencies[0]: self_dependency: step 'ship' depends on itself: remove it",
        "Remove the step's own id from its dependencies.",
    ),
    _C.UNKNOWN_DEPENDENCY: Explanation(
        "A dependency names no step of the same list.",
        "steps[1].dependencies[0]: unknown_dependency: unknown step 'chrage'; did you mean "
        "'charge'?",
        "Correct the id; a step may only depend on steps of its own list.",
    ),
    _C.UNKNOWN_NEXT_STEP: Explanation(
        "A branch target (`next_steps`) names no step of the same list.",
        "steps[0].conditions[0].next_steps[0]: unknown_next_step: unknown step 'refnud'; did "
        "you mean 'refund'?",
        "Correct the id; a branch may only target steps of its own list.",
    ),
    _C.DEPENDENCY_CYCLE: Explanation(
        "Steps wait for each other in a cycle, so none of them can start.",
        "steps[0].dependencies: dependency_cycle: steps wait for each other in a cycle: a -> b "
        "-> a; remove one of these dependencies",
        "Remove one of the dependencies the message lists.",
    ),
    _C.UNKNOWN_STEP: Explanation(
        "`sla_targets.step_max_seconds` names a step the definition does not have.",
        "sla_targets.step_max_seconds.shpi: unknown_step: unknown step 'shpi'; did you mean "
        "'ship'?",
        "Correct the step id, or remove the target.",
    ),
    _C.UNSUPPORTED_STEP_TYPE: Explanation(
        "The step type exists in the format but this version of cadenza cannot run it yet.",
        "steps[0].step_type: unsupported_step_type: ... (step_type '...') are not supported yet "
        "by this version of cadenza",
        "Use another step type, or a cadenza version that runs this one.",
    ),
    _C.MISSING_ACTION: Explanation(
        "An action step names no action.",
        "steps[0].action: missing_action: an action step needs `action: <name>`",
        "Add `action: <name>`, or choose the step type you meant.",
    ),
    _C.UNEXPECTED_ACTION: Explanation(
        "A parallel, conditional, wait or approval step names an action, which it would not run.",
        "steps[0].action: unexpected_action: a parallel step runs no action: move it into a step "
        "of its own",
        "Move the action into a step of its own.",
    ),
    _C.EMPTY_CONTAINER: Explanation(
        "A parallel step has no children.",
        "steps[0].parallel_steps: empty_container: a parallel step needs parallel_steps: the "
        "children to run",
        "Add `parallel_steps`, or remove the step.",
    ),
    _C.UNEXPECTED_CHILDREN: Explanation(
        "A step type that has no children lists `parallel_steps`.",
        "steps[0].parallel_steps: unexpected_children: a action step has no children: use "
        "step_type parallel (or loop)",
        "Use `step_type: parallel` (or `loop`), or remove `parallel_steps`.",
    ),
    _C.MISSING_LOOP_CONDITION: Explanation(
        "A loop step has no `loop_condition`.",
        "steps[0].loop_condition: missing_loop_condition: a loop needs loop_condition (CEL over "
        "result, iteration, vars): it repeats while the condition is true",
        "Add `loop_condition`: the loop repeats while it is true.",
    ),
    _C.LOOP_BODY: Explanation(
        "A loop step has both an action and children, or neither.",
        "steps[0].action: loop_body: a loop needs exactly one body: `action` or `parallel_steps`",
        "Keep exactly one body: `action` or `parallel_steps`.",
    ),
    _C.UNEXPECTED_LOOP_CONDITION: Explanation(
        "A step that is not a loop has a `loop_condition`.",
        "steps[0].loop_condition: unexpected_loop_condition: loop_condition only applies to loop "
        "steps",
        "Remove it, or make the step `step_type: loop`.",
    ),
    _C.MISSING_WAIT: Explanation(
        "A wait step has none, or more than one, of `wait.seconds`, `wait.until` and "
        "`wait.condition`.",
        "steps[0].wait: missing_wait: a wait step needs exactly one of `wait: {seconds: N}`, "
        "`wait: {until: <CEL timestamp>}` or `wait: {condition: <CEL>}`",
        "Give exactly one of `wait: {seconds: N}`, `wait: {until: <CEL timestamp>}` or "
        "`wait: {condition: <CEL>}`.",
    ),
    _C.UNEXPECTED_WAIT: Explanation(
        "A step that is not a wait step has `wait`.",
        "steps[0].wait: unexpected_wait: `wait` only applies to wait steps",
        "Remove it, or make the step `step_type: wait`.",
    ),
    _C.MISSING_MAP: Explanation(
        "A map step has no `map` settings.",
        "steps[0].map: missing_map: a map step needs `map: {items: <CEL list>, as: NAME, step: "
        "{...}}`",
        "Add `map:` with `items` (a CEL expression giving a list) and the body `step`.",
    ),
    _C.UNEXPECTED_MAP: Explanation(
        "A step that is not a map step has `map`.",
        "steps[0].map: unexpected_map: `map` only applies to map steps",
        "Remove it, or make the step `step_type: map`.",
    ),
    _C.MAP_BODY: Explanation(
        "A map's body cannot run once per item as written: it has dependencies, is a container "
        "or a conditional, or its item name hides one of the names expressions use.",
        "steps[0].map.step.dependencies: map_body: the body of a map runs once per item on its "
        "own: it has no dependencies",
        "Give the body no dependencies (the map step has them), make it a step of its own kind "
        "(not parallel, not a loop over children, not conditional), and name the item something "
        "other than input, vars, steps, now, result, iteration or index.",
    ),
    _C.UNEXPECTED_COMPLETION: Explanation(
        "A step that is neither parallel nor map has `completion`.",
        "steps[0].completion: unexpected_completion: `completion` only applies to parallel and "
        "map steps",
        "Remove it, or put it on the container whose children it counts.",
    ),
    _C.COMPLETION_UNREACHABLE: Explanation(
        "`completion.min_successes` asks for more children than the container has.",
        "steps[0].completion.min_successes: completion_unreachable: 3 successes required but the "
        "container has 2 children",
        "Lower min_successes to at most the number of parallel_steps.",
    ),
    _C.MISSING_TERMINATE: Explanation(
        "A terminate step has no `terminate` settings.",
        "steps[0].terminate: missing_terminate: a terminate step needs `terminate: {status: "
        "completed | failed, message, error_type}`",
        "Add `terminate: {status: completed}` (or `failed` with an `error_type`).",
    ),
    _C.UNEXPECTED_TERMINATE: Explanation(
        "A step that is not a terminate step has `terminate`.",
        "steps[0].terminate: unexpected_terminate: `terminate` only applies to terminate steps",
        "Remove it, or make the step `step_type: terminate`.",
    ),
    _C.MISSING_EVENT: Explanation(
        "An event step has no `event` settings.",
        "steps[0].event: missing_event: an event step needs `event: {name, schema, transient}`",
        "Add `event: {name: payment}` (and a JSON Schema for its data, if you want it checked).",
    ),
    _C.UNEXPECTED_EVENT: Explanation(
        "A step that is not an event step has `event`.",
        "steps[0].event: unexpected_event: `event` only applies to event steps",
        "Remove it, or make the step `step_type: event`.",
    ),
    _C.MISSING_WORKFLOW: Explanation(
        "A workflow step does not say which definition it runs (exactly one of `name`, `file`).",
        "steps[0].workflow: missing_workflow: a workflow step needs `workflow: {name: NAME}` "
        "(a key of `definitions`) or `workflow: {file: PATH}`",
        "Add `workflow: {name: refund}` with `definitions: {refund: {steps: [...]}}` at the top "
        "level, or `workflow: {file: refund.yaml}`.",
    ),
    _C.UNEXPECTED_WORKFLOW: Explanation(
        "A step that is not a workflow step has `workflow`.",
        "steps[0].workflow: unexpected_workflow: `workflow` only applies to workflow steps",
        "Remove it, or make the step `step_type: workflow`.",
    ),
    _C.UNEXPECTED_MAX_DEPTH: Explanation(
        "`max_depth` is set on a step that starts no sub-workflow.",
        "steps[0].max_depth: unexpected_max_depth: `max_depth` only applies to workflow steps",
        "Remove it, or move it to the workflow step whose recursion it bounds.",
    ),
    _C.UNKNOWN_DEFINITION: Explanation(
        "A workflow step calls a name that is not in the document's `definitions`.",
        "steps[0].workflow.name: unknown_definition: no definition 'refnd' in `definitions`; "
        "did you mean 'refund'?",
        "Fix the name, or add the definition under `definitions:` at the top level.",
    ),
    _C.DEFINITION_FILE: Explanation(
        "A workflow step's `file` cannot be used: it does not exist, cannot be read, or the "
        "definition was not loaded from a file (so there is nothing to resolve it against).",
        "steps[0].workflow.file: definition_file: no file refund.yaml (looked for "
        "/srv/flows/refund.yaml)",
        "Fix the path (relative to the file that refers to it), or inline the definition in "
        "`definitions` and call it by `name`.",
    ),
    _C.INVALID_DEFINITION: Explanation(
        "A named definition (in `definitions`, or a file a workflow step names) does not "
        "validate; the diagnostic gives the path inside it.",
        "definitions.refund.steps[0].action: invalid_definition: unknown action 'std.ech'",
        "Fix the named definition at the path shown (the rest of the message is the problem "
        "found there).",
    ),
    _C.MISSING_CONDITIONS: Explanation(
        "A conditional step has no conditions to choose a branch by.",
        "steps[0].conditions: missing_conditions: a conditional step needs conditions: [{when, "
        "next_steps}]",
        "Add `conditions: [{when, next_steps}]`.",
    ),
    _C.BRANCH_TARGET_UNCONDITIONAL: Explanation(
        "A step is the target of every branch of a conditional step, so it always runs.",
        "steps[0].next_steps: branch_target_unconditional: step 'notify' is a target of every "
        "branch, so it always runs: make it depend on 'route' instead",
        "Make the step depend on the conditional step instead of listing it in every branch.",
    ),
    _C.NEXT_STEPS_OUTSIDE_CONDITIONAL: Explanation(
        "`next_steps` on a step that is not conditional (or on a guard), where nothing branches.",
        "steps[0].next_steps: next_steps_outside_conditional: next_steps only applies to "
        "conditional steps: use dependencies instead",
        "Use `dependencies` on the later steps instead.",
    ),
    _C.LOCAL_WITHOUT_ACTION: Explanation(
        "`execution: local` on a step that runs no action.",
        "steps[0].execution: local_without_action: execution: local applies to steps that run an "
        "action",
        "Remove `execution: local`.",
    ),
    _C.LOCAL_WITH_CAPABILITY: Explanation(
        "`execution: local` together with `agent_capability`: a local activity cannot be routed.",
        "steps[0].execution: local_with_capability: a local activity runs on the workflow's "
        "worker: it cannot be routed to agent_capability's task queue",
        "Drop one of the two.",
    ),
    _C.UNEXPECTED_APPROVAL: Explanation(
        "A step that is not an approval step has `approval`.",
        "steps[0].approval: unexpected_approval: `approval` only applies to approval steps",
        "Remove it, or make the step `step_type: approval`.",
    ),
    _C.UNEXPECTED_AGENT: Explanation(
        "A step that is not an agent step has `agent`.",
        "steps[0].agent: unexpected_agent: `agent` only applies to agent steps",
        "Remove it, or make the step `step_type: agent`.",
    ),
    _C.UNEXPECTED_ROUTER: Explanation(
        "A step that is not conditional has `router`.",
        "steps[0].router: unexpected_router: `router` only applies to conditional steps",
        "Remove it, or make the step `step_type: conditional`.",
    ),
    _C.MISSING_AGENT: Explanation(
        "An agent step has no `agent` settings.",
        "steps[0].agent: missing_agent: an agent step needs `agent: {instructions, tools, "
        "max_iterations, model}`",
        "Add `agent: {instructions, tools, max_iterations, model}`.",
    ),
    _C.INVALID_MODEL: Explanation(
        "A model name is not `provider:name` with a provider cadenza knows.",
        "steps[0].agent.model: invalid_model: model 'gpt4' is not provider:name with a provider "
        "of scripted, openai, ollama; e.g. `openai:gpt-4o-mini`, `ollama:llama3.1` or "
        "`scripted:NAME`",
        "Write `openai:MODEL`, `ollama:MODEL` or `scripted:NAME`.",
    ),
    _C.DUPLICATE_APPROVER: Explanation(
        "An approval lists one person twice (names compare after Unicode NFKC, case folding and "
        "stripping), or an empty name: a quorum could be met by fewer people than it says.",
        "steps[0].approval.approvers[1]: duplicate_approver: 'Alice ' and 'alice' are the same "
        "person (names compare after Unicode NFKC, case folding and stripping): list each "
        "approver once",
        "List each approver once, and raise or lower required_approvals to what you mean.",
    ),
    _C.QUORUM_UNREACHABLE: Explanation(
        "An approval requires more approvals than it lists approvers.",
        "steps[0].approval.required_approvals: quorum_unreachable: 3 approvals required but only "
        "2 approvers listed",
        "Lower `required_approvals` or list more `approvers`.",
    ),
    _C.MISSING_ESCALATE_TO: Explanation(
        "`on_timeout: escalate` without anyone to escalate to.",
        "steps[0].approval.escalate_to: missing_escalate_to: on_timeout: escalate needs "
        "escalate_to: the approvers asked next",
        "Add `escalate_to`: the approvers asked next.",
    ),
    _C.ESCALATION_UNUSED: Explanation(
        "A warning: `escalate_to` is set but `on_timeout` is not `escalate`, so it is ignored.",
        "steps[0].approval.escalate_to: warning: escalation_unused: escalate_to is ignored: "
        "on_timeout is 'reject'",
        "Set `on_timeout: escalate`, or remove `escalate_to`.",
    ),
    _C.ON_TIMEOUT_WITHOUT_TIMEOUT: Explanation(
        "A warning: an approval says what happens on timeout (`on_timeout: approve | escalate`, "
        "or `escalation_timeout`) but has no `timeout` of its own, so it waits until decided.",
        "steps[0].approval.on_timeout: warning: on_timeout_without_timeout: on_timeout "
        "'escalate' never acts: the step has no `timeout` of its own, so it waits until decided "
        "(or the run's timeout); set the step's `timeout`",
        "Set the step's `timeout` (seconds to decide), or remove `on_timeout`.",
    ),
    _C.RUN_TIMEOUT_DEFAULT: Explanation(
        "A warning: the definition waits for people or other systems (an approval or event "
        "step) and does not set the run's `timeout`, so the run ends after the default 3,600 s.",
        "timeout: warning: run_timeout_default: steps[1] waits for a decision or an event, but "
        "the run has no `timeout`: it ends after the default 3600 s, decided or not; set "
        "`timeout` to how long the run may take (e.g. 604800 for a week)",
        "Set `timeout` at the top of the definition to how long the run may take.",
    ),
    _C.INVALID_METRIC: Explanation(
        "An entry of a step's `custom_metrics` is not `name` or `name:kind` with a valid metric "
        "name (lower-case letters, digits, `_`; not `cadenza_...`) and a kind of counter, "
        "histogram or gauge; or it is declared twice, or on a step that runs no action.",
        "steps[0].custom_metrics[1]: invalid_metric: metric 'basket_size': unknown kind "
        "'summary'; use one of counter, histogram, gauge",
        "Declare each metric once as `name` or `name:kind` on the step whose action records it "
        "(docs/observability.md, Custom metrics).",
    ),
    _C.INVALID_TAG: Explanation(
        "A tag is empty, too long (64 characters), listed twice, holds a quote, a backslash or a "
        "control character, or there are more than 20 (tags become the `CadenzaTags` search "
        "attribute).",
        "tags[0]: invalid_tag: tag ' billing' is empty or starts or ends with spaces",
        "Use short plain labels (`billing`, `team:payments`), each once.",
    ),
    _C.INVALID_EXPRESSION: Explanation(
        "A CEL expression does not compile, is too long, or nests comprehensions too deeply.",
        "steps[0].input_mapping.total: invalid_expression: Failed to parse expression "
        "'input.amount +': ERROR: <input>:1:15: Syntax error: mismatched input '<EOF>' "
        "expecting {'[', '{', '(', ...}",
        "Fix the expression (see https://cel.dev); move heavy logic into an action.",
    ),
    _C.UNKNOWN_NAME: Explanation(
        "An expression reads a name that is not in scope where it is written.",
        "steps[0].input_mapping.total: unknown_name: expression 'inptu.amount' reads 'inptu'; "
        "names in scope here: input, now, steps, vars",
        "Use a name in scope: `input`, `vars`, `steps`, `now` (and `result`, `iteration` where "
        "the message lists them).",
    ),
    _C.UNKNOWN_FUNCTION: Explanation(
        "An expression calls a function CEL's standard library (as cadenza runs it) does not "
        "have, or builds a message type.",
        "steps[0].input_mapping.n: unknown_function: unknown function 'lowerAscii'; the "
        "functions are: all, bytes, contains, double, ... (and the operators): compute anything "
        "else in an action",
        "Use a function of the list (docs/semantics.md, Expressions), or compute the value in "
        "an action and read it from `steps.<id>.output`.",
    ),
    _C.EXPRESSION_TOO_COSTLY: Explanation(
        "An expression may cost more CPU than the budget (100 ms) on values of the design sizes "
        "(collections of 1,000 items, strings of 65,536 characters): comprehensions nested over "
        "the run's data, a map() whose elements copy whole values, large literals.",
        "steps[0].input_mapping.p: expression_too_costly: it may cost about 53,018 ms of CPU "
        "on values of the design sizes (a budget of 100 ms: expressions run while the worker "
        "waits): a map()/filter() whose elements copy whole values ...",
        "Compute the inner part once in an earlier step, select a field or convert a number "
        "with int()/double() inside map(), or process the data in an action "
        "(docs/semantics.md, The cost of an expression).",
    ),
    _C.UNKNOWN_STEP_REFERENCE: Explanation(
        "An expression reads `steps.<id>` for a step the definition does not have.",
        "steps[1].conditions[0].when: unknown_step_reference: expression "
        "'steps.chrage.status == \"completed\"' reads steps.chrage, which is not a step; did you "
        "mean 'charge'?",
        "Correct the step id.",
    ),
    _C.UNKNOWN_ACTION: Explanation(
        "An action (or error handler, rollback, tool, reminder) names no registered action.",
        "steps[0].action: unknown_action: unknown action 'std.ecoh'; did you mean 'std.echo'?",
        "Correct the name, register it with `@action`, or load its module with `--actions MODULE`.",
    ),
    _C.INVALID_JSON_SCHEMA: Explanation(
        "`input_validation` is not a valid JSON Schema of its draft.",
        "steps[0].input_validation.type: invalid_json_schema: not a valid JSON Schema: 'objekt' "
        "is not valid under any of the given schemas",
        "Fix the schema at the path named.",
    ),
    _C.REMOTE_REF: Explanation(
        "A schema `$ref` points outside the schema (a URL or a file), which a worker may not load.",
        "steps[0].input_validation.$ref: remote_ref: reference 'https://example.com/s.json': "
        "only local references (#/...) are allowed; a schema may not load other documents",
        "Copy the referenced schema into `$defs` and refer to it as `#/$defs/...`.",
    ),
    _C.RECURSIVE_SCHEMA: Explanation(
        "A schema refers to itself without consuming any data: validating would never end.",
        "steps[0].input_validation: recursive_schema: the schema refers to itself without "
        "consuming any data (infinite recursion)",
        "Make each self-reference go through `properties` or `items`.",
    ),
    _C.UNRESOLVABLE_REF: Explanation(
        "A schema cannot be used, usually because a local `$ref` points nowhere.",
        "steps[0].input_validation: unresolvable_ref: the schema cannot be used: "
        "PointerToNowhere: '/definitions/missing' does not exist within {'$ref': "
        "'#/definitions/missing'}",
        "Correct the reference, or add the definition it names.",
    ),
    _C.INVALID_PATTERN: Explanation(
        "A schema `pattern` is not a valid Python regular expression (the schema check usually "
        "reports `invalid_json_schema` first).",
        "steps[0].input_validation.properties.id.pattern: invalid_pattern: pattern '[a-' does "
        "not compile: unterminated character set at position 0",
        "Fix the regular expression.",
    ),
    _C.CATASTROPHIC_PATTERN: Explanation(
        "A schema `pattern` repeats a repeated group, which can take exponential time.",
        "steps[0].input_validation.properties.id.pattern: catastrophic_pattern: pattern "
        "'(a+)+$' repeats a repeated group, which can take exponential time on a crafted "
        "input: rewrite it without nested quantifiers",
        "Rewrite it without nested quantifiers (`a+` instead of `(a+)+`).",
    ),
}


def render_markdown() -> str:
    """The text of docs/diagnostics.md: one section per code, in the enum's order."""
    lines = [
        "# Diagnostic codes",
        "",
        "<!-- Generated from workflows/dsl/explanations.py by `python -m worker.diagnostics_doc`;",
        "     do not edit by hand. -->",
        "",
        "`cadenza validate` prints one line per problem, `FILE: path: code: message`, and",
        "`cadenza validate --json` gives the same as `{path, code, message, severity}`. The codes",
        "below are stable: tools may match on them. A field value of the wrong type or range",
        "carries pydantic's error type as its code instead (`int_parsing`, `literal_error`,",
        "`greater_than_equal`, ...: see https://docs.pydantic.dev/latest/errors/validation_errors/).",
        "Warnings (`warning:` before the code) do not fail `cadenza validate`; `--strict` does.",
        "",
        "| code | meaning |",
        "| --- | --- |",
    ]
    lines += [f"| [`{code}`](#{code}) | {EXPLANATIONS[code].meaning} |" for code in DiagnosticCode]
    for code in DiagnosticCode:
        meaning, example, fix = EXPLANATIONS[code]
        lines += ["", f"## {code}", "", meaning, "", "```", example, "```", "", f"Fix: {fix}"]
    return "\n".join(lines) + "\n"
