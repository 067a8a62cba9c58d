"""The approval inbox's sign-in, CSRF and API on the real server: links (tampered, expired),
forms without the session's CSRF token refused (the run still waits), bearer tokens mapped to
approvers (unknown refused, not-an-approver and already-decided in plain words), OpenID Connect
against a real in-process provider (discovery, authorize, token with PKCE, JWKS, RS256 ID
tokens; a good sign-in; wrong nonce, audience, signature, expiry, issuer and state refused),
sign-in links in reminders."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from temporalio.client import Client

from activities.registry import ActionRegistry, action
from tests.support.flows import status_when
from tests.support.servers import serving
from worker.client import CadenzaClient
from worker.inbox.app import create_app
from worker.inbox.links import LinkSigner
from worker.inbox.settings import InboxSettings
from worker.settings import Settings
from worker.wiring import running_worker
from workflows.contracts import StepStatus, WorkflowState

SECRET = "integration-secret-" + "x" * 32
TOKEN = "svc-token-" + "t" * 30
BASE = "http://127.0.0.1:8090"


def definition(*approvers: str) -> dict[str, Any]:
    return {
        "workflow_id": "inbox-test",
        "timeout": 600,
        "steps": [
            {
                "step_id": "sign_off",
                "step_type": "approval",
                "approval": {"approvers": list(approvers)},
            }
        ],
    }


def inbox_app(client: Client, task_queue: str, **extra: Any) -> FastAPI:
    async def connect() -> CadenzaClient:
        return CadenzaClient(client, task_queue)

    settings = InboxSettings(
        inbox_secret=SECRET, task_queue=task_queue, approval_signing_key="", **extra
    )
    return create_app(settings, connect, secret=SECRET.encode(), public_url=BASE)


def browser(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


async def waiting(cadenza: CadenzaClient, *approvers: str) -> str:
    run_id = (await cadenza.start(definition(*approvers))).id
    await status_when(
        cadenza,
        run_id,
        lambda s: "sign_off" in s.steps and s.steps["sign_off"].status == StepStatus.WAITING,
        "waiting",
    )
    return run_id


@pytest.fixture
async def worker(
    client: Client, registry: ActionRegistry, task_queue: str
) -> AsyncIterator[CadenzaClient]:
    async with running_worker(client, Settings(), registry, task_queue=task_queue):
        cadenza = CadenzaClient(client, task_queue)
        cadenza.signing_key = ""
        yield cadenza


async def test_links_sign_in_and_bad_ones_do_not(client: Client, task_queue: str) -> None:
    async with browser(inbox_app(client, task_queue)) as web:
        assert (await web.get("/")).headers["location"] == "/login"
        token = LinkSigner(SECRET.encode()).issue("maria", 60)
        for bad, why in [
            (token[:-3] + "abc", "not valid"),
            (LinkSigner(SECRET.encode()).issue("maria", 60, now=time.time() - 120), "expired"),
            ("garbage", "malformed"),
        ]:
            page = await web.get("/login", params={"token": bad})
            assert page.status_code == 401 and why in page.text
            assert "set-cookie" not in page.headers
        signed = await web.get("/login", params={"token": token})
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert signed.headers["referrer-policy"] == "no-referrer"
        assert "Signed in as <strong>maria</strong>" in (await web.get("/")).text


async def test_forms_without_the_csrf_token_are_refused(
    client: Client, task_queue: str, worker: CadenzaClient
) -> None:
    run_id = await waiting(worker, "maria")
    async with browser(inbox_app(client, task_queue)) as web:
        await web.get("/login", params={"token": LinkSigner(SECRET.encode()).issue("maria", 60)})
        url = f"/approvals/{run_id}/sign_off"
        page = await web.get(url)
        assert page.status_code == 200 and 'name="csrf"' in page.text
        for form in [{"decision": "approve"}, {"decision": "approve", "csrf": "forged"}]:
            refused = await web.post(url, data=form)
            assert refused.status_code == 403 and "security token" in refused.text
        assert (await web.post("/logout", data={})).status_code == 403
        state = await worker.status(run_id)
        assert state.pending_approvals["sign_off"].votes == []
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        sent = await web.post(url, data={"decision": "approve", "csrf": csrf, "comment": "ok"})
        assert sent.status_code == 200 and "The step is approved" in sent.text
        assert (await worker.result(run_id)).status == WorkflowState.COMPLETED


async def test_bearer_tokens_decide_as_their_approver(
    client: Client, task_queue: str, worker: CadenzaClient
) -> None:
    bot = f"bot-{uuid.uuid4().hex[:6]}"
    tokens = f"{bot}={TOKEN},mallory={'m' * 30}"
    run_id = await waiting(worker, bot)
    async with browser(inbox_app(client, task_queue, inbox_tokens=tokens)) as api:
        assert (await api.get("/api/approvals")).status_code == 401
        bad = await api.get("/api/approvals", headers={"Authorization": "Bearer " + "z" * 40})
        assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        listed = (await api.get("/api/approvals", headers=auth)).json()
        assert [(a["run"], a["step"]) for a in listed] == [(run_id, "sign_off")]
        url = f"/api/approvals/{run_id}/sign_off"
        other = {"Authorization": f"Bearer {'m' * 30}"}
        refused = await api.post(url, json={"decision": "approve"}, headers=other)
        assert refused.status_code == 403
        assert refused.json() == {"detail": "You are not one of the approvers of this step."}
        done = await api.post(url, json={"decision": "approve", "comment": "ok"}, headers=auth)
        assert done.status_code == 200 and done.json()["outcome"] == "approved"
        again = await api.post(url, json={"decision": "reject"}, headers=auth)
        assert again.status_code == 409  # decided: the step (or the whole run) no longer waits
        assert "no longer waits" in again.json()["detail"] or "has ended" in again.json()["detail"]
        missing = await api.post(
            f"/api/approvals/no-such-run-{uuid.uuid4().hex}/x",
            json={"decision": "approve"},
            headers=auth,
        )
        assert missing.status_code == 404
        history = (await api.get("/api/history", headers=auth)).json()
        assert [(h["run"], h["decision"], h["comment"]) for h in history] == [
            (run_id, "approve", "ok")
        ]


async def oidc_sign_in(web: httpx.AsyncClient, state: str | None = None) -> httpx.Response:
    """Follow the code flow: the inbox's redirect, the provider's, back to the callback."""
    start = await web.get("/oidc/start")
    assert start.status_code == 303
    async with httpx.AsyncClient() as outside:
        back = await outside.get(start.headers["location"])
    assert back.status_code == 302
    callback = httpx.URL(back.headers["location"])
    params = dict(callback.params)
    if state is not None:
        params["state"] = state
    return await web.get(callback.path, params=params)


async def test_oidc_sign_in_and_bad_id_tokens(client: Client, task_queue: str) -> None:
    extra = {"oidc_client_id": "inbox", "oidc_client_secret": "provider-secret"}
    async with oidc_provider("inbox", "provider-secret", "ana") as provider:
        app = create_app(
            InboxSettings(task_queue=task_queue, **extra),
            lambda: _never(),
            secret=SECRET.encode(),
            public_url=BASE,
            oidc_issuer=provider.issuer,
        )
        async with browser(app) as web:
            signed = await oidc_sign_in(web)
            assert signed.status_code == 303 and signed.headers["location"] == "/"
            assert "cadenza_inbox=" in signed.headers["set-cookie"]
        await refused(app, provider, "bad_nonce", "nonce")
        await refused(app, provider, "bad_aud", "Audience")
        await refused(app, provider, "bad_signature", "Signature verification failed")
        await refused(app, provider, "expired", "expired")
        await refused(app, provider, "bad_iss", "issuer")
        provider.mode = "good"
        async with browser(app) as web:
            forged = await oidc_sign_in(web, state="not-the-state")
            assert forged.status_code == 401 and "state does not match" in forged.text
        async with browser(app) as web:
            callback = await web.get("/oidc/callback", params={"code": "x", "state": "y"})
            assert callback.status_code == 401 and "not started here" in callback.text


async def refused(app: FastAPI, provider: OidcProvider, mode: str, why: str) -> None:
    provider.mode = mode
    async with browser(app) as web:
        answer = await oidc_sign_in(web)
        assert answer.status_code == 401, mode
        assert why.lower() in answer.text.lower(), (mode, answer.text)
        assert "cadenza_inbox=" not in answer.headers.get("set-cookie", ""), mode


async def _never() -> CadenzaClient:
    raise AssertionError("the OIDC test never reaches Temporal")


REMINDED: list[dict[str, Any]] = []


@action("tests.inbox_remind")
async def remind(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """A reminder action that echoes what it got (its result goes into the history)."""
    REMINDED.append(params)
    return {"echo": params}


async def test_reminders_carry_one_sign_in_link_per_approver_but_history_does_not(
    client: Client, registry: ActionRegistry, task_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CADENZA_INBOX_URL", "https://inbox.example")
    monkeypatch.setenv("CADENZA_INBOX_SECRET", SECRET)
    cadenza = CadenzaClient(client, task_queue)
    cadenza.signing_key = ""
    maria, mark = f"maria-{uuid.uuid4().hex[:6]}", f"mark-{uuid.uuid4().hex[:6]}"
    approval = {
        "approvers": [maria, mark],
        "reminder_every": 1,
        "reminder_action": "tests.inbox_remind",
    }
    steps = [{"step_id": "sign_off", "step_type": "approval", "approval": approval}]
    async with running_worker(client, Settings(), registry, task_queue=task_queue):
        handle = await cadenza.start({"workflow_id": "reminded", "timeout": 600, "steps": steps})
        await status_when(
            cadenza,
            handle.id,
            lambda s: any(e.kind == "reminder" for e in s.approvals),
            "a reminder",
        )
        await cadenza.approve(handle.id, "sign_off", maria)
        assert (await cadenza.result(handle.id)).status == WorkflowState.COMPLETED
    sent = next(p for p in REMINDED if maria in p["approvers"])
    links = sent["inbox_links"]
    signer = LinkSigner(SECRET.encode())
    for who in (maria, mark):
        assert links[who].startswith("https://inbox.example/login?token=")
        assert links[who] in sent["message"]
        assert signer.verify(httpx.URL(links[who]).params["token"]) == who
    async for event in handle.fetch_history_events():
        assert b"token=" not in event.SerializeToString(), event


# --- a small real OIDC provider (served by tests.support.servers.serving) ---


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
