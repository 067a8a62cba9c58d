"""Parse definition documents (YAML or JSON bytes) safely, with sizes limited.

YAML is read with `safe_load` semantics (no Python objects), a cap on the document size and on
alias use (alias bombs), and errors that carry line and column.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from cadenza.errors import EXIT_USAGE, CadenzaError

MAX_DOCUMENT_BYTES = 2_097_152
MAX_YAML_ALIASES = 100
MAX_VALUES = 1_000_000
"""Values (mappings, lists, scalars) a document may expand to; aliases count each time used."""
MAX_DEPTH = 64
"""How deeply mappings and lists may nest (parallel containers nest 16 at most)."""


class DocumentError(CadenzaError):
    """A document that cannot be read as a definition: the message says where and why.

    Fix the file at the line and column named (UTF-8, YAML or JSON, one mapping).
    """

    exit_code = EXIT_USAGE


class ShapeError(CadenzaError, ValueError):
    """A value nests too deeply or expands to too many values.

    Flatten the value, or pass large data by reference (a URL, a storage key).
    """

    exit_code = EXIT_USAGE


def check_shape(value: Any, max_values: int = MAX_VALUES, max_depth: int = MAX_DEPTH) -> None:
    """Walk `value` without recursion and stop at the first limit it passes.

    YAML aliases share objects: a document of a few hundred bytes can expand to billions of
    values, which only a walk that counts every visit (with an early stop) catches.

    Raises:
        ShapeError: deeper than `max_depth`, or more than `max_values` values.
    """
    seen = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > max_values:
            raise ShapeError(
                f"expands to more than {max_values:,} values (YAML aliases?); write less"
            )
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth >= max_depth and children:
            raise ShapeError(f"nests more than {max_depth} levels deep")
        stack.extend((child, depth + 1) for child in children)


def _flow_depth(text: str, limit: int) -> bool:
    """True when brackets nest deeper than `limit` (checked before the parser recurses)."""
    depth = 0
    quote = ""
    for char in text:
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


class _LimitedLoader(yaml.SafeLoader):
    """SafeLoader that refuses documents using more than MAX_YAML_ALIASES aliases."""

    aliases_seen = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            self.aliases_seen += 1
            if self.aliases_seen > MAX_YAML_ALIASES:
                mark = self.peek_event().start_mark
                raise DocumentError(
                    f"line {mark.line + 1}, column {mark.column + 1}: more than "
                    f"{MAX_YAML_ALIASES} YAML aliases; write the values out instead"
                )
        return super().compose_node(parent, index)


def _text(raw: bytes | str, source: str) -> str:
    """The document as text: UTF-8 (the failing line named), without a byte-order mark."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise DocumentError(
                f"{source}: line {line}: not UTF-8 (byte 0x{raw[exc.start]:02x} at offset "
                f"{exc.start}); save the file as UTF-8"
            ) from None
    else:
        text = raw
    return text[1:] if text.startswith("\ufeff") else text


def _parse_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DocumentError(
            f"{source}: line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}"
        ) from None
    except RecursionError:
        raise DocumentError(f"{source}: JSON nests too deeply") from None


def _parse_yaml(text: str, source: str) -> Any:
    loader = None
    try:
        loader = _LimitedLoader(text)  # its reader refuses control characters at once
        return loader.get_single_data()
    except DocumentError as exc:
        raise DocumentError(f"{source}: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or exc.context or "malformed YAML"
        raise DocumentError(f"{source}: {where}invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise DocumentError(f"{source}: invalid YAML: {exc}") from None
    except RecursionError:
        raise DocumentError(f"{source}: YAML nests too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def parse_document(raw: bytes | str, source: str = "<input>") -> dict[str, Any]:
    """Parse a YAML or JSON definition document into a mapping.

    Args:
        raw: the document; bytes must be UTF-8.
        source: a name for messages (a file name); `.json` selects the JSON parser.

    Raises:
        DocumentError: not UTF-8, too large, malformed (with line and column), or not a mapping.
    """
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise DocumentError(f"{source}: {len(raw)} bytes; the limit is {MAX_DOCUMENT_BYTES} bytes")
    text = _text(raw, source)
    if _flow_depth(text, MAX_DEPTH):
        raise DocumentError(f"{source}: brackets nest more than {MAX_DEPTH} levels deep")
    data = _parse_json(text, source) if source.endswith(".json") else _parse_yaml(text, source)
    if data is None:
        raise DocumentError(f"{source}: the document is empty")
    try:
        check_shape(data)
    except ShapeError as exc:
        raise DocumentError(f"{source}: {exc}") from None
    if not isinstance(data, dict):
        raise DocumentError(
            f"{source}: the document is a {type(data).__name__}; a definition is a mapping "
            "with workflow_id and steps"
        )
    return data
