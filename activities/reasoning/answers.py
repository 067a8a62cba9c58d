"""How deeply a model's answer may nest: checked at the `cadenza.llm.chat` activity (a deeper
answer fails the call with ModelError) and again where workflow code parses an answer, so no
answer can raise RecursionError in a workflow (a parser or `json.dumps` recursing through a value
nested 100,000 deep fails the workflow task on every retry instead of the step).

Pure and without imports of its own: workflow code imports it.
"""

from __future__ import annotations

from typing import Any

MAX_ANSWER_DEPTH = 64
"""Levels of lists and mappings a model's answer (its text as JSON, a tool call's arguments) may
nest; tool arguments are action params, which nest a few levels."""


def value_too_deep(value: Any, limit: int = MAX_ANSWER_DEPTH) -> bool:
    """True when lists, tuples and mappings in `value` nest more than `limit` levels deep
    (walked without recursion, stopping at the first level past the limit)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth + 1 > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def text_too_deep(text: str, limit: int = MAX_ANSWER_DEPTH) -> bool:
    """True when the JSON brackets of `text` (outside JSON strings, escapes honoured) nest more
    than `limit` levels deep: a JSON parser of `text` recurses no deeper than this scan counts."""
    if text.count("[") + text.count("{") <= limit:
        return False  # the common case, without a scan in Python
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False
