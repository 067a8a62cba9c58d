"""Commands about definitions, no server needed: `validate`, `graph`, `plan`, `schema`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from worker.cli.base import (
    EXIT_OK,
    EXIT_USAGE,
    ActionsOpt,
    UsageError,
    err,
    exit_now,
    load_file,
    load_registry,
    out,
    run_command,
)
from worker.cli.render import mermaid
from worker.client import DefinitionRejected
from workflows.dsl.diagnostics import Diagnostic, DiagnosticCode
from workflows.dsl.loader import DocumentError
from workflows.dsl.models import AdvancedWorkflow
from workflows.dsl.plan import analyse
from workflows.dsl.validate import validate_definition


def schema() -> None:
    """Print the JSON Schema of a definition (for editors and YAML language servers)."""
    sys.stdout.write(json.dumps(AdvancedWorkflow.model_json_schema(), indent=2) + "\n")
    exit_now(EXIT_OK)


def validate(
    files: Annotated[list[Path], typer.Argument(help="Definition files (YAML or JSON).")],
    as_json: Annotated[bool, typer.Option("--json", help="Diagnostics as JSON.")] = False,
    actions: ActionsOpt = None,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on warnings too.")] = False,
) -> None:
    """Validate definitions; print every diagnostic (FILE: path: code: message); warnings fail
    only with --strict."""

    async def main() -> int:
        known = load_registry(actions).names()
        reports: list[dict[str, Any]] = []
        for file in files:
            try:
                report = validate_definition(load_file(file), known)
                diagnostics = [d.as_dict() for d in report.diagnostics]
                ok = report.ok and not (strict and report.diagnostics)
            except (DocumentError, UsageError) as exc:
                diagnostics = [Diagnostic("$", DiagnosticCode.UNREADABLE, str(exc)).as_dict()]
                ok = False
            reports.append({"file": str(file), "valid": ok, "diagnostics": diagnostics})
        if as_json:
            single = reports[0] if len(reports) == 1 else {"files": reports}
            sys.stdout.write(json.dumps(single) + "\n")
        else:
            for entry in reports:
                for d in entry["diagnostics"]:
                    warning = d["severity"] != "error"
                    line = f"{entry['file']}: {d['path']}: {'warning: ' if warning else ''}"
                    line += f"{d['code']}: {d['message']}"
                    (out if warning else err).print(line, highlight=False, markup=False)
                if entry["valid"]:
                    out.print(f"{entry['file']}: valid", highlight=False, markup=False)
                elif strict and all(d["severity"] != "error" for d in entry["diagnostics"]):
                    err.print(f"{entry['file']}: warnings fail with --strict", highlight=False)
        return EXIT_OK if all(entry["valid"] for entry in reports) else EXIT_USAGE

    run_command(main)


def graph(file: Path) -> None:
    """Print the definition's step graph as a Mermaid flowchart."""

    async def main() -> int:
        report = validate_definition(load_file(file))
        if report.definition is None:
            raise DefinitionRejected(report)
        sys.stdout.write(mermaid(report.definition) + "\n")
        return EXIT_OK

    run_command(main)


def execution_summary(executions: dict[str, str]) -> str:
    """`2 local (a, b), 1 activity (c)`: how action steps run, grouped."""
    groups: dict[str, list[str]] = {}
    for step_id, how in executions.items():
        groups.setdefault(how, []).append(step_id)
    if not groups:
        return "no action steps"
    shown = [
        f"{len(ids)} {how} ({', '.join(ids[:5])}{', ...' if len(ids) > 5 else ''})"
        for how, ids in sorted(groups.items())
    ]
    return "; ".join(shown)


def plan(
    file: Path,
    as_json: Annotated[bool, typer.Option("--json", help="The analysis as JSON.")] = False,
    actions: ActionsOpt = None,
) -> None:
    """Analyse a definition: size, depth, width, critical path, complexity, strategy, and how
    each action step runs (local or activity; with --actions, user actions' declarations)."""

    async def main() -> int:
        report = validate_definition(load_file(file))
        if not report.ok or report.definition is None:
            raise DefinitionRejected(report)
        registry = load_registry(actions) if actions else None
        declared = registry.executions(registry.names()) if registry else None
        analysis = analyse(report.definition, declared)
        if as_json:
            sys.stdout.write(json.dumps(analysis.as_dict()) + "\n")
        else:
            types = ", ".join(f"{n} {t}" for t, n in sorted(analysis.counts.items()))
            out.print(
                f"steps: {analysis.steps} ({types})\n"
                f"depth: {analysis.depth} (steps on the longest dependency chain)\n"
                f"width: {analysis.width} (most steps ready at once)\n"
                f"critical path: {' -> '.join(analysis.critical_path)}\n"
                f"complexity: {analysis.complexity}\n"
                f"strategy: {analysis.strategy}\n"
                f"execution: {execution_summary(analysis.executions)}",
                highlight=False,
            )
        return EXIT_OK

    run_command(main)
