"""The commands of agentic tasks: `task` starts one, `task-status` shows it."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer
from pydantic import ValidationError
from temporalio.service import RPCError

from worker.cli.base import (
    EXIT_FAILED,
    EXIT_OK,
    ActionsOpt,
    UsageError,
    err,
    load_registry,
    out,
    print_started,
    run_command,
)
from worker.cli.render import task_view
from worker.client import CadenzaClient, connect
from worker.settings import Settings
from workflows.orchestrator import APPROVAL_NODE, TaskInput, TaskResult


def task(
    text: Annotated[str, typer.Argument(help="The task, in words.")],
    tools: Annotated[str, typer.Option(help="Comma-separated action names it may call.")] = "",
    model: Annotated[str | None, typer.Option(help="provider:name (worker default).")] = None,
    capability: Annotated[
        str | None, typer.Option(help="Run model and tool calls on task queue cadenza.NAME.")
    ] = None,
    approval: Annotated[bool, typer.Option(help="Ask a human before any tool runs.")] = False,
    approver: Annotated[
        list[str] | None, typer.Option("--approver", help="Who may decide (repeatable).")
    ] = None,
    max_iterations: Annotated[int, typer.Option(help="Model turns of the react route.")] = 10,
    execution_id: Annotated[str | None, typer.Option("--id", help="Execution id.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the result.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    task_queue: Annotated[str | None, typer.Option(help="Task queue of the workers.")] = None,
    actions: ActionsOpt = None,
) -> None:
    """Start an agentic task: the orchestrator analyses it and routes it (parallel,
    conditional, react, approval, recovery); with --wait, print the outcome."""

    async def main() -> int:
        names = [t.strip() for t in tools.split(",") if t.strip()]
        known = sorted(load_registry(actions).names())
        unknown = [n for n in names if n not in known]
        if unknown:
            raise UsageError(
                f"--tools: no action {', '.join(map(repr, unknown))}; the actions are "
                f"{', '.join(known)} (load more with --actions MODULE)"
            )
        try:
            request = TaskInput(
                task=text,
                tools=names,
                model=model,
                capability=capability,
                require_approval=approval,
                approvers=approver or [],
                max_iterations=max_iterations,
            )
        except ValidationError as exc:
            raise UsageError(_field_problems(exc)) from None
        cadenza = CadenzaClient(await connect(), task_queue or Settings().task_queue)
        handle = await cadenza.start_task(request, execution_id=execution_id)
        if not wait:
            return print_started(handle.id, as_json, "task-status")
        err.print(f"started {handle.id}", highlight=False)
        result = await _follow_task(cadenza, handle.id)
        if as_json:
            sys.stdout.write(result.model_dump_json() + "\n")
        else:
            out.print(task_view(result))
        return EXIT_OK if result.status == "completed" else EXIT_FAILED

    run_command(main)


async def _follow_task(cadenza: CadenzaClient, execution_id: str) -> TaskResult:
    """Wait for a task's result; say once, with the command, when it waits for approval."""
    waiter = asyncio.ensure_future(cadenza.task_result(execution_id))
    told = False
    while not waiter.done():
        await asyncio.wait({waiter}, timeout=1.0)
        if told or waiter.done():
            continue
        try:
            state = await cadenza.task_status(execution_id, timeout=2)
        except RPCError:
            continue
        if state.status == "waiting":
            told = True
            err.print(
                f"waiting for approval: cadenza approve {execution_id} {APPROVAL_NODE} --by NAME"
                f" (or cadenza reject ...)",
                highlight=False,
            )
    return waiter.result()


def task_status(
    execution_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print the state as JSON.")] = False,
) -> None:
    """Show the live (or final) state of an agentic task."""

    async def main() -> int:
        cadenza = CadenzaClient(await connect())
        try:
            state = await cadenza.task_status(execution_id, timeout=10)
        except RPCError as exc:
            raise UsageError(f"cannot read task {execution_id!r}: {exc.message}") from None
        if as_json:
            sys.stdout.write(state.model_dump_json() + "\n")
        else:
            out.print(task_view(state))
        return EXIT_OK

    run_command(main)


def _field_problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg'].removeprefix('Value error, ')}"
        for e in exc.errors(include_url=False)
    )
