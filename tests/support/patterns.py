"""The workflow-patterns catalogue (docs/patterns.md) for its tests: the definitions, read from
the document itself so that the YAML a reader sees is the YAML that runs, the summary table,
and the helpers the catalogue's tests share (a worker, runs, timing of step records)."""

from __future__ import annotations

import asyncio
import itertools
import re
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from temporalio.client import Client

from activities.registry import ActionRegistry
from tests.support.flows import FAST as FAST, status_when as status_when
from worker.client import CadenzaClient
from worker.settings import Settings
from worker.wiring import running_worker
from workflows.contracts import ExecutionResult, StepRecord, StepStatus
from workflows.dsl.loader import parse_document

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "patterns.md"
# FAST (imported from tests.support.flows, as status_when) is the only thing the tests add to a
# definition of the document, besides the run's input.

_SECTION = re.compile(r"^### WCP-(\d+) (.+)$", re.M)
_YAML = re.compile(r"^```yaml\n(.*?)^```$", re.M | re.S)
_ROW = re.compile(r"^\| WCP-(\d+) ([^|]+?) \| ([^|]+?) \| ([^|]+?) \|$", re.M)


@cache
def sections() -> dict[int, str]:
    """Pattern number -> the text of its `### WCP-N` section."""
    text = DOC.read_text(encoding="utf-8")
    heads = list(_SECTION.finditer(text))
    ends = [h.start() for h in heads[1:]] + [len(text)]
    return {int(h.group(1)): text[h.start() : end] for h, end in zip(heads, ends, strict=True)}


def snippets(number: int) -> list[str]:
    """The `yaml` blocks of pattern `number`'s section, in order."""
    return _YAML.findall(sections()[number])


def definition(number: int, which: int = 0) -> dict[str, Any]:
    """The definition of pattern `number` (its `which`-th YAML block), parsed by cadenza's own
    loader, with the fast retry policy under its own."""
    source = f"docs/patterns.md#wcp-{number}"
    document = parse_document(snippets(number)[which], source)
    document["retry_policy"] = {**FAST, **document.get("retry_policy", {})}
    return document


@dataclass(frozen=True)
class Row:
    number: int
    name: str
    support: str
    """`yes`, `partly`, `no`, with a note: `yes (`event`)`."""
    test_column: str

    @property
    def kind(self) -> str:
        """yes | partly | no."""
        return self.support.split(" ")[0]

    @property
    def tests(self) -> list[str]:
        """The test function names the row's test column names."""
        return re.findall(r"`(test_[a-z0-9_]+)`", self.test_column)


def table() -> list[Row]:
    """The summary table of the document."""
    text = DOC.read_text(encoding="utf-8")
    return [Row(int(n), name, support, tests) for n, name, support, tests in _ROW.findall(text)]


@asynccontextmanager
async def catalogue_worker(
    client: Client, registry: ActionRegistry
) -> AsyncIterator[CadenzaClient]:
    """A worker on a task queue of its own for a whole test module (one worker start instead of
    one per test), and a CadenzaClient on that queue."""
    task_queue = f"catalogue-{uuid.uuid4().hex[:10]}"
    async with running_worker(client, Settings(), registry, task_queue=task_queue):
        yield CadenzaClient(client, task_queue)


async def run(cadenza: CadenzaClient, definition: dict[str, Any], *inputs: Any) -> Any:
    """Run `definition` once per input (concurrently), return the results in order: one result
    for one input (or none), a list for several."""
    handles = [await cadenza.start(definition, i or {}) for i in (inputs or [None])]
    results = await asyncio.gather(*(cadenza.result(h.id) for h in handles))
    return results[0] if len(results) == 1 else list(results)


def statuses(state: ExecutionResult, *step_ids: str) -> list[StepStatus | None]:
    """The status of each step (None for a step not in the state yet, e.g. a map instance)."""
    return [state.steps[s].status if s in state.steps else None for s in step_ids]


async def start_until(
    cadenza: CadenzaClient,
    definition: dict[str, Any],
    wanted: dict[str, StepStatus],
    run_input: dict[str, Any] | None = None,
) -> str:
    """Start a run and wait until each step of `wanted` has its status; the execution id."""
    handle = await cadenza.start(definition, run_input or {})
    await status_when(
        cadenza,
        handle.id,
        lambda s: statuses(s, *wanted) == list(wanted.values()),
        f"statuses {wanted}",
    )
    return handle.id


def started(record: StepRecord) -> datetime:
    assert record.started_at is not None, record
    return datetime.fromisoformat(record.started_at)


def ended(record: StepRecord) -> datetime:
    assert record.ended_at is not None, record
    return datetime.fromisoformat(record.ended_at)


def in_order(result: ExecutionResult, *step_ids: str) -> None:
    """Each step started after the one before it ended."""
    for first, then in itertools.pairwise(step_ids):
        assert started(result.steps[then]) >= ended(result.steps[first]), f"{then} before {first}"


def concurrent(result: ExecutionResult, step_ids: Iterable[str]) -> bool:
    """Whether all the steps ran at one moment (the last start before the first end)."""
    records = [result.steps[s] for s in step_ids]
    return max(started(r) for r in records) < min(ended(r) for r in records)


def one_at_a_time(result: ExecutionResult, step_ids: Iterable[str]) -> bool:
    """Whether no two of the steps overlapped."""
    records = sorted((result.steps[s] for s in step_ids), key=started)
    return all(started(b) >= ended(a) for a, b in itertools.pairwise(records))


def seconds_between(earlier: str, later: str) -> float:
    """Seconds from one ISO 8601 time (a step's `at` output, `string(now)`) to another."""
    stamp = datetime.fromisoformat
    return (stamp(later) - stamp(earlier)).total_seconds()
