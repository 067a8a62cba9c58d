"""The `cadenza` command line: the Typer app, every command in `--help` order, and `main()`.

Exit codes: 0 success, 1 the workflow failed, 2 invalid input or usage. The commands live in
modules by audience (definitions, runs, approvals, tasks, operate, codec), each a few lines over
the library; they are registered here, so this table is the whole command set.
"""

from __future__ import annotations

from collections.abc import Callable

import typer

from worker.cli import approvals, codec, definitions, inbox, operate, runs, schedules, tasks
from worker.cli.base import EXIT_OK, EXIT_USAGE, exit_now

app = typer.Typer(
    name="cadenza",
    help="Durable workflows on Temporal: validate, run and watch AdvancedWorkflow definitions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

COMMANDS: dict[str, Callable[..., None]] = {
    "schema": definitions.schema,
    "validate": definitions.validate,
    "graph": definitions.graph,
    "plan": definitions.plan,
    "server": operate.server,
    "worker": operate.worker,
    "setup": operate.setup,
    "run": runs.run,
    "dev": runs.dev,
    "status": runs.status,
    "top": runs.top,
    "replay": operate.replay,
    "codec-server": codec.codec_server_command,
    "codec-key": operate.codec_key,
    "cancel": runs.cancel,
    "rerun": runs.rerun,
    "approve": approvals.approve,
    "reject": approvals.reject,
    "pending": approvals.pending,
    "approval-keys": approvals.approval_keys,
    "send": approvals.send,
    "retry-step": approvals.retry_step,
    "skip-step": approvals.skip_step,
    "fail-step": approvals.fail_step,
    "task": tasks.task,
    "task-status": tasks.task_status,
}
for name, command in COMMANDS.items():
    app.command(name)(command)
app.add_typer(schedules.app, name="schedule")
app.add_typer(inbox.app, name="inbox")


def main() -> None:
    """Entry point of the `cadenza` script."""
    try:
        app()
    except SystemExit as exc:  # typer's usage errors exit 2 already; keep their code
        exit_now(exc.code if isinstance(exc.code, int) else EXIT_USAGE)
    exit_now(EXIT_OK)
