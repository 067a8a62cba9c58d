"""Observability as an operator sees it: traces exported over OTLP/HTTP by real `cadenza`
processes, `cadenza status --watch` and `cadenza top`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tests.support.processes import ROOT, cadenza, spawn_worker
from tests.support.receivers import receiver

GATED = {
    "workflow_id": "gated",
    "sla_targets": {"max_duration_seconds": 3600},
    "steps": [
        {"step_id": "a", "action": "std.echo"},
        {"step_id": "gate", "step_type": "approval", "dependencies": ["a"]},
        {"step_id": "b", "action": "std.echo", "dependencies": ["gate"]},
    ],
}


def stop(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    proc.wait(timeout=30)


def started_id(task_queue: str, file: Path) -> str:
    proc = cadenza("run", str(file), "--json", "--task-queue", task_queue)
    assert proc.returncode == 0, proc.stderr
    execution_id: str = json.loads(proc.stdout)["execution_id"]
    return execution_id


def test_traces_reach_an_otlp_http_receiver_as_one_trace_from_cadenza_run(
    temporal_address: str, task_queue: str, tmp_path: Path
) -> None:
    with receiver() as received:
        otel = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": received.url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        worker = spawn_worker(task_queue, tmp_path / "worker.log", **otel)
        try:
            proc = cadenza(
                "run",
                "examples/data-pipeline.yaml",
                "--input",
                '{"rows": [3, 1, 4]}',
                "--wait",
                "--json",
                "--task-queue",
                task_queue,
                **otel,
            )
            assert proc.returncode == 0, proc.stderr
            execution_id = json.loads(proc.stdout)["execution_id"]
            steps = set(json.loads(proc.stdout)["steps"])
        finally:
            stop(worker)  # SIGTERM: the worker flushes its spans on the way out
        spans = list(received.spans)
        metric_names = set(received.metric_names)
    log = (tmp_path / "worker.log").read_text()
    assert "traces exported (otlp http/protobuf" in log, log
    cli = [s for s in spans if s["name"] == "cadenza run"]
    assert len(cli) == 1 and cli[0]["service"] == "cadenza-cli"
    assert cli[0]["attributes"]["cadenza.execution_id"] == execution_id
    mine = [s for s in spans if s["attributes"].get("cadenza.execution_id") == execution_id]
    runs = [s for s in mine if s["name"] == "cadenza.run"]
    assert len(runs) == 1 and runs[0]["service"] == "cadenza-worker"
    assert runs[0]["trace_id"] == cli[0]["trace_id"], "the run is not in the CLI's trace"
    step_spans = [s for s in mine if s["name"] == "cadenza.step"]
    assert sorted(s["attributes"]["cadenza.step_id"] for s in step_spans) == sorted(steps)
    assert {s["trace_id"] for s in mine} == {cli[0]["trace_id"]}
    # the monitor's metrics went to the same OTLP endpoint
    assert {"cadenza.steps", "cadenza.runs", "cadenza.step.duration"} <= metric_names


def test_status_watch_follows_a_run_until_it_ends(
    worker_process: subprocess.Popen[bytes], task_queue: str, tmp_path: Path
) -> None:
    file = tmp_path / "gated.yaml"
    file.write_text(yaml.safe_dump(GATED))
    execution_id = started_id(task_queue, file)
    watch = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "worker.cli",
            "status",
            execution_id,
            "--watch",
            "--interval",
            "0.2",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(100):
            pending = cadenza("pending", "--json")
            if any(p["execution_id"] == execution_id for p in json.loads(pending.stdout)):
                break
            time.sleep(0.2)
        time.sleep(0.5)  # the watcher sees the waiting step before it is decided
        approved = cadenza("approve", execution_id, "gate", "--by", "ops")
        assert approved.returncode == 0, approved.stderr
        stdout, stderr = watch.communicate(timeout=60)
    finally:
        if watch.poll() is None:
            watch.kill()
    assert watch.returncode == 0, stderr
    lines = stderr.splitlines()
    assert any(" a completed (attempts 1)" in line for line in lines), lines
    assert any(" gate waiting" in line and "waits for anyone" in line for line in lines), lines
    assert any(" gate completed" in line for line in lines), lines
    assert any(" b completed" in line for line in lines), lines
    assert "SLA ok" in stdout and "completed" in stdout


def test_top_lists_running_runs_with_progress_approvals_and_sla(
    worker_process: subprocess.Popen[bytes], task_queue: str, tmp_path: Path
) -> None:
    file = tmp_path / "gated.yaml"
    file.write_text(yaml.safe_dump(GATED))
    execution_id = started_id(task_queue, file)
    row: dict[str, Any] = {}
    for _ in range(100):
        proc = cadenza("top", "--json")
        assert proc.returncode == 0, proc.stderr
        row = next((r for r in json.loads(proc.stdout) if r["execution_id"] == execution_id), {})
        if row.get("waiting_approvals"):
            break
        time.sleep(0.2)
    assert row["workflow_id"] == "gated" and row["state"] == "running"
    assert (row["completed"], row["total"]) == (1, 3)
    assert row["waiting_approvals"] == ["gate"] and row["sla"] == "SLA ok"
    text = cadenza("top", "--once")
    assert text.returncode == 0 and execution_id in text.stdout and "SLA ok" in text.stdout
    approved = cadenza("approve", execution_id, "gate", "--by", "ops")
    assert approved.returncode == 0, approved.stderr
    finished = cadenza("status", execution_id, "--watch", "--json")
    assert finished.returncode == 0 and json.loads(finished.stdout)["status"] == "completed"
