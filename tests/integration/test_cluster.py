"""cadenza against "a cluster": a separately started `temporal server start-dev` (not cadenza's
embedded server) with a namespace of its own and no search attributes, reached by `cadenza`
processes configured only through Temporal's envconfig variables, as in deploy/."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import ROOT, cadenza, spawn_worker
from worker.services.dev_server import free_port, temporal_binary

NAMESPACE = "cadenza-ops"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    port = free_port()
    log = tmp_path_factory.mktemp("cluster") / "server.log"
    server = subprocess.Popen(
        [
            temporal_binary(),
            "server",
            "start-dev",
            "--port",
            str(port),
            "--ui-port",
            str(free_port()),
            "--headless",
            "--namespace",
            NAMESPACE,
            "--log-level",
            "error",
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    env = {"TEMPORAL_ADDRESS": f"127.0.0.1:{port}", "TEMPORAL_NAMESPACE": NAMESPACE}
    try:
        yield env
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_setup_worker_and_run_through_envconfig_only(
    cluster: dict[str, str], task_queue: str, tmp_path: Path
) -> None:
    setup = cadenza("setup", "--wait", "60", **cluster)
    assert setup.returncode == 0, setup.stderr
    assert f"namespace '{NAMESPACE}'" in setup.stdout and "CadenzaState" in setup.stdout
    health = free_port()
    worker = spawn_worker(
        task_queue, tmp_path / "worker.log", CADENZA_HEALTH_PORT=str(health), **cluster
    )
    try:
        ready = None
        for _ in range(100):
            try:
                ready = httpx.get(f"http://127.0.0.1:{health}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert ready is not None and ready.status_code == 200, (tmp_path / "worker.log").read_text()
        facts = ready.json()
        assert facts["polling"] and facts["temporal_connected"] and facts["live"]
        assert httpx.get(f"http://127.0.0.1:{health}/livez", timeout=2).status_code == 200
        proc = cadenza(
            "run",
            "examples/data-pipeline.yaml",
            "--input",
            '{"rows": [2, 7, 1]}',
            "--wait",
            "--json",
            "--task-queue",
            task_queue,
            **cluster,
        )
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        assert result["status"] == "completed"
        # the run lives in the cluster's namespace, not in the test session's server
        listed = subprocess.run(
            [
                temporal_binary(),
                "workflow",
                "describe",
                "--workflow-id",
                result["execution_id"],
                "--address",
                cluster["TEMPORAL_ADDRESS"],
                "--namespace",
                NAMESPACE,
                "--output",
                "json",
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")},
        )
        assert listed.returncode == 0, listed.stderr
        assert "COMPLETED" in listed.stdout
    finally:
        worker.terminate()
        assert worker.wait(timeout=60) == 0
