"""Actions used by the tests: a side-effect ledger (a file, one line per execution)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from activities.registry import ActionContext, action


def _ledger(params: dict[str, Any]) -> Path:
    return Path(params.get("ledger") or os.environ["CADENZA_TEST_LEDGER"])


@action("test.ledger")
async def ledger(params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
    """Append `<step_id> <tag>` to the ledger file, then sleep `seconds` (default 0)."""
    with _ledger(params).open("a", encoding="utf-8") as fh:
        fh.write(f"{ctx.step_id} {params.get('tag', 'run')}\n")
        fh.flush()
        os.fsync(fh.fileno())
    await asyncio.sleep(float(params.get("seconds", 0)))
    return {"step": ctx.step_id}


@action("test.record")
async def record(params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
    """A rollback/handler action: log what it was given to the ledger."""
    with _ledger(params.get("input") or params).open("a", encoding="utf-8") as fh:
        fh.write(f"{params.get('step_id', ctx.step_id)} {ctx.step_id}-record\n")
    return {"recorded": params.get("step_id")}


@action("test.sync_big")
def sync_big(params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
    """A synchronous action (run in a thread) returning `size` bytes of text."""
    return {"text": "x" * int(params.get("size", 10))}


@action("test.noise")
async def noise(params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
    """`size` bytes of incompressible text (base64 of random bytes)."""
    import base64

    size = int(params.get("size", 10))
    return {"noise": base64.b64encode(os.urandom(size * 3 // 4)).decode()[:size]}


@action("test.journal")
async def journal(params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
    """Write `<key> start`, sleep `seconds`, write `<key> done` (key: `tag` or the step id),
    each line fsynced: a killed worker leaves a start without its done. As a rollback action
    (given `{step_id, input, output}`) it journals `<tag>/<step_id> rollback-...`."""
    if "step_id" in params and isinstance(params.get("input"), dict):
        params = {**params["input"], "key": params["step_id"], "kind": "rollback", "seconds": 0}
    key = f"{params.get('tag', '-')}/{params.get('key') or ctx.step_id}"
    path = _ledger(params)
    for mark in ("start", "done"):
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"{key} {params.get('kind', 'run')}-{mark}\n")
            fh.flush()
            os.fsync(fh.fileno())
        if mark == "start":
            await asyncio.sleep(float(params.get("seconds", 0)))
    return {"key": key}


@action("test.flaky")
async def flaky(params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
    """Append `<step_id> call` to the ledger, then fail (StepFailed, retryable) until the file
    `fixed` exists: a dependency an operator repairs before retrying the step."""
    with _ledger(params).open("a", encoding="utf-8") as fh:
        fh.write(f"{ctx.step_id} call\n")
    if not Path(params["fixed"]).exists():
        from activities.registry import ActionError

        raise ActionError(f"the dependency is broken (no {params['fixed']})")
    return {"fixed": True, "attempt": ctx.attempt}
