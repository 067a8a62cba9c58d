"""Schedules on Temporal Schedules, on the real server: runs carrying the schedule id, pause and
trigger, overlap `skip`, describe, update, backfill, delete; and the CLI."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from temporalio.client import Client

from tests.support.processes import cadenza as cli
from worker.client import CadenzaClient
from worker.schedule_models import ScheduleError, ScheduleView
from worker.schedules import UnknownSchedule
from workflows.contracts import SA_SCHEDULE_ID, SA_VERSION, SA_WORKFLOW_ID

T = TypeVar("T")


def definition(version: str = "1", seconds: float = 0) -> dict[str, Any]:
    step: dict[str, Any] = {"step_id": "hello", "action": "std.echo"}
    if seconds:
        step = {"step_id": "nap", "action": "std.sleep", "input_mapping": {"seconds": str(seconds)}}
    return {"workflow_id": "nightly", "version": version, "steps": [step]}


def new_id() -> str:
    return f"sched-{uuid.uuid4().hex[:10]}"


async def until(check: Callable[[], Awaitable[T | None]], timeout: float = 20, what: str = "") -> T:
    """Poll `check` until it returns something truthy, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def ran(cadenza: CadenzaClient, sid: str, count: int, status: str = "") -> ScheduleView:
    """The schedule once it has started `count` runs (and, given `status`, one has it)."""

    async def check() -> ScheduleView | None:
        view = await cadenza.describe_schedule(sid)
        enough = len(view.recent_runs) >= count
        return (
            view
            if enough and (not status or any(r.status == status for r in view.recent_runs))
            else None
        )

    return await until(check, what=f"{count} runs of schedule {sid}")


async def retire(cadenza: CadenzaClient, sid: str, cancel: bool = False) -> None:
    """Pause and delete the schedule, then let its runs end (cancelled, with `cancel`) before
    the test's worker stops."""
    await cadenza.pause_schedule(sid)
    running = (await cadenza.describe_schedule(sid)).running
    await cadenza.delete_schedule(sid)
    for execution_id in running:
        if cancel:
            await cadenza.cancel(execution_id)
        await cadenza.result(execution_id)


async def test_a_schedule_every_2s_starts_runs_carrying_its_id(
    cadenza: CadenzaClient, worker_factory, client: Client
) -> None:
    sid = new_id()
    async with worker_factory():
        created = await cadenza.create_schedule(sid, definition(), {"day": 1}, every="2s")
        try:
            assert created.spec == "every 2s" and created.next_run_times
            assert created.next_run_times[0] > datetime.now(UTC) - timedelta(seconds=1)
            view = await ran(cadenza, sid, 2, status="completed")
        finally:
            await retire(cadenza, sid)
    assert view.workflow_id == "nightly" and view.input == {"day": 1} and view.actions >= 2
    assert view.execution_id_prefix == f"nightly-sched-{sid}"
    first = view.recent_runs[0]
    assert first.execution_id.startswith(f"nightly-sched-{sid}-")
    assert first.scheduled_at <= first.started_at
    described = await client.get_workflow_handle(first.execution_id).describe()
    attributes = described.typed_search_attributes
    assert attributes.get(SA_SCHEDULE_ID) == sid
    assert attributes.get(SA_WORKFLOW_ID) == "nightly" and attributes.get(SA_VERSION) == "1"

    async def listed() -> list[str]:
        query = f"CadenzaScheduleId = '{sid}'"
        return [w.id async for w in client.list_workflows(query)]

    assert first.execution_id in await until(listed, what="runs in visibility")


async def test_a_paused_schedule_starts_nothing_until_triggered_by_hand(
    cadenza: CadenzaClient, worker_factory
) -> None:
    sid = new_id()
    async with worker_factory():
        await cadenza.create_schedule(sid, definition(), every="1s", paused=True, note="held")
        try:
            view = await cadenza.describe_schedule(sid)
            assert view.paused and view.note == "held" and view.actions == 0
            await cadenza.trigger_schedule(sid)  # works while paused
            view = await ran(cadenza, sid, 1, status="completed")
            assert view.paused and view.actions == 1  # the 1 s interval started nothing
            await cadenza.pause_schedule(sid, "still held")
            assert (await cadenza.describe_schedule(sid)).note == "still held"
            await cadenza.unpause_schedule(sid, "go")
            view = await ran(cadenza, sid, 2)
            assert not view.paused and view.note == "go"
        finally:
            await retire(cadenza, sid)


async def test_overlap_skip_starts_nothing_while_a_run_is_still_going(
    cadenza: CadenzaClient, worker_factory
) -> None:
    sid = new_id()
    async with worker_factory():
        await cadenza.create_schedule(sid, definition(seconds=4), every="1s", overlap="skip")
        try:

            async def skipped() -> ScheduleView | None:
                view = await cadenza.describe_schedule(sid)
                assert len(view.running) <= 1, view.running
                return view if view.skipped_overlap >= 2 else None

            view = await until(skipped, what="skipped starts")
        finally:
            await retire(cadenza, sid, cancel=True)
    assert view.overlap == "skip" and view.actions == 1
    assert [r.status for r in view.recent_runs] == ["running"]


async def test_update_changes_the_stored_definition_backfill_and_delete(
    cadenza: CadenzaClient, worker_factory
) -> None:
    sid = new_id()
    await cadenza.create_schedule(sid, definition("1"), {"k": "v"}, cron="0 9 * * 1-5", paused=True)
    try:
        view = await cadenza.describe_schedule(sid)
        assert view.spec == "cron 0 9 * * 1-5" and view.definition["version"] == "1"
        assert all(t.hour == 9 and t.weekday() < 5 for t in view.next_run_times)
        broken = {
            **definition("3"),
            "steps": [{"step_id": "x", "action": "std.echo", "dependencies": ["y"]}],
        }
        with pytest.raises(ScheduleError) as refused:
            await cadenza.update_schedule(sid, broken)
        assert refused.value.report is not None and "unknown step 'y'" in str(refused.value)
        view = await cadenza.update_schedule(sid, definition("2"), every="1h", overlap="allow_all")
        assert view.definition["version"] == "2" and view.version == "2"
        assert view.input == {"k": "v"} and view.spec == "every 1h" and view.overlap == "allow_all"
        async with worker_factory():
            now = datetime.now(UTC)
            await cadenza.backfill_schedule(sid, now - timedelta(hours=2, minutes=30), now)
            view = await ran(cadenza, sid, 2, status="completed")
        assert view.paused and all(r.scheduled_at < now for r in view.recent_runs)
    finally:
        await cadenza.delete_schedule(sid)
    with pytest.raises(UnknownSchedule):
        await cadenza.describe_schedule(sid)


async def test_bad_timing_and_unknown_ids_are_refused_with_the_accepted_forms(
    cadenza: CadenzaClient,
) -> None:
    sid = new_id()
    for timing, said in [
        ({"every": "5 minutes"}, "e.g. 30s, 5m, 1h"),
        ({"every": "0s"}, "longer than 0"),
        ({"cron": "every day"}, "5 fields"),
        ({"cron": "61 * * * *"}, "Minute is not in range"),
        ({}, "exactly one of --cron EXPR or --every DURATION"),
    ]:
        with pytest.raises(ScheduleError, match=said):
            await cadenza.create_schedule(sid, definition(), **timing)
    with pytest.raises(UnknownSchedule, match=f"no schedule '{sid}'"):
        await cadenza.trigger_schedule(sid)


def test_cli_create_refuses_an_invalid_definition_and_creates_nothing(
    temporal_address: str, tmp_path: Path
) -> None:
    sid = new_id()
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "workflow_id: w\nsteps:\n  - step_id: a\n    action: std.echo\n    dependencies: [b]\n"
    )
    proc = cli("schedule", "create", str(bad), "--id", sid, "--every", "1h")
    assert proc.returncode == 2, proc.stderr
    assert f"{bad}: steps[0].dependencies[0]: unknown_dependency: unknown step 'b'" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = cli("schedule", "describe", sid)
    assert proc.returncode == 2 and f"no schedule '{sid}'" in proc.stderr
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(definition()))
    proc = cli("schedule", "create", str(good), "--id", sid, "--every", "soon")
    assert proc.returncode == 2 and "30s, 5m, 1h" in proc.stderr


def test_cli_create_list_json_describe_delete(temporal_address: str, tmp_path: Path) -> None:
    sid = new_id()
    file = tmp_path / "nightly.yaml"
    file.write_text(yaml.safe_dump(definition()))
    proc = cli("schedule", "create", str(file), "--id", sid, "--cron", "30 6 * * *", "--paused")
    assert proc.returncode == 0, proc.stderr
    assert f"schedule {sid} created (paused)" in proc.stdout
    try:
        deadline = time.monotonic() + 20
        while True:  # visibility lists a new schedule after a moment
            proc = cli("schedule", "list", "--json")
            assert proc.returncode == 0, proc.stderr
            rows = {row["schedule_id"]: row for row in json.loads(proc.stdout)}
            if sid in rows or time.monotonic() > deadline:
                break
        row = rows[sid]
        assert (
            row["workflow_id"] == "nightly" and row["paused"] and row["spec"] == "cron 30 6 * * *"
        )
        proc = cli("schedule", "describe", sid, "--json")
        assert proc.returncode == 0 and json.loads(proc.stdout)["definition"] == definition()
        proc = cli("schedule", "describe", sid)
        assert "when: cron 30 6 * * *" in proc.stdout and "recent runs: none yet" in proc.stdout
    finally:
        proc = cli("schedule", "delete", sid)
    assert proc.returncode == 0 and f"schedule {sid} deleted" in proc.stdout
