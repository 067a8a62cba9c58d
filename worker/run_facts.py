"""The local activity that tells a starting run what its workers know: how each of its actions
declared it runs, and the median duration of each of its steps in recent runs (the monitor's
baselines, when the worker has telemetry). The run keeps the answer in its history
(workflows/engine/facts.py)."""

from __future__ import annotations

from temporalio import activity

from activities.registry import ActionRegistry
from worker.observability.baselines import Baselines
from workflows.engine.facts import FACTS_ACTIVITY, FactsRequest, RunFacts

MIN_SAMPLES = 3
"""Durations count once a step has run this often: one slow first run should not reorder."""


class RunFactsActivities:
    """`cadenza.run.facts` over this worker's action registry and baselines."""

    def __init__(self, registry: ActionRegistry, baselines: Baselines | None = None) -> None:
        self.registry = registry
        self.baselines = baselines

    def describe(self, request: FactsRequest) -> RunFacts:
        seconds: dict[str, float] = {}
        if self.baselines is not None:
            for step_id in request.steps:
                stats = self.baselines.stats((request.workflow_id, step_id))
                if stats is not None and stats.samples >= MIN_SAMPLES:
                    seconds[step_id] = round(stats.p50, 3)
        return RunFacts(executions=self.registry.executions(request.actions), seconds=seconds)

    @activity.defn(name=FACTS_ACTIVITY)
    async def facts(self, request: FactsRequest) -> RunFacts:
        return self.describe(request)
