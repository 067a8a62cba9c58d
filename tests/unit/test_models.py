"""Definition and execution-state models: defaults of the contract, JSON Schema, purity."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from workflows.dsl.models import (
    AdvancedWorkflow,
    EffectiveRetryPolicy,
    ExecutionResult,
    RetryPolicySpec,
    StepStatus,
    WorkflowState,
    WorkflowStep,
)

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_follow_the_design() -> None:
    wf = AdvancedWorkflow(workflow_id="w", steps=[WorkflowStep(step_id="s", action="std.echo")])
    assert (wf.version, wf.timeout, wf.max_parallel_steps) == ("1.0", 3600, 10)
    assert wf.optimization_enabled and wf.adaptive_routing
    step = wf.steps[0]
    assert (step.step_type, step.timeout, step.loop_max_iterations) == ("action", 300, 100)
    assert step.metrics_enabled
    assert {s.value for s in StepStatus} == {
        "pending",
        "running",
        "completed",
        "failed",
        "skipped",
        "waiting",
        "retrying",
        "cancelled",
        "suspended",  # DESIGN.md, Operating runs: on_exhausted: suspend
    }
    assert {s.value for s in WorkflowState} == {
        "running",
        "completed",
        "failed",
        "timeout",
        "cancelled",
        "suspended",  # a step waits for retry_step, skip_step or fail_step
    }


def test_retry_policy_merges_key_by_key() -> None:
    merged = EffectiveRetryPolicy.merge(
        RetryPolicySpec(max_attempts=5, initial_interval=2),
        RetryPolicySpec(max_attempts=2, continue_on_failure=True),
    )
    assert merged.max_attempts == 2 and merged.initial_interval == 2
    assert merged.continue_on_failure and merged.backoff_coefficient == 2.0
    assert merged.parallel_failure_threshold == 0.5


def test_json_schema_documents_every_field() -> None:
    schema = AdvancedWorkflow.model_json_schema()
    step = schema["$defs"]["WorkflowStep"]["properties"]
    for name in ("step_id", "input_mapping", "rollback_actions", "parallel_steps", "approval"):
        assert step[name].get("description"), name
    assert schema["properties"]["workflow_id"]["pattern"]
    json.dumps(schema)


def test_execution_result_has_the_contract_keys() -> None:
    result = ExecutionResult(execution_id="e", workflow_id="w", version="1.0")
    keys = set(json.loads(result.model_dump_json()))
    assert {
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
    } <= keys


FORBIDDEN = {
    "httpx",
    "worker",
    "activities.std",
    "activities.steps",
    "activities.registry",
    "os",
    "random",
    "time",
    "uuid",
    "secrets",
    "threading",
    "subprocess",
    "socket",
    "requests",
    "pickle",
}


def test_workflows_package_imports_nothing_that_touches_the_world() -> None:
    for path in (ROOT / "workflows").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not any(name == f or name.startswith(f + ".") for f in FORBIDDEN), (
                    f"{path.relative_to(ROOT)} imports {name}"
                )
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"eval", "exec", "open", "print", "input"}, path
            if isinstance(node, ast.Attribute):
                # workflows/ is passed through the sandbox (worker/wiring.py): nothing may read a
                # clock, randomness or ids other than through `workflow.`
                assert node.attr not in {
                    "utcnow",
                    "today",
                    "uuid4",
                    "urandom",
                    "perf_counter",
                    "monotonic",
                    "getenv",
                }, (path, node.attr)
                if node.attr == "now":
                    assert isinstance(node.value, ast.Name) and node.value.id == "workflow", (
                        f"{path.relative_to(ROOT)}:{node.lineno}: use workflow.now()"
                    )
        assert "os.environ" not in path.read_text(), path


def test_action_names_under_cadenza_are_reserved() -> None:
    import pytest

    from activities.registry import ActionRegistry

    with pytest.raises(ValueError, match="cadenza's own activities"):
        ActionRegistry().register("cadenza.alert", lambda params, ctx: None)
