"""The approval inbox's ASGI app: pages for people, the API for services, static CSS, security
headers, and refusals that are pages or JSON in plain words (never a stack trace)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import JSONResponse, Response
from temporalio.service import RPCError

from worker.client import CadenzaClient, ConnectionFailed
from worker.inbox import api, pages
from worker.inbox.auth import Sessions
from worker.inbox.context import Inbox
from worker.inbox.links import LinkSigner
from worker.inbox.oidc import OidcClient
from worker.inbox.queries import ApprovalQueries, Refused
from worker.inbox.settings import InboxConfigInvalid, InboxSettings

HEADERS = {
    "Content-Security-Policy": "default-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # a sign-in link's token must not leak through Referer
    "X-Frame-Options": "DENY",
}


def create_app(
    settings: InboxSettings,
    connect: Callable[[], Awaitable[CadenzaClient]],
    *,
    secret: bytes,
    public_url: str,
    oidc_issuer: str | None = None,
    oidc_claim: str = "preferred_username",
    http: httpx.AsyncClient | None = None,
) -> FastAPI:
    """The inbox app.

    Args:
        settings: tokens, OIDC client id and secret, the signing key (from the environment).
        connect: makes the `CadenzaClient` on first use (in the server's event loop).
        secret: signs links and sessions (CADENZA_INBOX_SECRET, or a random one per process).
        public_url: where browsers reach the inbox (the OIDC redirect; https: Secure cookies).
        oidc_issuer: turns on OIDC sign-in with CADENZA_OIDC_CLIENT_ID/SECRET.
        http: the client for OIDC requests (default: a new one, 10 s timeout).

    Raises:
        InboxConfigInvalid: OIDC without a client id, or a malformed token list.
    """
    oidc = None
    if oidc_issuer:
        if not settings.oidc_client_id:
            raise InboxConfigInvalid(
                "--oidc-issuer needs CADENZA_OIDC_CLIENT_ID (and CADENZA_OIDC_CLIENT_SECRET): "
                "the inbox's registration at the issuer"
            )
        oidc = OidcClient(
            oidc_issuer,
            settings.oidc_client_id,
            settings.oidc_client_secret,
            f"{public_url.rstrip('/')}/oidc/callback",
            http or httpx.AsyncClient(timeout=10.0, follow_redirects=False),
            claim=oidc_claim,
        )
    inbox = Inbox(
        sessions=Sessions(secret, secure=public_url.startswith("https://")),
        links=LinkSigner(secret),
        tokens=settings.tokens(),
        queries=ApprovalQueries(connect, settings.approval_signing_key),
        oidc=oidc,
    )
    app = FastAPI(
        title="cadenza approval inbox",
        version="1",
        summary="Approvals waiting for people, decided as signed updates.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.inbox = inbox
    app.include_router(api.routes(inbox))
    app.include_router(pages.routes(inbox))
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    _handlers(app)
    return app


def _handlers(app: FastAPI) -> None:
    messages = pages.Pages()

    def answer(request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith("/api/"):
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return JSONResponse({"detail": message}, status_code=status, headers=headers)
        return messages.message(None, "Not available", message, status)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        return answer(request, exc.status, exc.message)

    @app.exception_handler(RPCError)
    @app.exception_handler(ConnectionFailed)
    async def unreachable(request: Request, exc: Exception) -> Response:
        return answer(request, 503, "Temporal cannot be reached now; try again in a moment.")

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response
