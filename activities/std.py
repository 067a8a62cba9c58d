"""Built-in actions (`std.*`). Their inputs and outputs are a contract (DESIGN.md).

Nothing registers at import: `register_std(registry)` adds them to a registry, and
`default_registry()` is the registry `@action` fills, with them in it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from activities.contracts import ErrorType
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


class HttpInput(_Input):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    url: str = Field(pattern=r"^https?://", description="Absolute http(s) URL.")
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = Field(None, alias="json", description="JSON body to send.")
    timeout: float = Field(30, gt=0, le=3600, description="Seconds for the whole request.")
    expect_status: int | list[int] | None = Field(
        None, description="Accepted status codes; absent: any 2xx."
    )


async def http(params: HttpInput, ctx: ActionContext) -> dict[str, Any]:
    """Make an HTTP request; a 5xx or a network error retries, an unexpected 4xx does not."""
    try:
        response = await ctx.http.request(
            params.method,
            params.url,
            headers=params.headers,
            json=params.json_body,
            timeout=params.timeout,
        )
    except httpx.TimeoutException as exc:
        raise ActionError(
            f"{params.method} {params.url} timed out: {exc}", type=ErrorType.TIMEOUT
        ) from None
    except httpx.HTTPError as exc:
        raise ActionError(
            f"{params.method} {params.url} failed: {exc}", type=ErrorType.HTTP_ERROR
        ) from None
    expected = params.expect_status
    accepted = (
        response.is_success
        if expected is None
        else response.status_code in (expected if isinstance(expected, list) else [expected])
    )
    if not accepted:
        raise ActionError(
            f"{params.method} {params.url} answered {response.status_code}: {response.text[:200]}",
            type=ErrorType.HTTP_ERROR,
            non_retryable=400 <= response.status_code < 500 and response.status_code != 429,
        )
    out: dict[str, Any] = {"status": response.status_code, "headers": dict(response.headers)}
    if "json" in response.headers.get("content-type", ""):
        try:
            out["json"] = response.json()
        except ValueError:
            out["text"] = response.text
    else:
        out["text"] = response.text
    return out


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
        registry.register(name, fn, input_model)  # type: ignore[arg-type]
    return registry


def default_registry() -> ActionRegistry:
    """The default registry (the one `@action` fills) with the built-in actions in it."""
    return register_std(DEFAULT_REGISTRY)
