"""Who is signed in: session cookies (signed with a key derived from the inbox secret,
HttpOnly, SameSite=Lax, Secure behind https), the CSRF token every form carries, and bearer
tokens of services. The approver's identity comes from a verified link, an OIDC ID token or a
configured token, never from a form field."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from worker.inbox.links import derived_key
from worker.inbox.settings import token_owner

SESSION_COOKIE = "cadenza_inbox"
PENDING_COOKIE = "cadenza_inbox_oidc"
SESSION_SECONDS = 12 * 3600
PENDING_SECONDS = 600


@dataclass(frozen=True)
class Session:
    """A signed-in approver and the CSRF token of their forms."""

    approver: str
    csrf: str
    via: str


class Sessions:
    """Reads and writes the session cookie and the short-lived OIDC state cookie."""

    def __init__(self, secret: bytes, secure: bool) -> None:
        self._serializer = URLSafeTimedSerializer(derived_key(secret, "session").hex(), "session")
        self._pending = URLSafeTimedSerializer(derived_key(secret, "oidc").hex(), "oidc")
        self.secure = secure

    def current(self, request: Request) -> Session | None:
        data = self._load(self._serializer, request.cookies.get(SESSION_COOKIE), SESSION_SECONDS)
        if not data:
            return None
        try:
            return Session(approver=str(data["a"]), csrf=str(data["c"]), via=str(data["v"]))
        except KeyError:
            return None

    def sign_in(self, response: Response, approver: str, via: str) -> None:
        """A fresh session (a new CSRF token: none survives from before the sign-in)."""
        value = self._serializer.dumps({"a": approver, "c": secrets.token_urlsafe(24), "v": via})
        self._set(response, SESSION_COOKIE, value, SESSION_SECONDS)

    def sign_out(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/", samesite="lax", httponly=True)

    def begin_oidc(self, response: Response, state: str, nonce: str, verifier: str) -> None:
        value = self._pending.dumps({"s": state, "n": nonce, "v": verifier})
        self._set(response, PENDING_COOKIE, value, PENDING_SECONDS)

    def oidc_pending(self, request: Request) -> dict[str, str] | None:
        data = self._load(self._pending, request.cookies.get(PENDING_COOKIE), PENDING_SECONDS)
        if not data or not all(isinstance(data.get(k), str) for k in ("s", "n", "v")):
            return None
        return {"state": data["s"], "nonce": data["n"], "verifier": data["v"]}

    def end_oidc(self, response: Response) -> None:
        response.delete_cookie(PENDING_COOKIE, path="/", samesite="lax", httponly=True)

    def _set(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.secure,
        )

    @staticmethod
    def _load(serializer: URLSafeTimedSerializer, value: str | None, max_age: int) -> Any:
        if not value or len(value) > 4096:
            return None
        try:
            data = serializer.loads(value, max_age=max_age)
        except (BadSignature, ValueError, TypeError):
            return None
        return data if isinstance(data, dict) else None


def csrf_ok(session: Session, presented: str | None) -> bool:
    """The form's CSRF token is the session's (constant-time)."""
    return bool(presented) and hmac.compare_digest(session.csrf.encode(), str(presented).encode())


def bearer_approver(request: Request, tokens: dict[str, str]) -> str | None:
    """The approver a request's `Authorization: Bearer TOKEN` stands for, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or len(token) > 512:
        return None
    return token_owner(tokens, token.strip())
