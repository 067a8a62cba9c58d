"""The commands of people in the loop: approval decisions (`approve`, `reject`, `pending`)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table
from temporalio.service import RPCError

from worker.cli.base import EXIT_OK, UsageError, err, human_duration, out, run_command
from worker.client import CadenzaClient, DecisionRefused, connect


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


def pending(
    as_json: Annotated[bool, typer.Option("--json", help="As JSON.")] = False,
) -> None:
    """Every run with a waiting approval: step, approvers, how long it has waited."""

    async def main() -> int:
        cadenza = CadenzaClient(await connect())
        unanswered: list[str] = []
        rows = await cadenza.pending(unanswered)
        if unanswered:
            err.print(
                f"{len(unanswered)} waiting run(s) did not answer within 3 s (is a worker "
                f"running on their task queue?): {', '.join(unanswered[:10])}",
                highlight=False,
            )
        if as_json:
            data = [{"execution_id": eid, **p.model_dump(mode="json")} for eid, p in rows]
            sys.stdout.write(json.dumps(data) + "\n")
            return EXIT_OK
        if not rows:
            out.print("no approvals are waiting")
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
