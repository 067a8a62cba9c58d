"""What every `cadenza` command shares: the consoles, exit codes, how a command runs and fails
(a CadenzaError -> its message and its `exit_code`, never a traceback), and input loading."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from activities.registry import ActionRegistry, load_action_modules
from activities.std import default_registry
from cadenza.errors import EXIT_FAILED as EXIT_FAILED, EXIT_USAGE as EXIT_USAGE, CadenzaError
from worker.cli.render import SafeConsole, esc
from worker.definition_files import load_definition
from worker.settings import Settings
from workflows.dsl.loader import MAX_DEPTH, ShapeError, check_shape

# Off a terminal (pipes, CI logs) tables get room instead of being folded at 80 columns.
# User text is printed as text: no markup unless a call asks (worker/cli/render.py).
out = SafeConsole(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = SafeConsole(stderr=True, soft_wrap=True)

EXIT_OK = 0  # EXIT_FAILED (1) and EXIT_USAGE (2) come from cadenza.errors
ActionsOpt = Annotated[
    list[str] | None,
    typer.Option("--actions", help="Extra action module to load (repeatable)."),
]


def print_started(execution_id: str, as_json: bool, follow: str) -> int:
    """What `run` and `task` print when they do not wait: the id (JSON) or how to follow it."""
    if as_json:
        sys.stdout.write(json.dumps({"execution_id": execution_id}) + "\n")
    else:
        out.print(f"started {execution_id}; follow it with `cadenza {follow} {execution_id}`")
    return EXIT_OK


class UsageError(CadenzaError):
    """Bad input from the user: printed on stderr, exit code 2; the message says what to change."""

    exit_code = EXIT_USAGE


def exit_now(code: int) -> NoReturn:
    # The SDK's runtime can abort at interpreter shutdown (sdk-python #300): flush and leave.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_command(coro: Callable[[], Coroutine[Any, Any, int]]) -> NoReturn:
    try:
        code = asyncio.run(coro())
    except CadenzaError as exc:
        err.print(f"[red]error:[/red] {esc(exc)}", highlight=False, markup=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        code = 130
    exit_now(code)


def load_registry(actions: list[str] | None) -> ActionRegistry:
    registry = default_registry()
    try:
        load_action_modules([*Settings().actions, *(actions or [])])
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    return registry


def load_file(path: Path) -> dict[str, Any]:
    """A definition file, with the files its workflow steps name inlined."""
    return load_definition(path)


MAX_INPUT_FILE_BYTES = 10 * 1024 * 1024
"""What `--input @FILE` reads at most (a run input is at most 1 MiB of JSON anyway)."""


def read_input_file(name: str) -> str:
    """The text of `--input @name`: read no further than MAX_INPUT_FILE_BYTES (`/dev/zero`,
    a huge file), UTF-8, every problem a UsageError naming the file."""
    try:
        with Path(name).open("rb") as f:
            raw = f.read(MAX_INPUT_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read input file {name}: {exc.strerror}") from None
    if len(raw) > MAX_INPUT_FILE_BYTES:
        raise UsageError(
            f"input file {name} is over {MAX_INPUT_FILE_BYTES} bytes; a run input is at most "
            "1 MiB of JSON: pass large data by reference (a URL, a storage key)"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"input file {name} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start}); pass a JSON object"
        ) from None


def parse_input(value: str | None) -> dict[str, Any]:
    """`--input JSON` or `--input @FILE` as a mapping; a UsageError (exit 2) for anything
    else, naming the file and the problem: unreadable, too large, not UTF-8, not JSON, nested
    or expanding past the run-input limits, not an object."""
    if not value:
        return {}
    data = parse_json_value(value, "--input")
    if not isinstance(data, dict):
        source = f"input file {value[1:]}" if value.startswith("@") else "--input"
        raise UsageError(f"{source} must be a JSON object, not a {type(data).__name__}")
    return data


def parse_json_value(value: str, option: str) -> Any:
    """An option's JSON value, given inline or as @FILE (`--input`, `--data`), within the
    run-input limits; every problem a UsageError naming the option or the file."""
    source, text = option, value
    if value.startswith("@"):
        source, text = f"input file {value[1:]}", read_input_file(value[1:])
    try:
        data = json.loads(text)
        check_shape(data)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{source} is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "pass JSON or @file.json"
        ) from None
    except RecursionError:
        raise UsageError(f"{source}: JSON nests more than {MAX_DEPTH} levels deep") from None
    except ShapeError as exc:
        raise UsageError(f"{source}: {exc}") from None
    return data


def human_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"
