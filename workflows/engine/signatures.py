"""Signed approval decisions: when the workers trust approval keys (`CADENZA_APPROVAL_KEYS`),
every `approve`/`reject` must carry an Ed25519 signature, by a trusted key, over the run, the
step, the decision, the approver, the comment and an expiry; `by` is then proven, not claimed.

Deterministic: the trusted keys come from the run's history (a local activity at start), the
clock from `workflow.now()`, and Ed25519 verification is a pure function.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from temporalio import workflow

from workflows.contracts import KEYS_ACTIVITY, DecisionInput

MAX_VALIDITY_SECONDS = 7 * 86400
"""A signed decision may be valid for at most this long (a leaked one expires)."""


def signed_bytes(
    execution_id: str, step_id: str, decision: str, by: str, comment: str, expires_at: str
) -> bytes:
    """What a decision's signature covers, as canonical JSON."""
    document = {
        "run": execution_id,
        "step": step_id,
        "decision": decision,
        "by": by,
        "comment": comment,
        "expires_at": expires_at,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def refusal(
    trusted: dict[str, str],
    used: set[str],
    execution_id: str,
    request: DecisionInput,
    decision: str,
    now: datetime,
) -> str | None:
    """Why a decision is refused under signed decisions, or None when its signature holds."""
    if not request.signature or not request.key_id or not request.expires_at:
        return (
            "this run accepts signed decisions only (the workers have CADENZA_APPROVAL_KEYS): "
            "sign it with CADENZA_APPROVAL_SIGNING_KEY (`cadenza approve` and CadenzaClient "
            "sign when it is set) or decide in the approval inbox"
        )
    public = trusted.get(request.key_id)
    if public is None:
        return f"key {request.key_id!r} is not trusted by this run; trusted: {', '.join(trusted)}"
    try:
        expires = datetime.fromisoformat(request.expires_at)
    except ValueError:
        return f"expires_at {request.expires_at!r} is not an ISO 8601 time"
    if expires.tzinfo is None:
        return "expires_at needs a time zone (e.g. +00:00)"
    if expires <= now:
        return f"the signed decision expired at {request.expires_at}: sign a new one"
    if (expires - now).total_seconds() > MAX_VALIDITY_SECONDS:
        return f"a signed decision may be valid for at most {MAX_VALIDITY_SECONDS // 86400} days"
    if request.signature in used:
        return "this signed decision was already used (a replay)"
    document = signed_bytes(
        execution_id, request.step_id, decision, request.by, request.comment, request.expires_at
    )
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public, validate=True))
        key.verify(base64.b64decode(request.signature, validate=True), document)
    except (InvalidSignature, ValueError, binascii.Error):
        return (
            "the signature does not match this run, step, decision, approver, comment and "
            f"expiry under key {request.key_id!r}"
        )
    return None


class Signing:
    """The trusted keys of one run and the signatures it has accepted (each accepted once)."""

    def __init__(self, trusted: dict[str, str]) -> None:
        self.trusted = trusted
        self.used: set[str] = set()

    def refusal(
        self, execution_id: str, request: DecisionInput, decision: str, now: datetime
    ) -> str | None:
        return refusal(self.trusted, self.used, execution_id, request, decision, now)

    def accept(self, request: DecisionInput) -> str | None:
        """Mark a verified decision's signature used; the key it was verified with."""
        if request.signature:
            self.used.add(request.signature)
        return request.key_id


async def trusted() -> Signing | None:
    """The workers' trusted approval keys, taken into the run's history by the local activity
    `cadenza.approvals.keys` (never read again on replay): a Signing when there are keys, else
    None (decisions are then only what callers claim)."""
    keys: dict[str, str] = await workflow.execute_local_activity(
        KEYS_ACTIVITY,
        result_type=dict,
        start_to_close_timeout=timedelta(seconds=10),
        summary="trusted approval keys",
    )
    return Signing(keys) if keys else None
