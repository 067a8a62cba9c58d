"""Signed sign-in links: `/login?token=...` where the token names the approver and an expiry,
signed with HMAC-SHA256 under a key derived from CADENZA_INBOX_SECRET. Whoever holds a valid
link signs in as its approver until it expires: links go to that approver only (a reminder, a
message), never into a run's history or a log."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from urllib.parse import urlencode

from cadenza.errors import EXIT_USAGE, CadenzaError
from worker.inbox.settings import InboxSettings

MIN_SECRET = 32
"""Characters a CADENZA_INBOX_SECRET needs at least."""


class LinkInvalid(CadenzaError):
    """A sign-in link that is malformed, tampered with or expired; ask for a new one
    (`cadenza inbox link --approver NAME`)."""

    exit_code = EXIT_USAGE


def derived_key(secret: bytes, purpose: str) -> bytes:
    """One key per purpose (links, sessions) from the one secret."""
    return hmac.new(secret, f"cadenza-inbox:{purpose}".encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LinkSigner:
    """Issues and verifies sign-in tokens with a key derived from the inbox secret."""

    def __init__(self, secret: bytes) -> None:
        self._key = derived_key(secret, "link")

    def issue(self, approver: str, ttl: float, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + ttl)
        body = _b64(json.dumps({"sub": approver, "exp": expires}, separators=(",", ":")).encode())
        return f"{body}.{self._mac(body)}"

    def verify(self, token: str, now: float | None = None) -> str:
        """The approver the token names.

        Raises:
            LinkInvalid: malformed, signed with another secret or altered, or expired.
        """
        body, dot, mac = token.partition(".")
        if not dot or len(token) > 2048:
            raise LinkInvalid("this sign-in link is malformed: ask for a new one")
        if not hmac.compare_digest(self._mac(body).encode(), mac.encode()):
            raise LinkInvalid("this sign-in link is not valid (altered, or made with another key)")
        try:
            claims = json.loads(_unb64(body))
            approver, expires = str(claims["sub"]), int(claims["exp"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise LinkInvalid("this sign-in link is malformed: ask for a new one") from None
        if expires <= (time.time() if now is None else now):
            raise LinkInvalid("this sign-in link has expired: ask for a new one")
        return approver

    def url(self, base_url: str, approver: str, ttl: float) -> str:
        return f"{base_url.rstrip('/')}/login?{urlencode({'token': self.issue(approver, ttl)})}"

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())


def reminder_links(
    base_url: str, secret: str, ttl: float
) -> Callable[[list[str]], dict[str, str]] | None:
    """What a worker's step executor calls to add one sign-in link per approver to reminders
    and escalations; None when the inbox URL or secret is not configured."""
    if not base_url or len(secret) < MIN_SECRET:
        return None
    signer = LinkSigner(secret.encode())

    def links(approvers: list[str]) -> dict[str, str]:
        return {a: signer.url(base_url, a, ttl) for a in approvers if a.strip()}

    return links


def worker_reminder_links() -> Callable[[list[str]], dict[str, str]] | None:
    """`reminder_links` from the worker's environment (CADENZA_INBOX_URL, _SECRET, _LINK_TTL)."""
    settings = InboxSettings()
    return reminder_links(settings.inbox_url, settings.inbox_secret, settings.inbox_link_ttl)
