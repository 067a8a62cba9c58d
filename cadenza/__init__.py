"""cadenza: durable workflows on Temporal. The public import for services and action authors:

    from cadenza import CadenzaClient, connect, action, ActionContext, ActionError

Names are loaded on first use (PEP 562), so `import cadenza` imports nothing from `workflows`,
`activities` or `worker`: `workflows/` (which runs in Temporal's sandbox) and `activities/`
import `cadenza.errors`, and must not pull in the client or the CLI through this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cadenza.errors import CadenzaError

if TYPE_CHECKING:
    from activities.registry import ActionContext, ActionError, ActionRegistry, action
    from activities.std import default_registry, register_std
    from worker.client import (
        CadenzaClient,
        ConnectionFailed,
        DecisionRefused,
        DefinitionRejected,
        connect,
    )
    from worker.definition_files import load_definition
    from workflows.contracts import (
        DecisionResult,
        ErrorInfo,
        EventResult,
        ExecutionOptions,
        ExecutionResult,
        PendingApproval,
        PendingEvent,
        StepRecord,
        StepStatus,
        WorkflowState,
    )
    from workflows.dsl.diagnostics import Diagnostic, DiagnosticCode, ValidationReport
    from workflows.dsl.loader import DocumentError, parse_document
    from workflows.dsl.models import AdvancedWorkflow, StepType, WorkflowStep
    from workflows.dsl.validate import validate_definition

_EXPORTS: dict[str, str] = {
    # running workflows from a service
    "CadenzaClient": "worker.client",
    "connect": "worker.client",
    "ConnectionFailed": "worker.client",
    "DecisionRefused": "worker.client",
    "DefinitionRejected": "worker.client",
    # writing actions
    "action": "activities.registry",
    "ActionContext": "activities.registry",
    "ActionError": "activities.registry",
    "ActionRegistry": "activities.registry",
    "default_registry": "activities.std",
    "register_std": "activities.std",
    # definitions
    "AdvancedWorkflow": "workflows.dsl.models",
    "WorkflowStep": "workflows.dsl.models",
    "StepType": "workflows.dsl.models",
    "parse_document": "workflows.dsl.loader",
    "load_definition": "worker.definition_files",
    "DocumentError": "workflows.dsl.loader",
    "validate_definition": "workflows.dsl.validate",
    "Diagnostic": "workflows.dsl.diagnostics",
    "DiagnosticCode": "workflows.dsl.diagnostics",
    "ValidationReport": "workflows.dsl.diagnostics",
    # what a run returns
    "ExecutionResult": "workflows.contracts",
    "ExecutionOptions": "workflows.contracts",
    "StepRecord": "workflows.contracts",
    "StepStatus": "workflows.contracts",
    "WorkflowState": "workflows.contracts",
    "ErrorInfo": "workflows.contracts",
    "DecisionResult": "workflows.contracts",
    "PendingApproval": "workflows.contracts",
    "PendingEvent": "workflows.contracts",
    "EventResult": "workflows.contracts",
}

__all__ = [
    "ActionContext",
    "ActionError",
    "ActionRegistry",
    "AdvancedWorkflow",
    "CadenzaClient",
    "CadenzaError",
    "ConnectionFailed",
    "DecisionRefused",
    "DecisionResult",
    "DefinitionRejected",
    "Diagnostic",
    "DiagnosticCode",
    "DocumentError",
    "ErrorInfo",
    "EventResult",
    "ExecutionOptions",
    "ExecutionResult",
    "PendingApproval",
    "PendingEvent",
    "StepRecord",
    "StepStatus",
    "StepType",
    "ValidationReport",
    "WorkflowState",
    "WorkflowStep",
    "action",
    "connect",
    "default_registry",
    "load_definition",
    "parse_document",
    "register_std",
    "validate_definition",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cadenza' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
