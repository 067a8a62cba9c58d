"""Built-in actions (`std.*`). Their inputs and outputs are a contract (DESIGN.md); `std.http`
lives in activities/http.py.

Nothing registers at import: `register_std(registry)` adds them to a registry, and
`default_registry()` is the registry `@action` fills, with them in it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from activities.contracts import STD_EXECUTION, ErrorType
from activities.http import HttpInput, http
from activities.registry import DEFAULT_REGISTRY, ActionContext, ActionError, ActionRegistry

logger = logging.getLogger("cadenza.actions")


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


async def echo(params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
    """Return the input object unchanged."""
    return params


class SleepInput(_Input):
    seconds: float = Field(ge=0, le=31_536_000, description="How long to sleep.")


async def sleep(params: SleepInput, ctx: ActionContext) -> dict[str, Any]:
    """Sleep, heartbeating; cancellable."""
    remaining = params.seconds
    while remaining > 0:
        chunk = min(remaining, 1.0)
        await asyncio.sleep(chunk)
        remaining -= chunk
        ctx.heartbeat({"remaining": remaining})
    return {"slept": params.seconds}


class FailInput(_Input):
    message: str = Field("std.fail was asked to fail", description="The error message.")
    until_attempt: int | None = Field(
        None, ge=1, description="Fail while the attempt is below this; absent: always fail."
    )
    error_type: str = Field(ErrorType.STEP_FAILED, description="Error type to raise.")
    non_retryable: bool = Field(False, description="Mark the error non-retryable.")


async def fail(params: FailInput, ctx: ActionContext) -> dict[str, Any]:
    """Fail until a given attempt (for tests and demos), then return `{attempt}`."""
    if params.until_attempt is None or ctx.attempt < params.until_attempt:
        raise ActionError(
            f"{params.message} (attempt {ctx.attempt})",
            type=params.error_type,
            non_retryable=params.non_retryable,
        )
    return {"attempt": ctx.attempt}


class LogInput(BaseModel):
    model_config = ConfigDict(extra="allow")

    message: str | None = Field(
        None, description="The line to log; absent: the whole input is logged (rollbacks)."
    )
    level: Literal["debug", "info", "warning", "error"] = "info"


async def log(params: LogInput, ctx: ActionContext) -> dict[str, Any]:
    """Write a line to the worker's log (usable as a rollback action or error handler)."""
    message = params.message
    if message is None:
        message = json.dumps(params.model_extra, default=str)[:2000]
    logger.log(
        logging.getLevelName(params.level.upper()),
        "%s [workflow %s, step %s]",
        message,
        ctx.workflow_id,
        ctx.step_id,
    )
    return {"logged": True}


BUILTINS = (
    ("std.echo", echo, None),
    ("std.sleep", sleep, SleepInput),
    ("std.fail", fail, FailInput),
    ("std.log", log, LogInput),
    ("std.http", http, HttpInput),
)


def register_std(registry: ActionRegistry) -> ActionRegistry:
    """Add the built-in `std.*` actions to `registry` (idempotent) and return it."""
    for name, fn, input_model in BUILTINS:
        execution = STD_EXECUTION.get(name, "activity")
        registry.register(name, fn, input_model, execution)  # type: ignore[arg-type]
    return registry


def default_registry() -> ActionRegistry:
    """The default registry (the one `@action` fills) with the built-in actions in it."""
    return register_std(DEFAULT_REGISTRY)
