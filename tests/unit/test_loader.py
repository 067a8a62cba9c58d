"""Parsing documents: clear errors with line numbers, limits, no Python objects from YAML."""

from __future__ import annotations

import pytest

from workflows.dsl.loader import MAX_DOCUMENT_BYTES, DocumentError, parse_document


def test_yaml_and_json_parse_to_the_same_mapping() -> None:
    yaml_doc = b"workflow_id: a\nsteps:\n  - step_id: s\n    action: std.echo\n"
    json_doc = b'{"workflow_id": "a", "steps": [{"step_id": "s", "action": "std.echo"}]}'
    assert parse_document(yaml_doc, "a.yaml") == parse_document(json_doc, "a.json")


@pytest.mark.parametrize(
    ("raw", "source", "fragment"),
    [
        (b"workflow_id: a\nsteps: [\n  - x\n", "bad.yaml", "line 3"),
        (b'{"workflow_id": "a",\n "steps": [}', "bad.json", "line 2, column 12"),
        (b"workflow_id: \xff\xfe\n", "latin.yaml", "not UTF-8"),
        (b"- just\n- a list\n", "list.yaml", "is a list"),
        (b"", "empty.yaml", "empty"),
        (b"x: !!python/object/apply:os.system ['echo hi']\n", "evil.yaml", "invalid YAML"),
        (
            b"a: &a [1]\n" + b"".join(b"k%d: *a\n" % i for i in range(200)),
            "bomb.yaml",
            "YAML aliases",
        ),
        (b"x" * (MAX_DOCUMENT_BYTES + 1), "big.yaml", "the limit is"),
        (b"[" * 10000 + b"]" * 10000, "deep.json", "nest more than 64 levels"),
    ],
)
def test_bad_documents_get_clear_errors(raw: bytes, source: str, fragment: str) -> None:
    with pytest.raises(DocumentError) as info:
        parse_document(raw, source)
    assert fragment in str(info.value)
    assert str(info.value).startswith(source)
