"""A worker stays responsive while hostile expressions are validated and evaluated (issue 18,
item 1): the hostile definitions are refused at validation, a run whose values are too large for
its expression fails the step with an ExpressionError at once, a run at the limit evaluates,
and the worker's `/livez` answers within 1 s all along."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.hostile import DEEP, LIT
from tests.support.processes import spawn_worker
from worker.client import CadenzaClient, DefinitionRejected
from worker.services.dev_server import free_port

HOSTILE = [
    "input.a.map(x, input.a)",
    f"{LIT}.map(x, {LIT}.map(y, x + y))",
    "input.a.map(x, input.s + input.s)",
    "r'\\' + string(" + DEEP + ")",
    "input.a.all(x, input.a.all(y, input.a.map(z, z)))",
    "input.s.lowerAscii()",
]


def definition(expression: str) -> dict[str, Any]:
    return {
        "workflow_id": "cost",
        "steps": [{"step_id": "a", "action": "std.echo", "input_mapping": {"v": expression}}],
    }


class Probe:
    """Polls `/livez` in a thread; records the slowest answer (or failure)."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/livez"
        self.slowest = 0.0
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                status = httpx.get(self.url, timeout=5).status_code
                if status != 200:
                    self.failures.append(f"status {status}")
            except httpx.HTTPError as exc:
                self.failures.append(repr(exc))
            self.slowest = max(self.slowest, time.monotonic() - started)
            self.stop.wait(0.05)


def wait_live(port: int, log: Path) -> None:
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(log.read_text())


async def test_worker_stays_live_while_hostile_expressions_are_refused_or_evaluated(
    cadenza: CadenzaClient, task_queue: str, tmp_path: Path, temporal_address: str
) -> None:
    port = free_port()
    log = tmp_path / "worker.log"
    worker = spawn_worker(task_queue, log, CADENZA_HEALTH_PORT=str(port))
    probe = Probe(port)
    try:
        wait_live(port, log)
        probe.thread.start()
        for expression in HOSTILE:
            with pytest.raises(DefinitionRejected) as info:
                await cadenza.start(definition(expression), {"a": [1], "s": "x"})
            assert "expression_too_costly" in str(info.value) or "unknown_function" in str(
                info.value
            )
        at_limit = await cadenza.start(
            definition("input.a.map(x, x * 2)"), {"a": list(range(1_500))}
        )
        too_large = await cadenza.start(
            definition("input.a.map(x, x * 2)"), {"a": list(range(50_000))}
        )
        done = await cadenza.result(at_limit.id)
        assert done.status == "completed", done
        failed = await cadenza.result(too_large.id)
        assert failed.status == "failed"
        error = failed.steps["a"].error
        assert error is not None and error.type == "ExpressionError"
        assert "budget" in error.message
    finally:
        probe.stop.set()
        if probe.thread.is_alive():
            probe.thread.join(timeout=10)
        worker.terminate()
        worker.wait(timeout=30)
    assert not probe.failures, probe.failures
    assert probe.slowest < 1.0, f"/livez took {probe.slowest:.2f} s"
