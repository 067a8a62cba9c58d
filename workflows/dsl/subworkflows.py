"""Checks of sub-workflows: the document's named `definitions` and the `workflow` steps that
call them. Pure: `file` references are inlined by `worker.definition_files` when a document
is loaded, before validation.

Named definitions share one namespace, the top-level document's `definitions`: any of them may
call any other (or itself: recursion, bounded at run time by `max_depth`). Each is validated as
the definition it becomes when a step runs it (`workflow_id` defaults to its name), and its
diagnostics carry the path inside the document (`definitions.refund.steps[0].action`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection
from difflib import get_close_matches
from typing import Any

from workflows.dsl.diagnostics import Diagnostic, DiagnosticCode, ValidationReport
from workflows.dsl.models import WORKFLOW_ID_PATTERN, AdvancedWorkflow, SubWorkflowSpec

DEFAULT_MAX_DEPTH = 10
"""How deeply sub-workflows nest below the run a client started, unless a step says."""

Validate = Callable[[dict[str, Any], Collection[str]], ValidationReport]


def child_definition(name: str, body: dict[str, Any], names: dict[str, Any]) -> dict[str, Any]:
    """The definition a `workflow` step runs for `name`: its body, `workflow_id` defaulting to
    the name, and the caller's `definitions` (so it may call them in turn)."""
    return {"workflow_id": name, **body, "definitions": names}


def named_definition_problems(definition: AdvancedWorkflow, validate: Validate) -> list[Diagnostic]:
    """The diagnostics of every named definition, with their paths in the document."""
    out: list[Diagnostic] = []
    names = definition.definitions
    for name, body in names.items():
        where = f"definitions.{name}"
        if not _valid_name(name):
            out.append(
                Diagnostic(
                    where,
                    DiagnosticCode.INVALID_DEFINITION,
                    f"{name!r} cannot name a definition: use lower-case letters, digits, `_`, "
                    "`.` and `-`, starting with a letter or digit",
                )
            )
            continue
        if "definitions" in body:
            out.append(
                Diagnostic(
                    f"{where}.definitions",
                    DiagnosticCode.INVALID_DEFINITION,
                    "named definitions share the document's top-level `definitions`: move these "
                    "up next to it",
                )
            )
            continue
        report = validate({"workflow_id": name, **body}, names)
        for diag in report.diagnostics:
            path = where if diag.path == "$" else f"{where}.{diag.path}"
            out.append(dataclasses.replace(diag, path=path))
    return out


def subworkflow_problems(
    spec: SubWorkflowSpec, path: str, names: Collection[str]
) -> list[Diagnostic]:
    """What is wrong with one `workflow` step's reference (the name known, the file inlined)."""
    if spec.file is not None:
        return [
            Diagnostic(
                f"{path}.workflow.file",
                DiagnosticCode.DEFINITION_FILE,
                f"{spec.file!r} was not inlined: files are resolved when the definition is "
                "loaded from a file (cadenza run/validate FILE, cadenza.load_definition); "
                "otherwise put the definition in `definitions` and call it by `name`",
            )
        ]
    if spec.name is not None and spec.name not in names:
        close = get_close_matches(spec.name, list(names), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        known = f" (defined: {', '.join(sorted(names)[:10])})" if names and not close else ""
        return [
            Diagnostic(
                f"{path}.workflow.name",
                DiagnosticCode.UNKNOWN_DEFINITION,
                f"no definition {spec.name!r} in `definitions`{hint}{known}",
            )
        ]
    return []


def _valid_name(name: str) -> bool:
    return len(name) <= 200 and re.fullmatch(WORKFLOW_ID_PATTERN, name) is not None
