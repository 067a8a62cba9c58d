"""Definition files: read one, and inline the files its `workflow` steps name.

A run executes only what its history holds, so `workflow: {file: refund.yaml}` is resolved when
the definition is loaded: the file is read (relative to the file naming it), its own file
references are inlined in turn, and it lands in the document's top-level `definitions` under its
file name (`refund`); the step then says `workflow: {name: refund}`. Files may name each other
(recursion): each file is inlined once.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from workflows.dsl.loader import MAX_DOCUMENT_BYTES, DocumentError, parse_document

MAX_FILES = 100
"""Definition files one document may pull in, all references followed."""


def read_document(path: Path) -> dict[str, Any]:
    """Parse one definition file (YAML or JSON), reading at most the document size limit."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise DocumentError(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_DOCUMENT_BYTES:  # read no further: /dev/zero, a huge file
        raise DocumentError(f"{path}: over {MAX_DOCUMENT_BYTES} bytes; that is the limit")
    return parse_document(raw, str(path))


def load_definition(path: str | Path) -> dict[str, Any]:
    """A definition file with every `workflow: {file}` it refers to inlined (see the module).

    Raises:
        DocumentError: a file cannot be read or parsed, or a reference cannot be resolved
            (the message names the step's path and the file looked for).
    """
    path = Path(path)
    document = read_document(path)
    return inline_files(document, path.parent)


def inline_files(document: dict[str, Any], base: Path) -> dict[str, Any]:
    """`document` with its `workflow: {file}` references inlined (files relative to `base`)."""
    if not isinstance(document.get("definitions", {}), dict):
        return document  # the validator reports the malformed field
    document = dict(document)
    names: dict[Path, str] = {}
    definitions = dict(document.get("definitions") or {})
    todo: list[tuple[dict[str, Any], Path, str]] = [(document, base, "")]
    for name, body in list(definitions.items()):
        if isinstance(body, dict):
            copy = dict(body)
            definitions[name] = copy
            todo.append((copy, base, f"definitions.{name}."))
    while todo:
        doc, where, prefix = todo.pop()
        for step, path in _steps(doc, prefix):
            spec = step.get("workflow")
            if not (isinstance(spec, dict) and isinstance(spec.get("file"), str)):
                continue
            target = (where / spec["file"]).resolve()
            name = names.get(target)
            if name is None:
                if len(names) >= MAX_FILES:
                    raise DocumentError(f"{path}.workflow.file: more than {MAX_FILES} files")
                if not target.is_file():
                    raise DocumentError(
                        f"{path}.workflow.file: no file {spec['file']!r} (looked for {target})"
                    )
                body = read_document(target)
                if "definitions" in body:
                    raise DocumentError(
                        f"{target}: a file called by a workflow step has no `definitions` of "
                        "its own (name the files it calls with `workflow: {file}` instead)"
                    )
                name = names[target] = _free_name(target.stem, definitions)
                definitions[name] = body
                todo.append((body, target.parent, f"definitions.{name}."))
            step["workflow"] = {k: v for k, v in spec.items() if k != "file"} | {"name": name}
    if definitions:
        document = {**document, "definitions": definitions}
    return document


def _steps(doc: dict[str, Any], prefix: str) -> list[tuple[dict[str, Any], str]]:
    """Every step mapping of `doc` (nested ones included; copied so the caller may change
    them), with its path."""
    out: list[tuple[dict[str, Any], str]] = []
    stack: list[tuple[dict[str, Any], str, str]] = [(doc, "steps", prefix + "steps")]
    while stack:
        holder, key, path = stack.pop()
        items = holder.get(key)
        if not isinstance(items, list):
            continue
        copies = [dict(s) if isinstance(s, dict) else s for s in items]
        holder[key] = copies
        for i, step in enumerate(copies):
            if not isinstance(step, dict):
                continue
            here = f"{path}[{i}]"
            out.append((step, here))
            stack.append((step, "parallel_steps", f"{here}.parallel_steps"))
            spec = step.get("map")
            if isinstance(spec, dict) and isinstance(spec.get("step"), dict):
                mapped = step["map"] = dict(spec)
                wrapper = {"steps": [mapped["step"]]}
                inner = _steps(wrapper, "")
                out += [(s, f"{here}.map.step{p[len('steps[0]') :]}") for s, p in inner]
                mapped["step"] = wrapper["steps"][0]
    return out


def _free_name(stem: str, taken: dict[str, Any]) -> str:
    base = re.sub(r"[^a-z0-9_.-]", "-", stem.lower()).strip("-._") or "workflow"
    if not base[0].isalnum():
        base = "w" + base
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name
