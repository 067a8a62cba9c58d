"""Performance baselines: recent durations per definition and step, and when one is an anomaly.

Per definition (and per step) a worker keeps the durations of recent completed runs, seeded
from Temporal visibility when the worker starts; a run or step that takes longer than
`anomaly_factor` x its p95 (and at least `anomaly_min_excess_seconds` more) is an anomaly, which
the monitor (worker/observability/monitor.py) raises as an `anomaly.run` / `anomaly.step` alert.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime

from temporalio.client import Client

from workflows.dsl.models import ExecutionResult, StepStatus
from workflows.engine import SA_WORKFLOW_ID, WORKFLOW_NAME

log = logging.getLogger("cadenza.monitor")


@dataclass
class BaselineStats:
    samples: int
    p50: float
    p95: float


class Baselines:
    """Recent durations per (workflow_id, step_id or None for the run); thread-safe.

    At most `max_keys` keys are kept, the least recently added to dropped first (a definition
    or step no longer run), so a long-lived worker's baselines stay bounded: about
    `max_keys * window` floats.
    """

    def __init__(
        self,
        window: int = 50,
        min_samples: int = 5,
        factor: float = 3.0,
        min_excess: float = 1.0,
        max_keys: int = 5_000,
    ) -> None:
        self.window = window
        self.min_samples = min_samples
        self.factor = factor
        self.min_excess = min_excess
        self.max_keys = max_keys
        self._samples: OrderedDict[tuple[str, str | None], deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._samples)

    def add(self, key: tuple[str, str | None], seconds: float) -> None:
        with self._lock:
            samples = self._samples.get(key)
            if samples is None:
                samples = self._samples[key] = deque(maxlen=self.window)
                while len(self._samples) > self.max_keys:
                    self._samples.popitem(last=False)
            else:
                self._samples.move_to_end(key)
            samples.append(seconds)

    def stats(self, key: tuple[str, str | None]) -> BaselineStats | None:
        with self._lock:
            values = sorted(self._samples.get(key, ()))
        if not values:
            return None
        return BaselineStats(len(values), _quantile(values, 0.5), _quantile(values, 0.95))

    def observe(self, key: tuple[str, str | None], seconds: float) -> BaselineStats | None:
        """Record a completed duration; the baseline it exceeds, if it is an anomaly."""
        before = self.stats(key)
        self.add(key, seconds)
        if before is None or before.samples < self.min_samples:
            return None
        limit = max(before.p95 * self.factor, before.p95 + self.min_excess)
        return before if seconds > limit else None


def _quantile(values: list[float], q: float) -> float:
    index = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return values[index]


async def seed_baselines(
    client: Client, baselines: Baselines, runs: int = 200, results: int = 50
) -> int:
    """Seed baselines from the most recent completed runs in visibility: run durations from
    their start and close times, step durations from the results of the latest `results`.
    Returns how many runs were read."""
    query = f"WorkflowType = '{WORKFLOW_NAME}' AND ExecutionStatus = 'Completed'"
    found: list[tuple[str, str, str, float]] = []
    async for execution in client.list_workflows(query, limit=runs):
        workflow_id = execution.typed_search_attributes.get(SA_WORKFLOW_ID)
        if not workflow_id or execution.close_time is None:
            continue
        seconds = (execution.close_time - execution.start_time).total_seconds()
        found.append((execution.id, execution.run_id or "", workflow_id, seconds))
    gate = asyncio.Semaphore(8)

    async def steps_of(execution_id: str, run_id: str) -> ExecutionResult | None:
        async with gate:
            try:
                handle = client.get_workflow_handle(
                    execution_id, run_id=run_id or None, result_type=ExecutionResult
                )
                result: ExecutionResult = await handle.result()
                return result
            except Exception as exc:  # an old or foreign result shape: skip it
                log.debug("baseline seed skips %s: %s", execution_id, exc)
                return None

    outcomes = await asyncio.gather(*(steps_of(e, r) for e, r, _, _ in found[:results]))
    for index in reversed(range(len(found))):  # oldest first: the window keeps the newest
        workflow_id = found[index][2]
        baselines.add((workflow_id, None), found[index][3])
        outcome = outcomes[index] if index < len(outcomes) else None
        if outcome is None:
            continue
        for step_id, record in outcome.steps.items():
            if record.status == StepStatus.COMPLETED and record.started_at and record.ended_at:
                started = datetime.fromisoformat(record.started_at)
                ended = datetime.fromisoformat(record.ended_at)
                baselines.add((workflow_id, step_id), (ended - started).total_seconds())
    return len(found)
