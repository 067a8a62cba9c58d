"""The approval inbox in a real browser (Debian's headless Chromium through Playwright) against
a real inbox (uvicorn on loopback), the session's Temporal server and a real worker that trusts
only signed decisions: sign in by link, see the waiting approval, approve it with a comment by
keyboard, the run completes; a second approver sees it gone; a rejection fails the run. The
screenshots in docs/images/ are taken here."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from temporalio.client import Client

from activities.registry import ActionRegistry
from tests.support.flows import status_when
from tests.support.servers import serving
from worker.approval_keys import new_pair
from worker.client import CadenzaClient
from worker.inbox.app import create_app
from worker.inbox.links import LinkSigner
from worker.inbox.settings import InboxSettings
from worker.settings import Settings
from worker.wiring import running_worker
from workflows.contracts import StepStatus, WorkflowState

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
SECRET = "browser-test-secret-" + "s" * 32
SIGNING, TRUSTED = new_pair("inbox")


def expense(ada: str, bo: str) -> dict[str, Any]:
    return {
        "workflow_id": "expense-approval",
        "name": "Expense approval",
        "timeout": 600,
        "steps": [
            {
                "step_id": "manager_approval",
                "name": "Manager approval",
                "step_type": "approval",
                "timeout": 3600,
                "input_mapping": {"employee": "input.employee", "amount": "input.amount"},
                "approval": {"approvers": [ada, bo], "required_approvals": 1},
            },
            {"step_id": "pay", "action": "std.echo", "dependencies": ["manager_approval"]},
        ],
    }


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium with `apt-get install -y "
            "chromium` (.ci/run does it in CI); Playwright's own browser download is not used"
        )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        await browser.close()


async def signed_in(browser: Browser, base: str, who: str, width: int = 1000) -> Page:
    context = await browser.new_context(viewport={"width": width, "height": 800})
    page = await context.new_page()
    await page.goto(LinkSigner(SECRET.encode()).url(base, who, 600))
    await expect(page.get_by_text(f"Signed in as {who}")).to_be_visible()
    return page


async def until_listed(page: Page, step_name: str) -> None:
    """Reload the inbox until the approval shows (visibility is eventually consistent)."""
    link = page.get_by_role("link", name=step_name)
    for _ in range(100):
        if await link.count():
            return
        await page.wait_for_timeout(100)
        await page.reload()
    raise AssertionError(f"{step_name} never listed: {await page.content()}")


async def test_approve_and_reject_in_the_browser(
    client: Client, registry: ActionRegistry, task_queue: str, browser: Browser
) -> None:
    ada, bo = f"ada-{uuid.uuid4().hex[:6]}", f"bo-{uuid.uuid4().hex[:6]}"
    cadenza = CadenzaClient(client, task_queue)
    cadenza.signing_key = ""  # the test itself only reads; decisions come from the inbox

    async def connect() -> CadenzaClient:
        return CadenzaClient(client, task_queue)

    settings = InboxSettings(
        inbox_secret=SECRET, approval_signing_key=SIGNING, task_queue=task_queue
    )
    worker_settings = Settings(approval_keys=TRUSTED)
    async with running_worker(client, worker_settings, registry, task_queue=task_queue):
        app = create_app(settings, connect, secret=SECRET.encode(), public_url="http://inbox")
        async with serving(app) as base:
            run_id = await started(cadenza, expense(ada, bo), {"employee": "Ines", "amount": 120})
            page = await signed_in(browser, base, ada)
            await until_listed(page, "Manager approval")
            await expect(page.get_by_text("Expense approval v1.0")).to_be_visible()
            IMAGES.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=IMAGES / "inbox.png", full_page=True)

            await page.get_by_role("link", name="Manager approval").click()
            await expect(
                page.get_by_role("heading", name="Decide: Manager approval")
            ).to_be_visible()
            await expect(page.get_by_text("Ines", exact=True)).to_be_visible()
            comment = page.get_by_label("Comment")
            await comment.fill("within the travel budget")
            await page.set_viewport_size({"width": 390, "height": 844})  # a phone
            await page.screenshot(path=IMAGES / "decision.png", full_page=True)
            await comment.focus()
            await page.keyboard.press("Tab")  # the Approve button, by keyboard
            await expect(page.get_by_role("button", name="Approve")).to_be_focused()
            await page.keyboard.press("Enter")
            await expect(page.get_by_text("The step is approved")).to_be_visible()

            result = await cadenza.result(run_id)
            assert result.status == WorkflowState.COMPLETED
            decided = [e for e in result.approvals if e.kind == "approve"]
            assert [(e.by, e.detail, e.verified_key) for e in decided] == [
                (ada, "within the travel budget", "inbox")
            ]

            other = await signed_in(browser, base, bo)
            await expect(other.get_by_text("Nothing waits for your decision")).to_be_visible()
            await other.goto(f"{base}/approvals/{run_id}/manager_approval")
            await expect(other.get_by_text("This run has ended")).to_be_visible()
            await other.goto(f"{base}/history")
            await expect(other.get_by_text("You have not decided")).to_be_visible()

            rejected_id = await started(cadenza, expense(ada, bo), {"employee": "Raf", "amount": 9})
            await other.goto(base)
            await until_listed(other, "Manager approval")
            await other.get_by_role("link", name="Manager approval").click()
            await other.get_by_label("Comment").fill("no receipt")
            await other.get_by_role("button", name="Reject").click()
            await expect(other.get_by_text("The step is rejected")).to_be_visible()
            failed = await cadenza.result(rejected_id)
            assert failed.status == WorkflowState.FAILED
            assert failed.error is not None and "no receipt" in failed.error.message

            await page.goto(f"{base}/history")
            await expect(page.get_by_role("cell", name="within the travel budget")).to_be_visible()


async def started(cadenza: CadenzaClient, definition: dict[str, Any], data: Any) -> str:
    run_id = (await cadenza.start(definition, data)).id
    await status_when(
        cadenza,
        run_id,
        lambda s: (
            "manager_approval" in s.steps
            and s.steps["manager_approval"].status == StepStatus.WAITING
        ),
        "waiting for approval",
    )
    return run_id
