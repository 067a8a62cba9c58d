"""Definitions served by name (`cadenza worker --definitions DIR`, `CADENZA_DEFINITIONS`): any
Temporal client, in any language, starts `AdvancedWorkflowRun` with
`{"workflow": "NAME", "version": "1.2", "input": {...}}` and the run gets the definition from
this folder through the local activity `cadenza.definitions.resolve`, whose result the history
keeps: a replay never reads the folder again.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import ErrorType
from cadenza.errors import EXIT_USAGE, CadenzaError
from worker.definition_files import load_definition
from workflows.contracts import RESOLVE_ACTIVITY
from workflows.dsl.validate import validate_definition

log = logging.getLogger("cadenza.definitions")
SUFFIXES = (".yaml", ".yml", ".json")


class DefinitionsInvalid(CadenzaError):
    """A definition file of the served folder does not load or validate; the worker does not
    start with it. Fix the file (`cadenza validate FILE` shows every problem) or remove it."""

    exit_code = EXIT_USAGE


class DefinitionLibrary:
    """The definitions of a folder by (workflow_id, version), loaded and validated once."""

    def __init__(self, folder: Path | None, known_actions: list[str] | None = None) -> None:
        self.folder = folder
        self.by_name: dict[str, dict[str, dict[str, Any]]] = {}
        if folder is not None:
            self._load(folder, known_actions)

    def _load(self, folder: Path, known_actions: list[str] | None) -> None:
        if not folder.is_dir():
            raise DefinitionsInvalid(f"--definitions {folder}: not a folder")
        for path in sorted(p for p in folder.rglob("*") if p.suffix in SUFFIXES):
            try:
                data = load_definition(path)
            except CadenzaError as exc:
                raise DefinitionsInvalid(f"{path}: {exc}") from None
            report = validate_definition(data, known_actions)
            if not report.ok:
                raise DefinitionsInvalid(f"{path} does not validate:\n{report.summary()}")
            name, version = str(data["workflow_id"]), str(data.get("version", "1.0"))
            versions = self.by_name.setdefault(name, {})
            if version in versions:
                raise DefinitionsInvalid(f"{path}: {name} v{version} is defined twice")
            versions[version] = data
        log.info("serving %d definitions from %s", len(self.by_name), folder)

    def resolve(self, name: str, version: str | None) -> dict[str, Any]:
        """The definition `name` at `version` (None: the highest); a non-retryable
        ApplicationError (DefinitionInvalid) naming what is served otherwise."""
        if self.folder is None:
            raise _refused(
                "this worker serves no definitions by name: start it with `cadenza worker "
                "--definitions DIR` (or CADENZA_DEFINITIONS), or start the run with the "
                "whole definition"
            )
        versions = self.by_name.get(name)
        if versions is None:
            known = ", ".join(sorted(self.by_name)) or "none"
            raise _refused(f"no definition {name!r} in {self.folder}; served: {known}")
        if version is None:
            version = max(versions, key=_version_key)
        if version not in versions:
            raise _refused(
                f"{name} has no version {version!r}; versions: "
                + ", ".join(sorted(versions, key=_version_key))
            )
        return versions[version]

    @activity.defn(name=RESOLVE_ACTIVITY)
    async def resolve_activity(self, request: dict[str, Any]) -> dict[str, Any]:
        """The local activity: `{workflow, version}` -> the definition."""
        return self.resolve(str(request.get("workflow")), request.get("version"))


def _refused(message: str) -> ApplicationError:
    return ApplicationError(message, type=ErrorType.DEFINITION_INVALID, non_retryable=True)


def _version_key(version: str) -> tuple[Any, ...]:
    """`1.10` after `1.9`: numeric parts compared as numbers."""
    return tuple(
        (0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.\-+]", version)
    )
