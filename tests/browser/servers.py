"""Servers the inbox tests run in-process on loopback: any ASGI app under uvicorn on a free
port, and a small but real OpenID Connect provider (discovery, authorize, token with PKCE,
JWKS; RS256 ID tokens) that can be told to misbehave (wrong nonce, audience, signature)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from worker.services.dev_server import free_port


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on 127.0.0.1 and a free port; its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = asyncio.get_running_loop().time() + 20
    while not server.started:
        if task.done():
            task.result()
        assert asyncio.get_running_loop().time() < deadline, "uvicorn did not start"
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class OidcProvider:
    """An OIDC provider for one client and one user; `mode` makes its ID tokens wrong on
    purpose: "bad_nonce", "bad_aud", "bad_signature", "expired", "bad_iss"."""

    def __init__(self, client_id: str, client_secret: str, user: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.user = user
        self.mode = "good"
        self.issuer = ""
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.codes: dict[str, dict[str, str]] = {}
        self.app = self._app()

    def _app(self) -> FastAPI:  # long: one small route per endpoint
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        async def discovery() -> dict[str, Any]:
            return {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }

        @app.get("/jwks")
        async def jwks() -> dict[str, Any]:
            public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
            return {"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}

        @app.get("/authorize")
        async def authorize(request: Request) -> Response:
            q = request.query_params
            if q.get("client_id") != self.client_id or q.get("response_type") != "code":
                return JSONResponse({"error": "invalid_request"}, 400)
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "nonce": q.get("nonce", ""),
                "challenge": q.get("code_challenge", ""),
                "redirect_uri": q.get("redirect_uri", ""),
            }
            target = f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}"
            return RedirectResponse(target, status_code=302)

        @app.post("/token")
        async def token(
            request: Request,
            code: str = Form(),
            code_verifier: str = Form(),
            redirect_uri: str = Form(),
        ) -> Response:
            expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode())
            if request.headers.get("authorization") != f"Basic {expected.decode()}":
                return JSONResponse({"error": "invalid_client"}, 401)
            grant = self.codes.pop(code, None)
            digest = hashlib.sha256(code_verifier.encode()).digest()
            challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if grant is None or grant["challenge"] != challenge:
                return JSONResponse({"error": "invalid_grant"}, 400)
            if grant["redirect_uri"] != redirect_uri:
                return JSONResponse({"error": "invalid_grant"}, 400)
            return JSONResponse({"id_token": self.id_token(grant["nonce"]), "token_type": "Bearer"})

        return app

    def id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims = {
            "iss": "https://elsewhere.example" if self.mode == "bad_iss" else self.issuer,
            "sub": f"sub-{self.user}",
            "aud": "another-client" if self.mode == "bad_aud" else self.client_id,
            "iat": now,
            "exp": now - 300 if self.mode == "expired" else now + 300,
            "nonce": "not-the-nonce" if self.mode == "bad_nonce" else nonce,
            "preferred_username": self.user,
        }
        key = self.impostor if self.mode == "bad_signature" else self.key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


@asynccontextmanager
async def oidc_provider(
    client_id: str, client_secret: str, user: str
) -> AsyncIterator[OidcProvider]:
    provider = OidcProvider(client_id, client_secret, user)
    async with serving(provider.app) as url:
        provider.issuer = url
        yield provider
