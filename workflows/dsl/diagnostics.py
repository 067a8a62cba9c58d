"""What the validator reports: the diagnostic codes, diagnostics and the validation report.

The codes are public (`cadenza validate --json` prints them; tools match on them), so a member's
value never changes. What each means and how to fix it is in `workflows.dsl.explanations`, from
which `docs/diagnostics.md` is generated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from workflows.dsl.models import AdvancedWorkflow


class DiagnosticCode(StrEnum):
    """Why the validator refused (or warned about) part of a definition or a run input."""

    # the document and the run input as a whole
    UNREADABLE = "unreadable"
    NOT_A_MAPPING = "not_a_mapping"
    TOO_LARGE = "too_large"
    TOO_MANY_STEPS = "too_many_steps"
    DEFINITION_TOO_LARGE = "definition_too_large"
    TOO_DEEP = "too_deep"
    INPUT_TOO_LARGE = "input_too_large"
    NOT_JSON = "not_json"
    # fields the format refuses (pydantic's own codes, with cadenza's messages)
    EXTRA_FORBIDDEN = "extra_forbidden"
    MISSING = "missing"
    STRING_PATTERN_MISMATCH = "string_pattern_mismatch"
    # steps and the references between them
    NO_STEPS = "no_steps"
    DUPLICATE_STEP_ID = "duplicate_step_id"
    SELF_DEPENDENCY = "self_dependency"
    UNKNOWN_DEPENDENCY = "unknown_dependency"
    UNKNOWN_NEXT_STEP = "unknown_next_step"
    DEPENDENCY_CYCLE = "dependency_cycle"
    UNKNOWN_STEP = "unknown_step"
    # what each step type needs and must not have
    UNSUPPORTED_STEP_TYPE = "unsupported_step_type"
    MISSING_ACTION = "missing_action"
    UNEXPECTED_ACTION = "unexpected_action"
    EMPTY_CONTAINER = "empty_container"
    UNEXPECTED_CHILDREN = "unexpected_children"
    MISSING_LOOP_CONDITION = "missing_loop_condition"
    LOOP_BODY = "loop_body"
    UNEXPECTED_LOOP_CONDITION = "unexpected_loop_condition"
    MISSING_WAIT = "missing_wait"
    UNEXPECTED_WAIT = "unexpected_wait"
    MISSING_CONDITIONS = "missing_conditions"
    BRANCH_TARGET_UNCONDITIONAL = "branch_target_unconditional"
    NEXT_STEPS_OUTSIDE_CONDITIONAL = "next_steps_outside_conditional"
    LOCAL_WITHOUT_ACTION = "local_without_action"
    LOCAL_WITH_CAPABILITY = "local_with_capability"
    UNEXPECTED_APPROVAL = "unexpected_approval"
    UNEXPECTED_AGENT = "unexpected_agent"
    UNEXPECTED_ROUTER = "unexpected_router"
    MISSING_MAP = "missing_map"
    UNEXPECTED_MAP = "unexpected_map"
    MAP_BODY = "map_body"
    UNEXPECTED_COMPLETION = "unexpected_completion"
    COMPLETION_UNREACHABLE = "completion_unreachable"
    MISSING_TERMINATE = "missing_terminate"
    UNEXPECTED_TERMINATE = "unexpected_terminate"
    MISSING_AGENT = "missing_agent"
    MISSING_EVENT = "missing_event"
    UNEXPECTED_EVENT = "unexpected_event"
    MISSING_WORKFLOW = "missing_workflow"
    UNEXPECTED_WORKFLOW = "unexpected_workflow"
    UNEXPECTED_MAX_DEPTH = "unexpected_max_depth"
    UNKNOWN_DEFINITION = "unknown_definition"
    DEFINITION_FILE = "definition_file"
    INVALID_DEFINITION = "invalid_definition"
    INVALID_MODEL = "invalid_model"
    # approvals
    QUORUM_UNREACHABLE = "quorum_unreachable"
    DUPLICATE_APPROVER = "duplicate_approver"
    MISSING_ESCALATE_TO = "missing_escalate_to"
    ESCALATION_UNUSED = "escalation_unused"
    ON_TIMEOUT_WITHOUT_TIMEOUT = "on_timeout_without_timeout"
    # the run as a whole
    RUN_TIMEOUT_DEFAULT = "run_timeout_default"
    # observability: custom metrics and tags
    INVALID_METRIC = "invalid_metric"
    INVALID_TAG = "invalid_tag"
    # expressions and actions
    INVALID_EXPRESSION = "invalid_expression"
    UNKNOWN_NAME = "unknown_name"
    UNKNOWN_FUNCTION = "unknown_function"
    EXPRESSION_TOO_COSTLY = "expression_too_costly"
    UNKNOWN_STEP_REFERENCE = "unknown_step_reference"
    UNKNOWN_ACTION = "unknown_action"
    # JSON Schemas in input_validation
    INVALID_JSON_SCHEMA = "invalid_json_schema"
    REMOTE_REF = "remote_ref"
    RECURSIVE_SCHEMA = "recursive_schema"
    UNRESOLVABLE_REF = "unresolvable_ref"
    INVALID_PATTERN = "invalid_pattern"
    CATASTROPHIC_PATTERN = "catastrophic_pattern"


@dataclass(frozen=True)
class Diagnostic:
    """One finding of the validator.

    `code` is a DiagnosticCode, or pydantic's error type (`int_parsing`, `literal_error`, ...)
    for a field value the format refuses.
    """

    path: str
    code: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        prefix = "" if self.severity == "error" else "warning: "
        return f"{self.path}: {prefix}{self.code}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        """JSON form, as `cadenza validate --json` prints it."""
        return {
            "path": self.path,
            "code": str(self.code),
            "message": self.message,
            "severity": self.severity,
        }


@dataclass
class ValidationReport:
    """The outcome of validating one definition."""

    definition: AdvancedWorkflow | None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def ok(self) -> bool:
        return self.definition is not None and not self.errors

    def summary(self, limit: int = 20) -> str:
        """The errors as text, one per line, at most `limit` of them."""
        errors = self.errors
        lines = [str(d) for d in errors[:limit]]
        if len(errors) > limit:
            lines.append(f"... and {len(errors) - limit} more")
        return "\n".join(lines)
