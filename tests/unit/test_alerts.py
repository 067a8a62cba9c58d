"""Alert sinks from settings: the webhook gets its bearer token however it was asked for."""

from __future__ import annotations

import httpx
import pytest

from activities.alerts import LogSink, WebhookSink
from worker.observability.setup import alert_sinks
from worker.observability.tracing import TelemetryConfigError
from worker.settings import Settings


@pytest.mark.parametrize("named", [["log"], ["log", "webhook"]])
def test_a_webhook_url_adds_one_webhook_with_its_token(named: list[str]) -> None:
    settings = Settings(
        alert_sinks=named, alert_webhook_url="http://alerts.local/x", alert_webhook_token="t0k"
    )
    sinks = alert_sinks(settings, httpx.AsyncClient())
    assert isinstance(sinks[0], LogSink)
    webhooks = [s for s in sinks if isinstance(s, WebhookSink)]
    assert len(webhooks) == 1 and webhooks[0].headers == {"Authorization": "Bearer t0k"}


def test_a_webhook_without_url_or_an_unknown_sink_is_refused() -> None:
    with pytest.raises(TelemetryConfigError, match="needs CADENZA_ALERT_WEBHOOK_URL"):
        alert_sinks(Settings(alert_sinks=["webhook"]), httpx.AsyncClient())
    with pytest.raises(TelemetryConfigError, match="unknown alert sink 'pager'"):
        alert_sinks(Settings(alert_sinks=["pager"]), httpx.AsyncClient())
