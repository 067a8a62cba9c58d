"""Field errors pydantic finds in a definition, as cadenza's located diagnostics."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterator, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from workflows.dsl import models
from workflows.dsl.diagnostics import Diagnostic, DiagnosticCode
from workflows.dsl.models import AdvancedWorkflow

# the definition's models by name, longest first (so `WorkflowStep` is not found in
# `SubWorkflowSpec`)
_MODELS: dict[str, type[BaseModel]] = {
    name: cls
    for name, cls in sorted(vars(models).items(), key=lambda kv: -len(kv[0]))
    if isinstance(cls, type) and issubclass(cls, BaseModel) and cls.__module__ == models.__name__
}


def format_path(loc: Sequence[int | str]) -> str:
    """`("steps", 2, "dependencies", 0)` -> `steps[2].dependencies[0]`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "$"


def pydantic_diagnostics(exc: ValidationError) -> Iterator[Diagnostic]:
    for err in exc.errors(include_url=False):
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        path = format_path(loc)
        kind = err["type"]
        if kind == DiagnosticCode.EXTRA_FORBIDDEN:
            name = str(loc[-1]) if loc else "?"
            known = _fields_at(loc[:-1])
            hint = did_you_mean(name, known)
            message = f"unknown field '{name}'" + (hint or f"; known fields: {', '.join(known)}")
        elif kind == DiagnosticCode.MISSING:
            message = "required field is missing"
        elif kind == DiagnosticCode.STRING_PATTERN_MISMATCH:
            pattern = (err.get("ctx") or {}).get("pattern", "")
            message = f"{err['input']!r} does not match {pattern}: use lowercase letters, digits, "
            message += "'_', '-' (and '.' in workflow ids), starting with a letter or digit"
        else:
            message = f"{err['msg']} (got {_short(err.get('input'))})"
        yield Diagnostic(path, kind, message)


def _fields_at(loc: Sequence[int | str]) -> list[str]:
    """The field names of the model at `loc` inside a definition (for "did you mean")."""
    model: Any = AdvancedWorkflow
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if info is None:
            return []
        annotation = str(info.annotation)
        model = next((m for name, m in _MODELS.items() if name in annotation), None)
        if model is None:
            return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def did_you_mean(name: str, candidates: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
