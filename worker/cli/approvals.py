"""The commands of people (and systems) in the loop: approval decisions (`approve`, `reject`),
events (`send`), decisions on suspended steps (`retry-step`, `skip-step`, `fail-step`) and what
waits for them all (`pending`)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table
from temporalio.service import RPCError

from worker.approval_keys import new_pair
from worker.cli.base import (
    EXIT_OK,
    UsageError,
    err,
    human_duration,
    out,
    parse_json_value,
    run_command,
)
from worker.client import CadenzaClient, DecisionRefused, connect
from workflows.contracts import PendingEvent, SuspendedStep


def approve(
    execution_id: str,
    step_id: str,
    by: Annotated[str, typer.Option("--by", help="Who approves.")],
    comment: Annotated[str, typer.Option(help="Why.")] = "",
) -> None:
    """Approve a waiting approval step (exit 2 with the run's reason when refused)."""
    run_command(lambda: _decide("approve", execution_id, step_id, by, comment))


def reject(
    execution_id: str,
    step_id: str,
    by: Annotated[str, typer.Option("--by", help="Who rejects.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit trail).")] = "",
) -> None:
    """Reject a waiting approval step: one rejection rejects it."""
    run_command(lambda: _decide("reject", execution_id, step_id, by, reason))


async def _decide(name: str, execution_id: str, step_id: str, by: str, comment: str) -> int:
    cadenza = CadenzaClient(await connect())
    try:
        if name == "approve":
            result = await cadenza.approve(execution_id, step_id, by, comment)
        else:
            result = await cadenza.reject(execution_id, step_id, by, comment)
    except DecisionRefused as exc:
        raise UsageError(f"refused: {exc}") from None
    except RPCError as exc:
        raise UsageError(f"cannot reach run {execution_id!r}: {exc.message}") from None
    out.print(
        f"{name}d {step_id} of {execution_id} as {by}: {result.outcome} "
        f"({result.approvals} of {result.required} approvals)",
        highlight=False,
    )
    return EXIT_OK


def send(
    execution_id: str,
    name: str,
    data: Annotated[
        str, typer.Option("--data", help="The event's data: JSON, or @file.json.")
    ] = "null",
    by: Annotated[str, typer.Option("--by", help="Who or what sends it.")] = "",
) -> None:
    """Send a named event to a run: it satisfies the event step waiting longest for it, or is
    kept until one waits (exit 2 with the run's reason when refused)."""

    async def main() -> int:
        payload = parse_json_value(data, "--data")
        cadenza = CadenzaClient(await connect())
        try:
            result = await cadenza.send_event(execution_id, name, payload, by)
        except DecisionRefused as exc:
            raise UsageError(f"refused: {exc}") from None
        except RPCError as exc:
            raise UsageError(f"cannot reach run {execution_id!r}: {exc.message}") from None
        where = (
            f"step {result.consumed_by} took it"
            if result.consumed_by
            else f"kept until a step waits for it ({result.buffered} {name!r} event(s) kept)"
        )
        out.print(f"sent {name} to {execution_id}: {where}", highlight=False)
        return EXIT_OK

    run_command(main)


def retry_step(
    execution_id: str,
    step_id: str,
    by: Annotated[str, typer.Option("--by", help="Who decides.")],
) -> None:
    """Run a suspended step again with a fresh retry budget."""
    run_command(lambda: _step_decision("retry", execution_id, step_id, by))


def skip_step(
    execution_id: str,
    step_id: str,
    by: Annotated[str, typer.Option("--by", help="Who decides.")],
    output: Annotated[
        str, typer.Option("--output", help="The step's output: JSON or @file.json.")
    ] = "null",
) -> None:
    """Treat a suspended step as completed with OUTPUT (refused when OUTPUT lacks a field
    later steps read)."""
    run_command(lambda: _step_decision("skip", execution_id, step_id, by, output=output))


def fail_step(
    execution_id: str,
    step_id: str,
    by: Annotated[str, typer.Option("--by", help="Who decides.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit trail).")] = "",
) -> None:
    """Fail a suspended step as it would have failed: its failure handling applies."""
    run_command(lambda: _step_decision("fail", execution_id, step_id, by, reason=reason))


async def _step_decision(
    kind: str, execution_id: str, step_id: str, by: str, output: str = "null", reason: str = ""
) -> int:
    cadenza = CadenzaClient(await connect())
    try:
        if kind == "retry":
            await cadenza.retry_step(execution_id, step_id, by)
        elif kind == "skip":
            value = parse_json_value(output, "--output")
            await cadenza.skip_step(execution_id, step_id, by, value)
        else:
            await cadenza.fail_step(execution_id, step_id, by, reason)
    except DecisionRefused as exc:
        raise UsageError(f"refused: {exc}") from None
    except RPCError as exc:
        raise UsageError(f"cannot reach run {execution_id!r}: {exc.message}") from None
    out.print(f"{kind} {step_id} of {execution_id} as {by}: decided", highlight=False)
    return EXIT_OK


def pending(
    as_json: Annotated[bool, typer.Option("--json", help="As JSON.")] = False,
) -> None:
    """Every run with a waiting approval or event step: step, approvers or event, how long it
    has waited."""

    async def main() -> int:
        cadenza = CadenzaClient(await connect())
        unanswered: list[str] = []
        waiting_events: list[tuple[str, PendingEvent]] = []
        suspended: list[tuple[str, SuspendedStep]] = []
        rows = await cadenza.pending(unanswered, events=waiting_events, suspended=suspended)
        if unanswered:
            err.print(
                f"{len(unanswered)} waiting run(s) did not answer within 3 s (is a worker "
                f"running on their task queue?): {', '.join(unanswered[:10])}",
                highlight=False,
            )
        if as_json:
            data = [
                {"execution_id": eid, "kind": "approval", **p.model_dump(mode="json")}
                for eid, p in rows
            ]
            data += [
                {"execution_id": eid, "kind": "event", **e.model_dump(mode="json")}
                for eid, e in waiting_events
            ]
            data += [
                {"execution_id": eid, "kind": "suspended", **x.model_dump(mode="json")}
                for eid, x in suspended
            ]
            sys.stdout.write(json.dumps(data) + "\n")
            return EXIT_OK
        if not rows and not waiting_events and not suspended:
            out.print("no approvals, events or suspended steps are waiting")
            return EXIT_OK
        if suspended:
            out.print(_suspended_table(suspended))
        if waiting_events:
            out.print(_events_table(waiting_events))
        if not rows:
            return EXIT_OK
        now = datetime.now(UTC)
        table = Table()
        for column in ("run", "step", "approvers", "approvals", "waiting"):
            table.add_column(column)
        for eid, p in rows:
            waited = (now - datetime.fromisoformat(p.since)).total_seconds()
            table.add_row(
                eid,
                p.step_id,
                ", ".join(p.approvers) or "anyone",
                f"{p.approvals}/{p.required}" + (" (escalated)" if p.escalated else ""),
                human_duration(waited),
            )
        out.print(table)
        return EXIT_OK

    run_command(main)


def _events_table(rows: list[tuple[str, PendingEvent]]) -> Table:
    now = datetime.now(UTC)
    table = Table(title="waiting for events")
    for column in ("run", "step", "event", "waiting", "send it with"):
        table.add_column(column)
    for eid, e in rows:
        waited = (now - datetime.fromisoformat(e.since)).total_seconds()
        table.add_row(
            eid,
            e.step_id,
            e.name + (" (transient)" if e.transient else ""),
            human_duration(waited),
            f"cadenza send {eid} {e.name} --data '{{...}}'",
        )
    return table


def _suspended_table(rows: list[tuple[str, SuspendedStep]]) -> Table:
    now = datetime.now(UTC)
    table = Table(title="suspended steps (retry-step, skip-step or fail-step)")
    for column in ("run", "step", "error", "attempts", "suspended for"):
        table.add_column(column)
    for eid, x in rows:
        waited = (now - datetime.fromisoformat(x.since)).total_seconds()
        error = f"{x.error.type}: {x.error.message}"
        table.add_row(eid, x.step_id, error[:100], str(x.attempts), human_duration(waited))
    return table


def approval_keys(
    key_id: Annotated[str, typer.Argument(help="An id for the key pair.")] = "k1",
) -> None:
    """Print a new Ed25519 pair: the signing key for approvers' tools, the trusted key for the
    workers (with it, runs accept only signed approval decisions)."""
    signing, trusted = new_pair(key_id)
    sys.stdout.write(f"CADENZA_APPROVAL_SIGNING_KEY={signing}\nCADENZA_APPROVAL_KEYS={trusted}\n")
