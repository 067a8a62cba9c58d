"""Bounds a test can hold on any machine: CPU time in units of a calibrated reference workload.

Wall-clock bounds fail on a slow or busy machine (CI took 4.2 s for a 3 s bound). The thread's
CPU time does not count time spent waiting for a core, and dividing it by the CPU time of a fixed
pure-Python workload measured in the same process cancels the machine's speed. A regression to
quadratic or exponential work still costs tens or thousands of units, far past any bound here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import cache
from typing import TypeVar

T = TypeVar("T")


def _reference_workload() -> int:
    """Dict building, sorting and JSON encoding: the kind of work validation does."""
    rows = [{"step_id": f"s{i}", "dependencies": [f"s{i - 1}"], "n": i % 97} for i in range(20_000)]
    rows.sort(key=lambda row: (row["n"], row["step_id"]))
    return len(json.dumps(rows))


@cache
def reference_cpu_seconds() -> float:
    """CPU seconds of the reference workload on this machine (best of five)."""
    best = float("inf")
    for _ in range(5):
        started = time.thread_time()
        _reference_workload()
        best = min(best, time.thread_time() - started)
    return max(best, 1e-4)


def cpu_units(fn: Callable[[], T]) -> tuple[T, float]:
    """Run ``fn`` and return its result and the thread CPU time it took, in reference units."""
    started = time.thread_time()
    result = fn()
    spent = time.thread_time() - started
    return result, spent / reference_cpu_seconds()
