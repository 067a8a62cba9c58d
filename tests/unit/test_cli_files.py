"""Files the CLI reads (`validate FILE`, `run FILE --input @FILE`) that are not what they should
be: binary, nested deep, huge, endless. Each is a clear error naming the file and the problem,
exit code 2, never a traceback or a MemoryError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.processes import ROOT, cadenza
from worker.cli.base import MAX_INPUT_FILE_BYTES, UsageError, parse_input

DEFINITION = str(ROOT / "examples" / "data-pipeline.yaml")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    files = {
        "binary": b"\x89PNG\r\n\x1a\n\x00\xff" * 100,
        "deep-array": b"[" * 100_000 + b"]" * 100_000,
        "deep-object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        "deep-block": "".join(" " * i + "a:\n" for i in range(1500)).encode(),
        "huge": b'{"a": "' + b"x" * (MAX_INPUT_FILE_BYTES + 10) + b'"}',
        "list": b"[1, 2]",
        "wide": json.dumps({"a": [0] * 1_100_000}).encode(),
    }
    paths = {}
    for name, content in files.items():
        paths[name] = folder / f"{name}.json"
        paths[name].write_bytes(content)
    paths["deep-block"] = paths["deep-block"].rename(folder / "deep-block.yaml")
    paths["zero"] = Path("/dev/zero")
    paths["folder"] = folder
    return paths


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("binary", "is not UTF-8 text (byte 0x89 at offset 0)"),
        ("deep-array", "JSON nests more than 64 levels deep"),
        ("deep-object", "JSON nests more than 64 levels deep"),
        ("huge", f"is over {MAX_INPUT_FILE_BYTES} bytes"),
        ("zero", f"is over {MAX_INPUT_FILE_BYTES} bytes"),
        ("folder", "Is a directory"),
        ("list", "must be a JSON object, not a list"),
        ("wide", "expands to more than 1,000,000 values"),
    ],
)
def test_input_files_that_are_not_a_json_object_are_refused_naming_file_and_problem(
    hostile: dict[str, Path], name: str, problem: str
) -> None:
    with pytest.raises(UsageError) as caught:
        parse_input(f"@{hostile[name]}")
    assert str(hostile[name]) in str(caught.value) and problem in str(caught.value)


def test_inline_input_nested_deep_is_refused_too() -> None:
    with pytest.raises(UsageError, match="--input: JSON nests more than 64 levels"):
        parse_input("[" * 10_000 + "]" * 10_000)


@pytest.mark.parametrize("name", ["zero", "binary", "deep-array"])
def test_run_with_a_hostile_input_file_exits_2_without_a_traceback(
    hostile: dict[str, Path], name: str
) -> None:
    done = cadenza("run", DEFINITION, "--input", f"@{hostile[name]}", timeout=60)
    assert done.returncode == 2, done.stderr[-2000:]
    assert str(hostile[name]) in done.stderr and "Traceback" not in done.stderr


def test_validate_refuses_hostile_files_one_by_one_naming_each(hostile: dict[str, Path]) -> None:
    names = ["binary", "deep-array", "deep-object", "deep-block", "huge", "zero", "folder"]
    done = cadenza("validate", "--json", *(str(hostile[n]) for n in names), timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    reports = json.loads(done.stdout)["files"]
    for name, report in zip(names, reports, strict=True):
        assert report["file"] == str(hostile[name]) and not report["valid"]
        (diagnostic,) = report["diagnostics"]
        assert diagnostic["code"] == "unreadable" and str(hostile[name]) in diagnostic["message"]
