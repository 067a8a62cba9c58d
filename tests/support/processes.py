"""cadenza as separate processes, as a user runs it: the CLI (`cadenza(...)`) and workers
(`spawn_worker(...)`), from the repository root with the repository on PYTHONPATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK_ALLOW = "127.0.0.0/8,::1"
"""CADENZA_HTTP_ALLOW of test workers: std.http steps call servers the tests run on loopback,
which a worker refuses by default."""


def cadenza(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """`cadenza ARGS` to completion; its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def spawn_worker(task_queue: str, log: Path, *args: str, **env: str) -> subprocess.Popen[bytes]:
    """`cadenza worker [ARGS]` as a separate process on `task_queue`, output appended to `log`."""
    return subprocess.Popen(
        [sys.executable, "-m", "worker.cli", "worker", "--task-queue", task_queue, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "CADENZA_HTTP_ALLOW": LOOPBACK_ALLOW, **env},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
