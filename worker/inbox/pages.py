"""The inbox's pages for people: sign-in (link, OIDC), the inbox, a decision page, the history,
sign-out. Every form carries the session's CSRF token; every refusal is a page in plain words."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from worker.inbox.auth import Session, csrf_ok
from worker.inbox.context import Inbox
from worker.inbox.links import LinkInvalid
from worker.inbox.oidc import OidcFailed, Pending
from worker.inbox.queries import Refused

TEMPLATES = Path(__file__).parent / "templates"
MAX_FORM_BYTES = 16_384


def _when(value: str | None) -> str:
    if not value:
        return ""
    try:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return value


def _pretty(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True)
    )
    env.filters["when"] = _when
    env.filters["pretty"] = _pretty
    return env


class Pages:
    """Renders templates with what every page needs (the session, the root)."""

    def __init__(self) -> None:
        self.env = environment()

    def render(
        self, name: str, session: Session | None, status: int = 200, **values: Any
    ) -> HTMLResponse:
        page = self.env.get_template(name).render(session=session, root="", **values)
        return HTMLResponse(page, status_code=status)

    def message(
        self,
        session: Session | None,
        title: str,
        message: str,
        status: int,
        kind: str = "error",
        back: str | None = "/",
        back_label: str = "Back to your inbox",
    ) -> HTMLResponse:
        return self.render(
            "message.html",
            session,
            status,
            title=title,
            message=message,
            kind=kind,
            back=back,
            back_label=back_label,
        )


def routes(inbox: Inbox) -> APIRouter:  # long: one closure per page, sharing `inbox` and `pages`
    router = APIRouter(include_in_schema=False)
    pages = Pages()

    def to_login() -> Response:
        return RedirectResponse("/login", status_code=303)

    @router.get("/")
    async def home(request: Request) -> Response:
        session = inbox.sessions.current(request)
        if session is None:
            return to_login()
        approvals = await inbox.queries.waiting_for(session.approver)
        return pages.render("inbox.html", session, title="Inbox", approvals=approvals)

    @router.get("/login")
    async def login(request: Request, token: str | None = None) -> Response:
        if token is None:
            return pages.render(
                "login.html", None, title="Sign in", oidc=inbox.oidc is not None, problem=None
            )
        try:
            approver = inbox.links.verify(token)
        except LinkInvalid as exc:
            return pages.render(
                "login.html",
                None,
                401,
                title="Sign in",
                oidc=inbox.oidc is not None,
                problem=str(exc),
            )
        response = RedirectResponse("/", status_code=303)
        inbox.sessions.sign_in(response, approver, "link")
        return response

    @router.get("/oidc/start")
    async def oidc_start() -> Response:
        if inbox.oidc is None:
            return pages.message(None, "Sign in", "This inbox has no OIDC sign-in.", 404, back=None)
        pending = inbox.oidc.begin()
        try:
            url = await inbox.oidc.authorization_url(pending)
        except OidcFailed as exc:
            return pages.message(
                None, "Sign-in failed", str(exc), 502, back="/login", back_label="Back to sign-in"
            )
        response = RedirectResponse(url, status_code=303)
        inbox.sessions.begin_oidc(response, pending.state, pending.nonce, pending.verifier)
        return response

    @router.get("/oidc/callback")
    async def oidc_callback(
        request: Request, code: str | None = None, state: str | None = None
    ) -> Response:
        kept = inbox.sessions.oidc_pending(request)
        problem = None
        if inbox.oidc is None:
            problem = "This inbox has no OIDC sign-in."
        elif kept is None or not state or not code or len(code) > 4096:
            problem = "The sign-in was not started here, or took too long: start again."
        elif not csrf_ok(Session("", kept["state"], ""), state):
            problem = "The sign-in's state does not match: start again."
        if problem is not None or inbox.oidc is None or kept is None or code is None:
            return pages.message(
                None,
                "Sign-in failed",
                problem or "",
                401,
                back="/login",
                back_label="Back to sign-in",
            )
        try:
            approver = await inbox.oidc.finish(code, Pending(**kept))
        except OidcFailed as exc:
            return pages.message(
                None, "Sign-in failed", str(exc), 401, back="/login", back_label="Back to sign-in"
            )
        response = RedirectResponse("/", status_code=303)
        inbox.sessions.end_oidc(response)
        inbox.sessions.sign_in(response, approver, "oidc")
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        session = inbox.sessions.current(request)
        form = await _form(request)
        if session is not None and (form is None or not csrf_ok(session, _field(form, "csrf"))):
            return pages.message(session, "Not signed out", CSRF_REFUSAL, 403)
        response = to_login()
        inbox.sessions.sign_out(response)
        return response

    @router.get("/approvals/{run}/{step}")
    async def decision_page(request: Request, run: str, step: str) -> Response:
        session = inbox.sessions.current(request)
        if session is None:
            return to_login()
        try:
            approval = await inbox.queries.waiting_one(session.approver, run, step)
        except Refused as refused:
            return pages.message(session, "Nothing to decide", refused.message, refused.status)
        return pages.render("decision.html", session, title=f"Decide {step}", a=approval)

    @router.post("/approvals/{run}/{step}")
    async def decide(request: Request, run: str, step: str) -> Response:
        session = inbox.sessions.current(request)
        if session is None:
            return pages.message(
                None,
                "Signed out",
                "Sign in again to decide.",
                401,
                back="/login",
                back_label="Sign in",
            )
        form = await _form(request)
        if form is None or not csrf_ok(session, _field(form, "csrf")):
            return pages.message(session, "Not sent", CSRF_REFUSAL, 403)
        decision, comment = _field(form, "decision"), _field(form, "comment") or ""
        if decision not in ("approve", "reject") or len(comment) > 2000:
            return pages.message(
                session,
                "Not sent",
                "Choose Approve or Reject; a comment has at most 2000 characters.",
                400,
            )
        try:
            done = await inbox.queries.decide(session.approver, run, step, decision, comment)
        except Refused as refused:
            return pages.message(session, "Not accepted", refused.message, refused.status)
        verb = "approved" if decision == "approve" else "rejected"
        stands = {
            "pending": f"It now has {done.approvals} of {done.required} approvals and waits "
            "for more.",
            "approved": "The step is approved: the run goes on.",
            "rejected": "The step is rejected: the run handles the rejection.",
        }[done.outcome]
        return pages.message(
            session, "Decision sent", f"You {verb} {step} of {run}. {stands}", 200, kind="done"
        )

    @router.get("/history")
    async def history(request: Request) -> Response:
        session = inbox.sessions.current(request)
        if session is None:
            return to_login()
        decisions = await inbox.queries.history_of(session.approver)
        return pages.render("history.html", session, title="History", decisions=decisions)

    return router


CSRF_REFUSAL = (
    "This form is out of date or did not come from this inbox (its security token does not "
    "match your session). Reload the page and try again."
)


async def _form(request: Request) -> FormData | None:
    try:
        if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
            return None
        return await request.form(max_files=0, max_fields=20)
    except Exception:  # a malformed body: refused like a missing token
        return None


def _field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None
