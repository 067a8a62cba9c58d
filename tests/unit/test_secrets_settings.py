"""Secrets of the worker's settings and of the alert webhook never show: not in `repr`, `str` or
JSON of the settings, not in the alert activity's result, its errors or its log lines."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from activities.alerts import AlertActivities, AlertDeliveryFailed, AlertManager, WebhookSink
from activities.contracts import AlertInput
from worker.observability.setup import alert_sinks
from worker.settings import Settings

HOOK = "https://hooks.example.com/services/T0SECRETPATH/B0SECRETPATH/XoXoSeCrEtToKeN"
SECRETS = {
    "alert_webhook_url": HOOK,
    "alert_webhook_token": "tok-very-secret-1",
    "approval_signing_key": "ops:c2lnbmluZy1rZXktdmVyeS1zZWNyZXQ=",
    "openai_api_key": "sk-very-secret-2",
}
PIECES = [
    "T0SECRETPATH",
    "B0SECRETPATH",
    "XoXoSeCrEtToKeN",
    "tok-very-secret-1",
    "sk-very",
    "c2lnbmluZy1rZXk",
]


def shows_a_secret(text: str) -> list[str]:
    return [p for p in PIECES if p in text]


def test_settings_never_show_a_configured_secret() -> None:
    settings = Settings(**SECRETS)
    for shown in (repr(settings), str(settings), settings.model_dump_json(), f"{settings!r}"):
        assert not shows_a_secret(shown), shown
    assert not shows_a_secret(repr(settings.model_dump()))
    # ...and the code that needs one asks for it
    assert settings.alert_webhook_url is not None
    assert settings.alert_webhook_url.get_secret_value() == HOOK


def test_secrets_come_from_the_environment_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CADENZA_ALERT_WEBHOOK_TOKEN", "tok-very-secret-1")
    monkeypatch.setenv("CADENZA_OPENAI_API_KEY", "sk-very-secret-2")
    settings = Settings()
    assert not shows_a_secret(repr(settings) + settings.model_dump_json())
    assert settings.openai_api_key is not None
    assert settings.openai_api_key.get_secret_value() == "sk-very-secret-2"


def alert() -> AlertInput:
    return AlertInput(
        rule="run.failed", execution_id="e1", workflow_id="w", message="m", at="2026-01-01"
    )


async def deliver(handler: Any, caplog: pytest.LogCaptureFixture) -> tuple[str, str]:
    """The alert activity's result (or error) and the log, with a receiver answering `handler`."""
    settings = Settings(alert_webhook_url=HOOK, alert_webhook_token="tok-very-secret-1")
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        sinks = alert_sinks(settings, http)
        for sink in sinks:
            if isinstance(sink, WebhookSink):
                sink.backoff = 0.0
        activities = AlertActivities(AlertManager(sinks))
        with caplog.at_level(logging.DEBUG):
            try:
                outcome = repr(await activities.alert(alert()))
            except AlertDeliveryFailed as exc:
                outcome = f"{type(exc).__name__}: {exc}"
    return outcome, caplog.text


async def test_the_alert_result_names_the_webhook_not_its_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcome, logged = await deliver(lambda request: httpx.Response(200), caplog)
    assert "webhook" in outcome
    assert not shows_a_secret(outcome + logged), outcome + logged


@pytest.mark.parametrize("status", [403, 503])
async def test_a_refusal_or_failure_of_the_webhook_names_no_secret(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    outcome, logged = await deliver(lambda request: httpx.Response(status), caplog)
    assert not shows_a_secret(outcome + logged), outcome + logged
    if status == 503:
        assert "AlertDeliveryFailed" in outcome and "CADENZA_ALERT_WEBHOOK_URL" in outcome


async def test_a_connection_error_quoting_the_url_is_scrubbed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url} (token in path)", request=request)

    outcome, logged = await deliver(refuse, caplog)
    assert "ConnectError" in outcome
    assert not shows_a_secret(outcome + logged), outcome + logged
