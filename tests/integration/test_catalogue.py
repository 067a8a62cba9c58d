"""The workflow-patterns catalogue on the real server, part 1 (WCP-1 to WCP-21): each test runs
the definition docs/patterns.md shows for its pattern and checks what the pattern means (which
steps ran, in which order, with which outputs). Part 2: test_catalogue_joins.py."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest

from tests.support.patterns import (
    DOC,
    ROOT,
    catalogue_worker,
    concurrent,
    definition,
    ended,
    in_order,
    one_at_a_time,
    run,
    sections,
    snippets,
    start_until,
    started,
    table,
)
from worker.client import CadenzaClient
from workflows.contracts import ExecutionResult, StepStatus, WorkflowState

COMPLETED, SKIPPED, CANCELLED = StepStatus.COMPLETED, StepStatus.SKIPPED, StepStatus.CANCELLED
RUNNING, WAITING = StepStatus.RUNNING, StepStatus.WAITING


@pytest.fixture(scope="module")
async def flow(client, registry) -> AsyncIterator[CadenzaClient]:  # type: ignore[no-untyped-def]
    async with catalogue_worker(client, registry) as cadenza:
        yield cadenza


def test_the_table_lists_43_patterns_and_a_test_for_each_supported_one() -> None:
    rows = table()
    assert [r.number for r in rows] == list(range(1, 44))
    assert sorted(sections()) == list(range(1, 44))
    tests = ROOT / "tests" / "integration"
    sources = "".join(p.read_text() for p in tests.glob("test_catalogue*.py"))
    for row in rows:
        if row.kind in ("yes", "partly"):
            assert row.tests, f"WCP-{row.number} is {row.support} without a test"
        else:
            assert row.kind == "no", row
            assert not row.tests and not snippets(row.number), f"WCP-{row.number}"
        for name in row.tests:
            assert f"async def {name}(" in sources, f"WCP-{row.number}: no test {name}"
            assert f"`{name}`" in sections()[row.number], f"WCP-{row.number}: section: {name}"
    counts = [sum(r.kind == k for r in rows) for k in ("yes", "partly", "no")]
    summary = re.search(
        r"Count: (\d+) patterns supported, (\d+) partly, (\d+) not\.", DOC.read_text()
    )
    assert summary is not None and [int(n) for n in summary.groups()] == counts


async def test_wcp_01_sequence(flow: CadenzaClient) -> None:
    result = await run(flow, definition(1), {"item": "book"})
    assert result.status == WorkflowState.COMPLETED, result.error
    in_order(result, "pick", "pack", "ship")
    assert result.steps["ship"].output == {"parcel": {"item": "book", "box": "small"}}


async def test_wcp_02_parallel_split(flow: CadenzaClient) -> None:
    result = await run(flow, definition(2))
    assert result.status == WorkflowState.COMPLETED, result.error
    in_order(result, "take_order", "bill")
    in_order(result, "take_order", "pack")
    assert concurrent(result, ["bill", "pack"])


async def test_wcp_03_synchronization(flow: CadenzaClient) -> None:
    result = await run(flow, definition(3))
    assert result.status == WorkflowState.COMPLETED, result.error
    assert concurrent(result, ["bill", "pack"])
    in_order(result, "bill", "ship")
    in_order(result, "pack", "ship")  # the later of the two
    assert result.steps["ship"].attempts == 1


async def test_wcp_04_exclusive_choice(flow: CadenzaClient) -> None:
    big, small = await run(flow, definition(4), {"amount": 5000}, {"amount": 50})
    outcomes = ((big, "manual_review", "auto_approve"), (small, "auto_approve", "manual_review"))
    for result, ran, skipped in outcomes:
        assert result.status == WorkflowState.COMPLETED, result.error
        assert result.steps[ran].status == COMPLETED
        assert result.steps[skipped].status == SKIPPED
        assert "not chosen by 'route'" in (result.steps[skipped].skip_reason or "")
    assert big.steps["route"].output["branch"] == 0
    assert small.steps["route"].output["branch"] == "default"


async def test_wcp_05_simple_merge(flow: CadenzaClient) -> None:
    big, small = await run(flow, definition(5), {"amount": 5000}, {"amount": 50})
    assert big.status == small.status == WorkflowState.COMPLETED
    assert big.steps["notify"].output == {"decided_by": "reviewer"}
    assert small.steps["notify"].output == {"decided_by": "rules"}
    in_order(big, "manual_review", "notify")
    in_order(small, "auto_approve", "notify")
    assert big.steps["notify"].attempts == small.steps["notify"].attempts == 1


async def test_wcp_06_multi_choice(flow: CadenzaClient) -> None:
    result = await run(flow, definition(6), {"fire": True, "crime": False, "injured": True})
    assert result.status == WorkflowState.COMPLETED, result.error
    steps = result.steps
    assert steps["dispatch_fire"].status == steps["dispatch_ambulance"].status == COMPLETED
    assert steps["dispatch_police"].status == SKIPPED
    assert "dispatch_police" not in {s for s, r in steps.items() if r.attempts}


async def test_wcp_07_structured_synchronizing_merge(flow: CadenzaClient) -> None:
    chosen = {"fire": True, "crime": False, "injured": True}
    none = {"fire": False, "crime": False, "injured": False}
    result, nothing = await run(flow, definition(7), chosen, none)
    assert result.status == WorkflowState.COMPLETED, result.error
    assert result.steps["dispatch_police"].status == SKIPPED
    in_order(result, "dispatch_ambulance", "debrief")
    in_order(result, "dispatch_fire", "debrief")  # the slowest chosen branch
    assert result.steps["debrief"].attempts == 1
    # no branch chosen: the merge is skipped with them (documented)
    assert nothing.status == WorkflowState.COMPLETED
    assert nothing.steps["debrief"].status == SKIPPED


async def test_wcp_09_structured_discriminator(flow: CadenzaClient) -> None:
    result = await run(flow, definition(9))
    assert result.status == WorkflowState.COMPLETED, result.error
    steps = result.steps
    answered = steps["answer"].output["from"]
    assert answered["primary_db"] == {"slept": 0.2}
    assert answered.get("replica_db") is None  # still running when the join fired
    assert ended(steps["answer"]) < ended(steps["replica_db"])  # did not wait for the replica
    assert steps["replica_db"].status == COMPLETED  # ran on, ignored
    assert steps["replica_db"].output == {"slept": 1.5}


async def test_wcp_09_the_join_counts_only_the_branches_that_completed(
    flow: CadenzaClient,
) -> None:
    result = await run(flow, definition(9))
    output = result.steps["lookup"].output
    assert (output["successful_steps"], output["success_rate"]) == (1, 0.5)


async def test_wcp_11_implicit_termination(flow: CadenzaClient) -> None:
    result = await run(flow, definition(11), {"survey": False})
    assert result.status == WorkflowState.COMPLETED, result.error
    assert {s: r.status for s, r in result.steps.items()} == {
        "receipt": COMPLETED,
        "archive": COMPLETED,
        "survey": SKIPPED,
    }
    assert ended(result.steps["archive"]) > ended(result.steps["receipt"])


async def test_wcp_12_mi_without_synchronization(flow: CadenzaClient) -> None:
    result = await run(flow, definition(12), {"suppliers": ["acme", "globex", "initech"]})
    assert result.status == WorkflowState.COMPLETED, result.error
    notified = [result.steps[f"notify[{i}]"] for i in range(3)]
    assert [r.status for r in notified] == [COMPLETED] * 3
    invoice = result.steps["invoice"]
    assert all(ended(invoice) < ended(r) for r in notified)  # nobody waited for the instances
    assert concurrent(result, [f"notify[{i}]" for i in range(3)])


async def test_wcp_13_mi_design_time_knowledge(flow: CadenzaClient) -> None:
    result = await run(flow, definition(13))
    assert result.status == WorkflowState.COMPLETED, result.error
    copies = [f"copy[{i}]" for i in range(3)]
    assert concurrent(result, copies)
    for copy in copies:
        in_order(result, copy, "confirm")
    assert result.steps["replicate"].output["total"] == 3
    assert result.steps["confirm"].output == {"copies": 3}


async def test_wcp_14_mi_run_time_knowledge(flow: CadenzaClient) -> None:
    lines = [{"sku": f"sku-{i}"} for i in range(5)]
    result = await run(flow, definition(14), {"lines": lines})
    assert result.status == WorkflowState.COMPLETED, result.error
    output = result.steps["charge_lines"].output
    assert output["results"] == [{"sku": f"sku-{i}", "position": i} for i in range(5)]
    assert output["total"] == output["completed"] == 5
    assert result.steps["total"].output == {"charged": 5}


async def test_wcp_16_deferred_choice(flow: CadenzaClient) -> None:
    accepted = await start_until(flow, definition(16), {"customer_accepts": WAITING})
    expired = (await flow.start(definition(16))).id
    await flow.approve(accepted, "customer_accepts", by="customer")
    by_customer, by_timer = await asyncio.gather(flow.result(accepted), flow.result(expired))
    assert by_customer.status == by_timer.status == WorkflowState.COMPLETED
    assert [by_customer.steps[s].status for s in ("customer_accepts", "offer_expires")] == [
        COMPLETED,
        CANCELLED,
    ]
    assert by_customer.steps["ship"].status == COMPLETED
    assert by_customer.steps["withdraw_offer"].status == SKIPPED
    assert [by_timer.steps[s].status for s in ("customer_accepts", "offer_expires")] == [
        CANCELLED,
        COMPLETED,
    ]
    assert by_timer.steps["ship"].status == SKIPPED
    assert by_timer.steps["withdraw_offer"].status == COMPLETED


async def test_wcp_17_interleaved_parallel_routing(flow: CadenzaClient) -> None:
    result = await run(flow, definition(17))
    assert result.status == WorkflowState.COMPLETED, result.error
    assert one_at_a_time(result, ["check_stock", "reserve", "check_credit", "bill"])
    in_order(result, "check_stock", "reserve")  # the partial order holds
    in_order(result, "check_credit", "bill")


async def test_wcp_18_milestone(flow: CadenzaClient) -> None:
    run_id = await start_until(
        flow, definition(18), {"pick": RUNNING, "picked_not_shipped": WAITING}
    )
    result = await flow.result(run_id)
    assert result.status == WorkflowState.COMPLETED, result.error
    steps = result.steps
    assert ended(steps["picked_not_shipped"]) >= ended(steps["pick"])  # the milestone reached
    assert ended(steps["add_gift_note"]) < ended(steps["ship"])  # and not yet passed
    assert steps["picked_not_shipped"].output["waited_seconds"] >= 0.4


async def test_wcp_19_cancel_task(flow: CadenzaClient) -> None:
    run_id = await start_until(flow, definition(19), {"credit_check": RUNNING})
    await flow.cancel_step(run_id, "credit_check", by="ops", reason="known customer")
    result = await flow.result(run_id)
    assert result.status == WorkflowState.COMPLETED, result.error
    check = result.steps["credit_check"]
    assert check.status == CANCELLED
    assert check.error is not None and check.error.type == "StepCancelled"
    assert check.error.message == "cancelled by ops: known customer"
    assert result.steps["ship"].status == COMPLETED
    in_order(result, "credit_check", "ship")


async def cancelled_case(flow: CadenzaClient) -> ExecutionResult:
    """The run of WCP-20, cancelled while `wait_for_stock` runs."""
    run_id = await start_until(flow, definition(20), {"wait_for_stock": RUNNING})
    await flow.cancel(run_id)
    return await flow.result(run_id)


async def test_wcp_20_cancel_case(flow: CadenzaClient) -> None:
    result = await cancelled_case(flow)
    assert result.status == WorkflowState.CANCELLED
    assert [(c.step_id, c.status) for c in result.compensations] == [("reserve", "completed")]
    waiting = result.steps["wait_for_stock"]  # running: cancelled (failed, Cancelled)
    assert waiting.status == StepStatus.FAILED and waiting.error is not None
    assert waiting.error.type == "Cancelled"
    assert result.steps["ship"].status == StepStatus.PENDING


async def test_wcp_20_a_cancelled_step_counts_the_attempts_it_made(flow: CadenzaClient) -> None:
    result = await cancelled_case(flow)
    assert result.steps["wait_for_stock"].attempts == 1


async def test_wcp_21_structured_loop(flow: CadenzaClient) -> None:
    looped, skipped = await run(flow, definition(21), {"poll": True}, {"poll": False})
    assert looped.status == WorkflowState.COMPLETED, looped.error
    output = looped.steps["poll"].output
    assert output["iterations"] == 3
    assert [r["attempt"] for r in output["results"]] == [0, 1, 2]
    assert looped.steps["done"].output == {"rounds": 3}
    # the guard is tested before the first iteration: a while loop that runs zero times
    assert skipped.status == WorkflowState.COMPLETED
    assert skipped.steps["poll"].status == skipped.steps["done"].status == SKIPPED
    assert started(looped.steps["done"]) >= ended(looped.steps["poll"])
