"""The `cadenza` CLI as a user runs it: real processes, the embedded server, exit codes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from tests.support.cases import CASES
from tests.support.processes import cadenza


def test_validate_reports_every_malformed_definition_without_a_traceback(tmp_path: Path) -> None:
    files = []
    for i, (name, definition, path, code, _) in enumerate(CASES):
        file = tmp_path / f"case{i:02d}.yaml"
        file.write_text(yaml.safe_dump(definition, width=10**9))
        if name == "not a mapping":  # the CLI's document reader refuses it before validation
            code = "unreadable"
        files.append((file, path, code, name))
    proc = cadenza("validate", "--json", *(str(f) for f, *_ in files))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    reports = {r["file"]: r for r in json.loads(proc.stdout)["files"]}
    for file, path, code, name in files:
        report = reports[str(file)]
        assert not report["valid"], name
        assert any(d["path"] == path and d["code"] == code for d in report["diagnostics"]), (
            name,
            report["diagnostics"],
        )


def test_validate_text_output_and_exit_codes(tmp_path: Path) -> None:
    ok = cadenza("validate", "examples/order-fulfilment.yaml")
    assert ok.returncode == 0 and "valid" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "workflow_id: w\nsteps:\n  - step_id: a\n    action: std.echo\n    dependencies: [b]\n"
    )
    proc = cadenza("validate", str(bad))
    assert proc.returncode == 2
    assert f"{bad}: steps[0].dependencies[0]: unknown_dependency: unknown step 'b'" in proc.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("workflow_id: w\nsteps: [\n")
    proc = cadenza("validate", str(broken))
    assert proc.returncode == 2 and "line 3" in proc.stderr and "Traceback" not in proc.stderr


def test_schema_and_graph() -> None:
    schema = cadenza("schema")
    assert schema.returncode == 0
    assert json.loads(schema.stdout)["title"] == "AdvancedWorkflow"
    graph = cadenza("graph", "examples/order-fulfilment.yaml")
    assert graph.returncode == 0
    assert "flowchart TD" in graph.stdout and "s_charge_card --> s_ship" in graph.stdout
    plan = cadenza("plan", "examples/content-moderation.yaml", "--json")
    assert plan.returncode == 0
    analysis = json.loads(plan.stdout)
    assert analysis["strategy"] == "conditional" and analysis["steps"] == 9
    assert analysis["critical_path"][0] == "classify"


def run_json(task_queue: str, file: str, run_input: dict[str, Any]) -> tuple[int, dict]:
    proc = cadenza(
        "run",
        file,
        "--input",
        json.dumps(run_input),
        "--wait",
        "--json",
        "--task-queue",
        task_queue,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_run_wait_json_prints_the_execution_result(worker_process, task_queue: str) -> None:
    order = {"order_id": "A-7", "amount": 5, "address": "1 Main St"}
    code, result = run_json(task_queue, "examples/order-fulfilment.yaml", order)
    assert code == 0
    assert set(result) >= {
        "execution_id",
        "workflow_id",
        "version",
        "status",
        "vars",
        "error",
        "steps",
        "compensations",
        "approvals",
        "sla",
    }
    assert result["status"] == "completed" and result["vars"]["reservation"] == "R-A-7"
    assert result["steps"]["charge_card"]["attempts"] == 3

    code, failed = run_json(
        task_queue, "examples/order-fulfilment.yaml", {"order_id": "B", "amount": 1}
    )
    assert code == 1 and failed["status"] == "failed"
    assert [c["step_id"] for c in failed["compensations"]] == ["charge_card", "reserve_stock"]

    status = cadenza("status", failed["execution_id"], "--json")
    assert status.returncode == 0
    assert json.loads(status.stdout)["compensations"] == failed["compensations"]


def test_run_rejects_bad_input_with_exit_2(temporal_address: str) -> None:
    proc = cadenza("run", "examples/data-pipeline.yaml", "--input", "{not json")
    assert proc.returncode == 2 and "--input is not JSON" in proc.stderr


def test_commands_say_when_the_server_is_unreachable() -> None:
    proc = cadenza("status", "nothing", TEMPORAL_ADDRESS="127.0.0.1:1")
    assert proc.returncode == 2
    assert "cannot reach Temporal at 127.0.0.1:1" in proc.stderr and "cadenza server" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_approve_reject_and_pending_from_the_cli(worker_process, task_queue: str) -> None:
    started = cadenza(
        "run",
        "examples/expense-approval.yaml",
        "--input",
        '{"amount": 12, "employee": "ada"}',
        "--json",
        "--task-queue",
        task_queue,
    )
    assert started.returncode == 0, started.stderr
    run_id = json.loads(started.stdout)["execution_id"]
    for _ in range(100):
        listed = cadenza("pending", "--json")
        pending = [p for p in json.loads(listed.stdout) if p["execution_id"] == run_id]
        if pending:
            break
    assert pending[0]["step_id"] == "manager_approval"
    assert pending[0]["approvers"] == ["maria", "mark"]
    table = cadenza("pending")
    assert run_id in table.stdout and "maria, mark" in table.stdout

    refused = cadenza("approve", run_id, "manager_approval", "--by", "mallory")
    assert refused.returncode == 2
    assert "refused: 'mallory' may not decide step 'manager_approval'" in refused.stderr
    ok = cadenza("approve", run_id, "manager_approval", "--by", "maria", "--comment", "fine")
    assert ok.returncode == 0 and "approved" in ok.stdout, ok.stderr
    again = cadenza("reject", run_id, "manager_approval", "--by", "mark", "--reason", "late")
    assert again.returncode == 2
    assert "is not waiting" in again.stderr or "has already ended" in again.stderr

    for _ in range(100):
        status = json.loads(cadenza("status", run_id, "--json").stdout)
        if status["status"] != "running":
            break
    assert status["status"] == "completed"
    assert status["steps"]["pay"]["output"]["approved_by"] == "maria"
    assert status["approvals"][0]["kind"] == "approve"
    human = cadenza("status", run_id)
    assert "approve maria fine" in human.stdout


async def test_status_says_when_a_workflow_task_keeps_failing(worker_process, task_queue: str):  # type: ignore[no-untyped-def]
    """A payload that does not decode stalls the task (TEMPORAL-NOTES); status must say so."""
    import asyncio

    from worker.client import connect

    client = await connect()
    run_id = f"stuck-{task_queue}"
    await client.start_workflow(
        "AdvancedWorkflowRun", {"definition": "not a mapping"}, id=run_id, task_queue=task_queue
    )
    try:
        for _ in range(60):
            proc = await asyncio.to_thread(cadenza, "status", run_id)
            if "is stuck" in proc.stderr:
                break
            await asyncio.sleep(0.5)
        assert proc.returncode == 1, proc.stderr
        assert "workflow task has failed" in proc.stderr and "cadenza cancel" in proc.stderr
        assert "Traceback" not in proc.stderr
    finally:
        await client.get_workflow_handle(run_id).terminate("test done")


def test_replay_files_and_query_from_the_cli(worker_process, task_queue: str) -> None:  # type: ignore[no-untyped-def]
    files = cadenza("replay", "tests/replay/histories", "--json")
    assert files.returncode == 0, files.stderr
    outcomes = json.loads(files.stdout)
    assert len(outcomes) >= 15 and all(o["error"] is None for o in outcomes)
    code, result = run_json(task_queue, "examples/data-pipeline.yaml", {"rows": [5, 6]})
    assert code == 0
    query = f"WorkflowId = '{result['execution_id']}'"
    proc = cadenza("replay", "--query", query)
    assert proc.returncode == 0, proc.stderr
    assert f"ok   {result['execution_id']}" in proc.stdout and "1 of 1 replayed" in proc.stdout
    usage = cadenza("replay")
    assert usage.returncode == 2 and "FILES or --query" in usage.stderr


def test_task_runs_an_agentic_task_and_approval_comes_from_the_cli(
    worker_process, task_queue: str
) -> None:
    done = cadenza(
        "task",
        "Weekly report: sales and inventory",
        "--tools",
        "std.echo,std.fail",
        "--model",
        "scripted:task-recovery",
        "--wait",
        "--json",
        "--task-queue",
        task_queue,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "completed"
    assert result["route"] == ["parallel", "error", "react", "complete"]
    assert result["answer"].startswith("Sales totalled 1250")

    started = cadenza(
        "task",
        "Refund order 88 (240 EUR)",
        "--tools",
        "std.echo",
        "--model",
        "scripted:task-approval",
        "--approver",
        "ana",
        "--json",
        "--task-queue",
        task_queue,
    )
    task_id = json.loads(started.stdout)["execution_id"]
    for _ in range(100):
        state = json.loads(cadenza("task-status", task_id, "--json").stdout or "{}")
        if state.get("status") == "waiting":
            break
        time.sleep(0.1)
    assert state["waiting"]["key"] == "human_approval"
    refused = cadenza("approve", task_id, "human_approval", "--by", "bob")
    assert refused.returncode == 2 and "'bob' may not decide" in refused.stderr
    approved = cadenza("approve", task_id, "human_approval", "--by", "ana")
    assert approved.returncode == 0, approved.stderr
    for _ in range(100):
        state = json.loads(cadenza("task-status", task_id, "--json").stdout or "{}")
        if state.get("status") == "completed":
            break
        time.sleep(0.1)
    assert state["route"] == ["approval", "conditional", "complete"]
    assert state["tool_calls"][0]["output"] == {"refund": "manual review"}

    bad = cadenza("task", "x", "--model", "gpt4")
    assert bad.returncode == 2 and "model: model 'gpt4' is not provider:name" in bad.stderr
