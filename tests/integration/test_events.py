"""`event` steps on the real server: persistent and transient triggers, schemas checked before an
event reaches the history, arrival order, EventTimeout, the signal form, `cadenza send` and
`cadenza pending`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.flows import run, sleep, status_when, wf
from tests.support.processes import cadenza as cadenza_cli
from worker.client import CadenzaClient, DecisionRefused
from workflows.contracts import ExecutionOptions, StepStatus, WorkflowState

PAYMENT_SCHEMA = {
    "type": "object",
    "required": ["amount"],
    "properties": {"amount": {"type": "number", "minimum": 0}},
}


def event_step(sid: str, name: str, *deps: str, **extra: Any) -> dict[str, Any]:
    spec = {"name": name, **extra.pop("event", {})}
    return {
        "step_id": sid,
        "step_type": "event",
        "dependencies": list(deps),
        "event": spec,
        **extra,
    }


def waiting_for(step_id: str):  # type: ignore[no-untyped-def]
    return lambda s: s.steps[step_id].status == StepStatus.WAITING


async def test_an_event_sent_before_its_step_waits_is_kept_and_consumed(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        sleep("prepare", 1),
        event_step("paid", "payment", "prepare", event={"schema": PAYMENT_SCHEMA}),
        {
            "step_id": "ship",
            "action": "std.echo",
            "dependencies": ["paid"],
            "input_mapping": {"amount": "steps.paid.output.data.amount"},
        },
    )
    async with worker_factory():
        handle = await cadenza.start(definition)
        # sent at once: the run may not even have started its steps
        sent = await cadenza.send_event(handle.id, "payment", {"amount": 42}, by="psp")
        assert sent.consumed_by is None and sent.buffered == 1
        state = await cadenza.status(handle.id)
        assert state.steps["paid"].status == StepStatus.PENDING
        assert [e.name for e in state.buffered_events] == ["payment"]
        result = await cadenza.result(handle.id)
    assert result.status == WorkflowState.COMPLETED, result.error
    paid = result.steps["paid"].output
    assert paid["name"] == "payment" and paid["data"] == {"amount": 42} and paid["by"] == "psp"
    assert paid["received_at"] <= result.steps["paid"].ended_at
    assert result.steps["ship"].output == {"amount": 42}
    assert result.buffered_events == [] and result.pending_events == {}
    assert [a.kind for a in result.audit] == ["event"]


async def test_an_event_whose_data_does_not_match_the_schema_is_refused(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(event_step("paid", "payment", event={"schema": PAYMENT_SCHEMA}))
    async with worker_factory():
        handle = await cadenza.start(definition)
        await status_when(cadenza, handle.id, waiting_for("paid"), "paid waiting")
        with pytest.raises(DecisionRefused, match=r"does not match the schema.*'amount'"):
            await cadenza.send_event(handle.id, "payment", {"amount": -5})
        with pytest.raises(DecisionRefused, match=r"waits for no event named .refund.*payment"):
            await cadenza.send_event(handle.id, "refund", {})
        accepted = await cadenza.send_event(handle.id, "payment", {"amount": 5})
        assert accepted.consumed_by == "paid"
        result = await cadenza.result(handle.id)
    assert result.status == WorkflowState.COMPLETED
    assert result.steps["paid"].output["data"] == {"amount": 5}
    # refused updates never reached the history: one event in the audit trail
    assert [a.detail for a in result.audit] == ["payment: to step paid"]


async def test_a_transient_trigger_refuses_events_while_no_step_waits(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        sleep("first", 1),
        event_step("poke", "poke", "first", event={"transient": True}),
    )
    async with worker_factory():
        handle = await cadenza.start(definition)
        with pytest.raises(DecisionRefused, match="transient"):
            await cadenza.send_event(handle.id, "poke", None)
        await status_when(cadenza, handle.id, waiting_for("poke"), "poke waiting")
        assert (await cadenza.send_event(handle.id, "poke", "now")).consumed_by == "poke"
        result = await cadenza.result(handle.id)
    assert result.steps["poke"].output["data"] == "now"


async def test_events_are_consumed_one_per_step_in_arrival_order(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(
        sleep("first", 1),
        event_step("one", "tick", "first"),
        event_step("two", "tick", "one"),
    )
    async with worker_factory():
        handle = await cadenza.start(definition)
        for n in (1, 2):
            await cadenza.send_event(handle.id, "tick", {"n": n})
        result = await cadenza.result(handle.id)
        with pytest.raises(DecisionRefused, match=r"ended|not running|completed"):
            await cadenza.send_event(handle.id, "tick", {"n": 3})
    assert result.steps["one"].output["data"] == {"n": 1}
    assert result.steps["two"].output["data"] == {"n": 2}


async def test_no_event_in_time_fails_the_step_with_event_timeout(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(event_step("paid", "payment", timeout=1))
    async with worker_factory():
        result = await run(cadenza, definition)
    assert result.status == WorkflowState.FAILED
    error = result.steps["paid"].error
    assert error is not None and error.type == "EventTimeout" and "'payment'" in error.message


async def test_the_event_signal_audits_invalid_events_and_delivers_valid_ones(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = wf(event_step("paid", "payment", event={"schema": PAYMENT_SCHEMA}))
    async with worker_factory():
        handle = await cadenza.start(definition)
        await status_when(cadenza, handle.id, waiting_for("paid"), "paid waiting")
        await handle.signal("event", {"name": "payment", "data": {"amount": "ten"}, "by": "x"})
        await handle.signal("event", {"nme": "payment"})
        await status_when(
            cadenza, handle.id, lambda s: len(s.audit) == 2, "two ignored signals audited"
        )
        await handle.signal("event", {"name": "payment", "data": {"amount": 10}, "by": "psp"})
        result = await cadenza.result(handle.id)
    assert result.steps["paid"].output["data"] == {"amount": 10}
    ignored = [a for a in result.audit if a.kind == "ignored"]
    assert len(ignored) == 2
    assert "does not match the schema" in ignored[0].detail and ignored[0].by == "x"
    assert "expected {name, data?, by?}" in ignored[1].detail


async def test_cadenza_send_and_pending_list_the_waiting_event(
    cadenza: CadenzaClient, worker_process
) -> None:
    definition = wf(event_step("paid", "payment", event={"schema": PAYMENT_SCHEMA}))
    handle = await cadenza.start(definition)
    await status_when(cadenza, handle.id, waiting_for("paid"), "paid waiting", within=60)
    listed = cadenza_cli("pending", "--json")
    assert listed.returncode == 0, listed.stderr
    mine = [row for row in json.loads(listed.stdout) if row["execution_id"] == handle.id]
    assert mine == [
        {
            "execution_id": handle.id,
            "kind": "event",
            "step_id": "paid",
            "name": "payment",
            "since": mine[0]["since"],
            "transient": False,
            "received": None,
        }
    ]
    refused = cadenza_cli("send", handle.id, "payment", "--data", '{"amount": "x"}')
    assert refused.returncode == 2 and "does not match the schema" in refused.stderr
    sent = cadenza_cli("send", handle.id, "payment", "--data", '{"amount": 3}', "--by", "psp")
    assert sent.returncode == 0, sent.stderr
    assert "step paid took it" in sent.stdout
    result = await cadenza.result(handle.id)
    assert result.steps["paid"].output["data"] == {"amount": 3}


async def test_steps_waiting_for_messages_inside_a_batch_fail_at_once(
    cadenza: CadenzaClient, worker_factory
) -> None:
    """Decisions and events sent to the run cannot reach a batch child workflow: the steps that
    wait for them fail at once, saying so, instead of waiting (an approval with `on_timeout:
    approve` used to approve itself unseen)."""
    children = [
        {"step_id": "a", "action": "std.echo"},
        {"step_id": "b", "action": "std.echo"},
        {
            "step_id": "sign",
            "step_type": "approval",
            "timeout": 60,
            "approval": {"on_timeout": "approve"},
        },
        event_step("paid", "payment"),
    ]
    definition = wf(
        {
            "step_id": "fan",
            "step_type": "parallel",
            "parallel_steps": children,
            "retry_policy": {"parallel_failure_threshold": 0.5},
        }
    )
    async with worker_factory():
        handle = await cadenza.start(
            definition, options=ExecutionOptions(batch_threshold=2, batch_size=2)
        )
        result = await cadenza.result(handle.id)
    for sid, what in (("sign", "decisions"), ("paid", "events")):
        record = result.steps[sid]
        assert record.status == StepStatus.FAILED, sid
        assert record.error is not None and f"({what} are sent to the run" in record.error.message
    assert result.steps["a"].status == StepStatus.COMPLETED
