"""The workflow-patterns catalogue on the real server, part 3: the patterns that need
sub-workflows (WCP-22 recursion), events (WCP-23 transient and WCP-24 persistent triggers) and
mutexes (WCP-17 and WCP-40 interleaving with `mutex`, WCP-39 critical section), each with the
definition docs/patterns.md shows for it."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator

import pytest

from tests.support.patterns import (
    catalogue_worker,
    definition,
    in_order,
    one_at_a_time,
    run,
    start_until,
    started,
    status_when,
)
from worker.client import CadenzaClient, DecisionRefused
from workflows.contracts import StepStatus, WorkflowState

COMPLETED, SKIPPED, WAITING = StepStatus.COMPLETED, StepStatus.SKIPPED, StepStatus.WAITING
RUNNING = StepStatus.RUNNING


@pytest.fixture(scope="module")
async def flow(client, registry) -> AsyncIterator[CadenzaClient]:  # type: ignore[no-untyped-def]
    async with catalogue_worker(client, registry) as cadenza:
        yield cadenza


def unique(prefix: str) -> str:
    """A mutex key of this test run only (mutexes are shared by every run of the namespace)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_wcp_17_interleaved_parallel_routing_with_a_mutex(flow: CadenzaClient) -> None:
    result = await run(flow, definition(17, 1), {"order_id": unique("o")})
    assert result.status == WorkflowState.COMPLETED, result.error
    assert one_at_a_time(result, ["check_stock", "reserve", "check_credit", "bill"])
    in_order(result, "check_stock", "reserve")  # the partial order holds
    in_order(result, "check_credit", "bill")
    brochure, first = result.steps["send_brochure"], result.steps["check_stock"]
    assert started(brochure) < started(first) or brochure.ended_at is not None  # not serialised
    waited = [result.steps[s].mutex_wait_seconds or 0 for s in ("reserve", "bill")]
    assert max(waited) > 0.1  # someone waited for the mutex


async def test_wcp_22_recursion(flow: CadenzaClient) -> None:
    result = await run(flow, definition(22), {"n": 2})
    assert result.status == WorkflowState.COMPLETED, result.error
    level, ticks = result.steps["start"].output, []
    while True:
        ticks.append(level["steps"]["tick"]["output"]["n"])
        again = level["steps"]["again"]
        if again["status"] == "skipped":
            break
        level = again["output"]
    assert ticks == [2, 1, 0]
    runaway = await run(flow, definition(22), {"n": 9})  # deeper than max_depth: 5
    assert runaway.status == WorkflowState.FAILED
    error = runaway.steps["start"].error
    assert error is not None and error.type == "RecursionLimitExceeded"


async def test_wcp_23_transient_trigger(flow: CadenzaClient) -> None:
    run_id = await start_until(flow, definition(23), {"calibrate": RUNNING})
    with pytest.raises(DecisionRefused, match="transient"):  # nobody waits: lost (refused)
        await flow.send_event(run_id, "reading", {"celsius": 20})
    await start_until_waiting(flow, run_id, "reading")
    taken = await flow.send_event(run_id, "reading", {"celsius": 21.5}, by="probe-7")
    assert taken.consumed_by == "reading"
    result = await flow.result(run_id)
    assert result.steps["reading"].output["data"] == {"celsius": 21.5}
    assert result.steps["reading"].output["by"] == "probe-7"


async def test_wcp_24_persistent_trigger(flow: CadenzaClient) -> None:
    run_id = await start_until(flow, definition(24), {"create_invoice": RUNNING})
    kept = await flow.send_event(run_id, "payment", {"amount": 12}, by="psp")
    assert kept.consumed_by is None and kept.buffered == 1  # nobody waits yet: kept
    result = await flow.result(run_id)
    assert result.status == WorkflowState.COMPLETED, result.error
    in_order(result, "create_invoice", "paid", "ship")
    assert result.steps["ship"].output == {"amount": 12}


async def test_wcp_39_critical_section(flow: CadenzaClient) -> None:
    warehouse = unique("w")
    same = {"warehouse": warehouse}
    first, second = await run(flow, definition(39), same, same)
    regions = [(r, s) for r in (first, second) for s in ("update_stock", "recount_stock")]
    assert all(r.status == WorkflowState.COMPLETED for r in (first, second))
    records = sorted((r.steps[s] for r, s in regions), key=started)
    for a, b in itertools.pairwise(records):  # within a run and across the two
        assert a.ended_at is not None and b.started_at is not None
        assert b.started_at >= a.ended_at
    assert first.steps["email_customer"].status == COMPLETED


async def test_wcp_40_interleaved_routing_with_a_mutex(flow: CadenzaClient) -> None:
    result = await run(flow, definition(40, 1), {"candidate": unique("c")})
    assert result.status == WorkflowState.COMPLETED, result.error
    assert one_at_a_time(result, ["check_references", "medical_exam", "interview"])


async def start_until_waiting(flow: CadenzaClient, run_id: str, step_id: str) -> None:
    await status_when(flow, run_id, lambda s: s.steps[step_id].status == WAITING, step_id)
