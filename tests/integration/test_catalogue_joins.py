"""The workflow-patterns catalogue on the real server, part 2 (WCP-25 to WCP-43): cancelling
regions and multiple instances, discriminators and partial joins, merges, interleaving, threads
and explicit termination, each with the definition docs/patterns.md shows for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.patterns import (
    catalogue_worker,
    concurrent,
    definition,
    ended,
    in_order,
    one_at_a_time,
    run,
    seconds_between,
    start_until,
)
from worker.client import CadenzaClient
from workflows.contracts import StepStatus, WorkflowState

COMPLETED, SKIPPED, CANCELLED = StepStatus.COMPLETED, StepStatus.SKIPPED, StepStatus.CANCELLED
RUNNING = StepStatus.RUNNING


@pytest.fixture(scope="module")
async def flow(client, registry) -> AsyncIterator[CadenzaClient]:  # type: ignore[no-untyped-def]
    async with catalogue_worker(client, registry) as cadenza:
        yield cadenza


async def test_wcp_25_cancel_region(flow: CadenzaClient) -> None:
    run_id = await start_until(flow, definition(25), {"pick": RUNNING, "label": RUNNING})
    await flow.cancel_step(run_id, "fulfilment", by="ops", reason="order withdrawn")
    result = await flow.result(run_id)
    assert result.status == WorkflowState.COMPLETED, result.error
    region = ("fulfilment", "pick", "pack", "label")
    assert [result.steps[s].status for s in region] == [CANCELLED] * 4
    assert result.steps["pack"].attempts == 0  # withdrawn before it started
    assert result.steps["refund"].status == COMPLETED
    in_order(result, "fulfilment", "refund")


def seconds(*values: float) -> list[dict[str, float]]:
    return [{"seconds": v} for v in values]


async def cancelled_map(flow: CadenzaClient) -> Any:
    """The run of WCP-26 whose map was cancelled with one instance completed, two running and
    one not started."""
    wanted = {"notify[0]": COMPLETED, "notify[1]": RUNNING, "notify[2]": RUNNING}
    customers = seconds(0.1, 60, 60, 60)
    run_id = await start_until(flow, definition(26), wanted, {"customers": customers})
    await flow.cancel_step(run_id, "notify_all", by="ops", reason="campaign stopped")
    return await flow.result(run_id)


async def test_wcp_26_cancel_mi_activity(flow: CadenzaClient) -> None:
    result = await cancelled_map(flow)
    assert result.status == WorkflowState.COMPLETED, result.error
    mapped = result.steps["notify_all"]
    assert mapped.status == CANCELLED
    assert mapped.error is not None and mapped.error.type == "StepCancelled"
    instances = [result.steps[f"notify[{i}]"] for i in range(4)]
    assert instances[0].status == COMPLETED and instances[0].output == {"slept": 0.1}
    for withdrawn in instances[1:3]:  # running: their activities were cancelled
        assert withdrawn.status != COMPLETED and withdrawn.error is not None
        assert withdrawn.error.type in ("Cancelled", "StepCancelled")
    assert instances[3].attempts == 0 and instances[3].status != COMPLETED  # never started
    assert result.steps["report"].output == {"notify_all": "cancelled"}
    assert result.compensations == []


async def test_wcp_26_cancelled_instances_end_cancelled(flow: CadenzaClient) -> None:
    result = await cancelled_map(flow)
    instances = [result.steps[f"notify[{i}]"] for i in range(4)]
    assert [r.status for r in instances[:3]] == [COMPLETED, CANCELLED, CANCELLED]
    assert instances[1].attempts == instances[2].attempts == 1
    assert instances[3].status in (CANCELLED, SKIPPED)
    assert "notify" not in result.steps  # the body is not a step of the run


async def test_wcp_27_complete_mi_activity(flow: CadenzaClient) -> None:
    wanted = {"quote[0]": COMPLETED, "quote[1]": RUNNING, "quote[2]": RUNNING}
    suppliers = seconds(0.1, 60, 60)
    run_id = await start_until(flow, definition(27), wanted, {"suppliers": suppliers})
    await flow.cancel_step(run_id, "collect_quotes", by="buyer", reason="enough quotes")
    result = await flow.result(run_id)
    assert result.status == WorkflowState.COMPLETED, result.error
    collect = result.steps["collect_quotes"]
    assert collect.status == COMPLETED and collect.recovered_by == "std.echo"
    quotes = [result.steps[f"quote[{i}]"] for i in range(3)]
    assert quotes[0].status == COMPLETED and quotes[0].output == {"slept": 0.1}
    assert [q.status == COMPLETED for q in quotes[1:]] == [False, False]  # withdrawn
    assert result.steps["choose"].output == {"forced_by": "StepCancelled"}
    assert result.compensations == []


def rounds(result: Any, first: str, later: str) -> tuple[float, float]:
    """(seconds from an iteration's start to its `later` step, seconds between the starts of
    the two iterations) of the loop `rounds`."""
    one, two = (r["results"] for r in result.steps["rounds"].output["results"])
    return (
        seconds_between(one[first]["at"], one[later]["at"]),
        seconds_between(one[first]["at"], two[first]["at"]),
    )


BLOCKING_BUG = (
    "engine bug: a loop iteration ends when its level's steps have settled, while a child left "
    "running by `completion: {cancel_remaining: false}` still runs; the next iteration resets "
    "and starts that same step id again, so two executions of one step run at once under one "
    "record and the first one's output is lost"
)


async def test_wcp_28_blocking_discriminator(flow: CadenzaClient) -> None:
    result = await run(flow, definition(28))
    assert result.status == WorkflowState.COMPLETED, result.error
    assert result.steps["rounds"].output["iterations"] == 2
    downstream, next_activation = rounds(result, "begin", "use_answer")
    assert downstream < 0.9  # fired with the fast mirror, before the 1 s one ended
    assert next_activation >= 1.0  # blocked until the slow mirror of round one ended


async def test_wcp_29_cancelling_discriminator(flow: CadenzaClient) -> None:
    result = await run(flow, definition(29))
    assert result.status == WorkflowState.COMPLETED, result.error
    slow = result.steps["slow_mirror"]
    assert slow.status == CANCELLED and slow.error is not None
    assert result.steps["use_answer"].output == {"answers": {"fast_mirror": {"slept": 0.2}}}
    assert seconds_between(result.steps["first_answer"].started_at or "", slow.ended_at or "") < 5


async def test_wcp_30_structured_partial_join(flow: CadenzaClient) -> None:
    result = await run(flow, definition(30))
    assert result.status == WorkflowState.COMPLETED, result.error
    steps = result.steps
    answered = steps["decide"].output["reviewed_by"]
    assert {k for k, v in answered.items() if v is not None} == {"review_a", "review_b"}
    assert ended(steps["decide"]) < ended(steps["review_c"])  # fired with two of three
    assert steps["review_c"].status == COMPLETED  # the third ran on


async def test_wcp_31_blocking_partial_join(flow: CadenzaClient) -> None:
    result = await run(flow, definition(31))
    assert result.status == WorkflowState.COMPLETED, result.error
    downstream, next_activation = rounds(result, "begin", "decide")
    assert downstream < 0.9  # two reviews in, the 1 s one still running
    assert next_activation >= 1.0  # the next round waited for it


async def test_wcp_32_cancelling_partial_join(flow: CadenzaClient) -> None:
    result = await run(flow, definition(32))
    assert result.status == WorkflowState.COMPLETED, result.error
    assert [result.steps[s].status for s in ("review_a", "review_b", "review_c")] == [
        COMPLETED,
        COMPLETED,
        CANCELLED,
    ]
    assert set(result.steps["decide"].output["reviewed_by"]) == {"review_a", "review_b"}


async def test_wcp_34_static_partial_join_mi(flow: CadenzaClient) -> None:
    result = await run(flow, definition(34), {"reviewers": seconds(0.1, 1.5, 0.2)})
    assert result.status == WorkflowState.COMPLETED, result.error
    steps = result.steps
    assert steps["decide"].output == {"reviews": 2}
    assert ended(steps["decide"]) < ended(steps["review[1]"])
    assert steps["review[1]"].status == COMPLETED


async def test_wcp_35_cancelling_partial_join_mi(flow: CadenzaClient) -> None:
    result = await run(flow, definition(35), {"reviewers": seconds(0.1, 60, 0.2)})
    assert result.status == WorkflowState.COMPLETED, result.error
    assert result.steps["review[1]"].status == CANCELLED
    assert result.steps["decide"].output == {"results": [{"slept": 0.1}, None, {"slept": 0.2}]}


async def test_wcp_37_local_synchronizing_merge(flow: CadenzaClient) -> None:
    lab_only, both = await run(
        flow, definition(37), {"lab": True, "xray": False}, {"lab": True, "xray": True}
    )
    assert lab_only.status == both.status == WorkflowState.COMPLETED
    assert [lab_only.steps[s].status for s in ("xray", "review_images")] == [SKIPPED] * 2
    in_order(lab_only, "lab_test", "consult", "diagnosis")
    in_order(both, "xray", "review_images", "diagnosis")
    in_order(both, "lab_test", "consult", "diagnosis")
    assert lab_only.steps["diagnosis"].attempts == both.steps["diagnosis"].attempts == 1


async def test_wcp_40_interleaved_routing(flow: CadenzaClient) -> None:
    result = await run(flow, definition(40))
    assert result.status == WorkflowState.COMPLETED, result.error
    assert one_at_a_time(result, ["check_references", "medical_exam", "interview"])


async def test_wcp_41_thread_merge(flow: CadenzaClient) -> None:
    result = await run(flow, definition(42), {"copies": ["a", "b", "c"]})
    assert result.status == WorkflowState.COMPLETED, result.error
    for i in range(3):
        in_order(result, f"print[{i}]", "bind")  # merged: after every thread
    assert result.steps["bind"].attempts == 1 and result.steps["bind"].output == {"printed": 3}


async def test_wcp_42_thread_split(flow: CadenzaClient) -> None:
    result = await run(flow, definition(42), {"copies": ["a", "b", "c", "d"]})
    assert result.status == WorkflowState.COMPLETED, result.error
    threads = [f"print[{i}]" for i in range(4)]
    assert concurrent(result, threads)  # four threads of the same step at once
    for thread in threads:
        in_order(result, "receive", thread)


async def test_wcp_43_explicit_termination(flow: CadenzaClient) -> None:
    result = await run(flow, definition(43), {"duplicate": True})
    assert result.status == WorkflowState.COMPLETED, result.error
    steps = result.steps
    assert steps["stop_duplicate"].output == {"status": "completed", "message": "duplicate order"}
    warm = steps["warm_cache"]  # still running: cancelled (failed, Cancelled: docs/semantics.md)
    assert warm.status == StepStatus.FAILED and warm.error is not None
    assert warm.error.type == "Cancelled"
    assert steps["charge"].status == SKIPPED
    assert "stop_duplicate" in (steps["charge"].skip_reason or "")
    assert result.compensations == []
