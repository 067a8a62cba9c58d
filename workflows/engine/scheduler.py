"""The scheduler of one level: which sibling step starts when, in what order, and which never
starts (blocked by a failed dependency, or skipped). Deterministic code only.

`run_level` is event-driven: a step is ready when its last dependency settles, ready steps
start by priority, and a settled step readies its dependents. What happens to one step is the
caller's (`Decisions`): the interpreter decides, runs and records; this module only orders.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from temporalio import workflow

from workflows.contracts import StepRecord, StepStatus
from workflows.dsl.plan import Plan
from workflows.engine.context import Priority


class Decisions(Protocol):
    def stop(self, fail_fast: bool) -> bool:
        """Start nothing more and cancel what runs: the run was terminated, or (a fail-fast
        level) it has failed."""

    def settle_unstarted(self, plan: Plan, sid: str) -> bool:
        """Settle a ready step that must not start (blocked, skipped); True if it was."""

    def start(self, sid: str, priority: Priority) -> Awaitable[None]:
        """Run a ready step to its end (never raises but on cancellation)."""

    def cancelling(self, sid: str) -> None:
        """`sid` is about to be cancelled because its level completed without it."""


def priority(plan: Plan, position: Mapping[str, int], sid: str, optimize: bool) -> Priority:
    """Longest remaining critical path first (with `optimize`; in measured seconds when the run
    has durations), then definition order."""
    critical = plan.critical_seconds[sid] if optimize else 0.0
    return (-critical, position[sid])


def blocked_by(
    plan: Plan, sid: str, records: Mapping[str, StepRecord], tolerated: set[str]
) -> str | None:
    """The failed dependency that keeps `sid` from starting (not one with continue_on_failure)."""
    for dep in plan.upstream[sid]:
        ended_badly = records[dep].status in (StepStatus.FAILED, StepStatus.CANCELLED)
        if ended_badly and dep not in tolerated:
            return dep
    return None


def all_dependencies_skipped(plan: Plan, sid: str, records: Mapping[str, StepRecord]) -> bool:
    deps = plan.upstream[sid]
    return bool(deps) and all(records[d].status == StepStatus.SKIPPED for d in deps)


async def run_level(
    plan: Plan,
    decide: Decisions,
    fail_fast: bool,
    optimize: bool,
    until: Callable[[], bool] | None = None,
) -> None:
    """Run the steps of one level until all are settled, or `until()` holds (a container's
    `completion`: what still runs is then cancelled, and what did not start stays pending).

    With `fail_fast` (the top level), the first untolerated failure stops the level: running
    steps are cancelled and no new step starts. Otherwise (containers) siblings go on.
    """
    # long: one event loop and the closures over its state (ready heap, counts, running set)
    position = {sid: i for i, sid in enumerate(plan.order)}
    waiting_on = {sid: len(deps) for sid, deps in plan.upstream.items()}
    ready: list[tuple[Priority, str]] = []

    def push(sid: str) -> None:
        heapq.heappush(ready, (priority(plan, position, sid, optimize), sid))

    def settle(sid: str) -> None:
        for nxt in plan.downstream[sid]:
            waiting_on[nxt] -= 1
            if waiting_on[nxt] == 0:
                push(nxt)

    for sid in plan.order:
        if waiting_on[sid] == 0:
            push(sid)
    running: dict[str, asyncio.Future[None]] = {}
    # Completed steps are reported by done-callbacks: waiting on every running task at each
    # wake-up (asyncio.wait) would cost O(running) callbacks per completion, quadratic in a
    # large container.
    finished: list[str] = []
    wake = asyncio.Event()

    def on_done(sid: str) -> None:
        finished.append(sid)
        wake.set()

    def start_ready() -> None:
        while ready:
            prio, sid = heapq.heappop(ready)
            if decide.settle_unstarted(plan, sid):
                settle(sid)
                continue
            task = asyncio.ensure_future(decide.start(sid, prio))
            task.add_done_callback(lambda _, sid=sid: on_done(sid))  # type: ignore[misc]
            running[sid] = task

    try:
        while ready or running:
            if decide.stop(fail_fast):
                break
            if until is not None and until():
                for sid in running:
                    decide.cancelling(sid)
                break
            start_ready()
            if not running:
                continue
            if not finished:
                wake.clear()
                await wake.wait()
            settled, finished[:] = list(finished), []
            for sid in settled:
                running.pop(sid).result()
                settle(sid)
    except GeneratorExit:  # the worker evicted the run from its cache: touch nothing
        running.clear()
        raise
    finally:
        for task in running.values():
            task.cancel()
        if running:
            await workflow.wait(list(running.values()))


async def then_drain(level: Awaitable[None], background: list[asyncio.Future[Any]]) -> None:
    """Run `level`, then wait for the work it left running (`background` may grow meanwhile);
    if `level` stops first (a failure, a cancellation), that work is cancelled."""
    try:
        await level
        while background:
            await background[0]
            background.pop(0)
    finally:
        for task in background:
            task.cancel()
        if background:
            await workflow.wait(list(background))


async def finish(work: list[asyncio.Future[Any]]) -> None:
    """Wait until `work` (left running by containers that completed early) has ended."""
    pending = [w for w in work if not w.done()]
    if pending:
        await workflow.wait(pending)
