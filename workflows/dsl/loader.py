"""Parse definition documents (YAML or JSON bytes) safely, with sizes limited.

YAML is read with `safe_load` semantics (no Python objects), a cap on the document size and on
alias use (alias bombs), and errors that carry line and column.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

MAX_DOCUMENT_BYTES = 2_097_152
MAX_YAML_ALIASES = 100


class DocumentError(Exception):
    """A document that cannot be read as a definition: the message says where and why."""


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
    if text.startswith("\ufeff"):
        text = text[1:]
    if source.endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DocumentError(
                f"{source}: line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}"
            ) from None
        except RecursionError:
            raise DocumentError(f"{source}: JSON nests too deeply") from None
    else:
        loader = _LimitedLoader(text)
        try:
            data = loader.get_single_data()
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
            loader.dispose()
    if data is None:
        raise DocumentError(f"{source}: the document is empty")
    if not isinstance(data, dict):
        raise DocumentError(
            f"{source}: the document is a {type(data).__name__}; a definition is a mapping "
            "with workflow_id and steps"
        )
    return data
