"""Approval keys: Ed25519 pairs that make approval decisions provable.

`cadenza approval-keys [ID]` prints a new pair: `CADENZA_APPROVAL_SIGNING_KEY=ID:PRIVATE` for
whoever signs decisions (the CLI of an approver, the approval inbox) and
`CADENZA_APPROVAL_KEYS=ID:PUBLIC` for the workers (several, comma-separated, to rotate). The
workers hand their trusted keys to each run with approval steps when it starts (the local
activity `cadenza.approvals.keys`, recorded in its history); the run then refuses unsigned,
forged, expired and replayed decisions (`workflows.engine.signatures`).
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio import activity

from cadenza.errors import EXIT_USAGE, CadenzaError
from workflows.contracts import KEYS_ACTIVITY, DecisionInput
from workflows.engine.signatures import signed_bytes

KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
DEFAULT_VALIDITY = timedelta(hours=1)


class ApprovalKeyInvalid(CadenzaError):
    """CADENZA_APPROVAL_KEYS or CADENZA_APPROVAL_SIGNING_KEY is malformed: the message says
    which entry; print a fresh pair with `cadenza approval-keys`."""

    exit_code = EXIT_USAGE


def new_pair(key_id: str = "k1") -> tuple[str, str]:
    """(signing key `ID:PRIVATE`, trusted key `ID:PUBLIC`), base64 of the raw 32 bytes."""
    if not KEY_ID.match(key_id):
        raise ApprovalKeyInvalid(f"key id {key_id!r}: use letters, digits, '_', '.', '-'")
    private = Ed25519PrivateKey.generate()
    raw_private = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    raw_public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    encode = base64.b64encode
    return f"{key_id}:{encode(raw_private).decode()}", f"{key_id}:{encode(raw_public).decode()}"


def parse_trusted(value: str) -> dict[str, str]:
    """`ID:PUBLIC,ID:PUBLIC` -> {id: base64 public key}; every entry checked."""
    keys: dict[str, str] = {}
    for entry in filter(None, (e.strip() for e in value.split(","))):
        key_id, _, public = entry.partition(":")
        if not KEY_ID.match(key_id) or len(_decoded(public, key_id)) != 32:
            raise ApprovalKeyInvalid(
                f"CADENZA_APPROVAL_KEYS entry {key_id!r}: expected ID:BASE64 of a 32-byte "
                "Ed25519 public key (`cadenza approval-keys` prints one)"
            )
        keys[key_id] = public
    return keys


def sign(
    signing_key: str,
    execution_id: str,
    request: DecisionInput,
    decision: str,
    validity: timedelta = DEFAULT_VALIDITY,
) -> DecisionInput:
    """`request` signed with `signing_key` (`ID:PRIVATE`), valid for `validity`."""
    key_id, _, private = signing_key.partition(":")
    raw = _decoded(private, key_id)
    if not KEY_ID.match(key_id) or len(raw) != 32:
        raise ApprovalKeyInvalid(
            "CADENZA_APPROVAL_SIGNING_KEY: expected ID:BASE64 of a 32-byte Ed25519 private key"
        )
    expires_at = (datetime.now(UTC) + validity).isoformat()
    document = signed_bytes(
        execution_id, request.step_id, decision, request.by, request.comment, expires_at
    )
    signature = Ed25519PrivateKey.from_private_bytes(raw).sign(document)
    return request.model_copy(
        update={
            "key_id": key_id,
            "expires_at": expires_at,
            "signature": base64.b64encode(signature).decode(),
        }
    )


def _decoded(value: str, key_id: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApprovalKeyInvalid(f"approval key {key_id!r} is not base64") from None


class ApprovalKeyActivities:
    """The local activity that gives a starting run the workers' trusted keys."""

    def __init__(self, trusted: dict[str, str]) -> None:
        self.trusted = trusted

    @activity.defn(name=KEYS_ACTIVITY)
    async def keys(self) -> dict[str, str]:
        return self.trusted
