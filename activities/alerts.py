"""Alerts: the sinks an alert goes to, and the `cadenza.alert` activity that runs hand them to.

The `AlertManager` de-duplicates per run and rule (`AlertInput.key`): an SLA breach alerted by an
activity that is retried, or an anomaly seen again when a run replays, reaches each sink once.
A sink that fails raises, so the activity is retried by Temporal; sinks that already took the
alert are not sent it again. Sinks are configured on the worker (worker/settings.py):

- `log`: a WARNING line on the `cadenza.alerts` logger;
- `webhook`: an HTTP POST of the alert as JSON (httpx), retried on connection errors and 5xx,
  with an `Idempotency-Key` header (the alert's key) so a receiver can drop repeats. Its URL
  (often with a secret in its path) and token stay in the worker's settings: results, errors
  and logs name it "the alert webhook", never the URL;
- `otel`: a `cadenza.alert` span with an `alert` event, exported with the worker's traces.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

import httpx
from opentelemetry import trace
from temporalio import activity

from activities.contracts import ALERT_ACTIVITY, AlertInput
from cadenza.errors import CadenzaError

log = logging.getLogger("cadenza.alerts")

WEBHOOK = "the alert webhook (CADENZA_ALERT_WEBHOOK_URL)"
"""How results, errors and logs name the webhook: its URL is a secret and stays in settings."""


class AlertSink(Protocol):
    name: str

    async def send(self, alert: AlertInput) -> None: ...


class LogSink:
    name = "log"

    async def send(self, alert: AlertInput) -> None:
        log.warning("ALERT %s [%s] %s", alert.rule, alert.key, alert.message)


class WebhookSink:
    """POSTs each alert as JSON to `url`; retried `attempts` times with backoff."""

    def __init__(
        self,
        url: str,
        http: httpx.AsyncClient,
        *,
        headers: dict[str, str] | None = None,
        attempts: int = 3,
        backoff: float = 0.5,
    ) -> None:
        self.name = "webhook"  # never the URL: names go into results, history and logs
        self.url = url
        self.http = http
        self.headers = headers or {}
        self.attempts = attempts
        self.backoff = backoff
        _SCRUBBING.sinks.add(self)  # httpx logs every request's URL at INFO: not this one's

    async def send(self, alert: AlertInput) -> None:
        headers = {**self.headers, "Idempotency-Key": alert.key}
        problem = ""
        for attempt in range(1, self.attempts + 1):
            try:
                response = await self.http.post(
                    self.url, json=alert.model_dump(mode="json"), headers=headers
                )
                if response.status_code < 500:
                    if response.status_code >= 400:
                        # the receiver refuses it: retrying would not help
                        log.error(
                            "%s refused %s: HTTP %s", WEBHOOK, alert.key, response.status_code
                        )
                    return
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = self.scrub(f"{type(exc).__name__}: {exc}")
            if attempt < self.attempts:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
        raise AlertDeliveryFailed(f"{WEBHOOK}: {problem}")

    def scrub(self, text: str) -> str:
        """`text` without the webhook's URL or any part of it past the host (its path may be
        the receiver's secret, as Slack's and many others' are)."""
        parsed = httpx.URL(self.url)
        secrets = [self.url, str(parsed), parsed.raw_path.decode("ascii", "replace")]
        secrets += [p for p in parsed.path.split("/") if len(p) >= 8]
        secrets += [v for v in self.headers.values() if v]
        for secret in sorted({s for s in secrets if s and s != "/"}, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


class _Scrubbing(logging.Filter):
    """Rewrites httpx's log records that would show a webhook's URL."""

    def __init__(self) -> None:
        super().__init__()
        self.sinks: weakref.WeakSet[WebhookSink] = weakref.WeakSet()

    def filter(self, record: logging.LogRecord) -> bool:
        for sink in list(self.sinks):
            text = record.getMessage()
            scrubbed = sink.scrub(text)
            if scrubbed != text:
                record.msg, record.args = scrubbed, None
        return True


_SCRUBBING = _Scrubbing()
logging.getLogger("httpx").addFilter(_SCRUBBING)


class OtelEventSink:
    """A `cadenza.alert` span carrying an `alert` event with the alert's fields."""

    name = "otel"

    async def send(self, alert: AlertInput) -> None:
        attributes = {
            f"cadenza.alert.{k}": v
            for k, v in alert.model_dump(mode="json").items()
            if v is not None
        }
        tracer = trace.get_tracer("cadenza")
        with tracer.start_as_current_span("cadenza.alert", attributes=attributes) as span:
            span.add_event("alert", attributes=attributes)


class AlertDeliveryFailed(CadenzaError):
    """A sink could not deliver an alert (the activity is retried).

    Check the sink's address and credentials; the message names the sink.
    """


class AlertManager:
    """Sends each alert once to every sink. Thread-safe; remembers the last `remember` keys."""

    def __init__(self, sinks: Sequence[AlertSink], remember: int = 50_000) -> None:
        self.sinks = list(sinks)
        self.remember = remember
        self._delivered: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = threading.Lock()
        self.raised = 0
        """Alerts handed to the sinks (after de-duplication)."""

    async def raise_alert(self, alert: AlertInput) -> bool:
        """Deliver `alert` to each sink that has not had it yet; False if all had it already.

        Raises:
            AlertDeliveryFailed: a sink failed (the others still got the alert).
        """
        pending = [s for s in self.sinks if not self._seen((alert.key, s.name))]
        if not pending:
            return False
        failures: list[str] = []
        for sink in pending:
            try:
                await sink.send(alert)
            except Exception as exc:
                failures.append(f"{sink.name}: {exc}")
                continue
            self._remember((alert.key, sink.name))
        if len(failures) < len(pending):
            with self._lock:
                self.raised += 1
        if failures:
            raise AlertDeliveryFailed("; ".join(failures))
        return True

    def _seen(self, key: tuple[str, str]) -> bool:
        with self._lock:
            return key in self._delivered

    def _remember(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._delivered[key] = None
            while len(self._delivered) > self.remember:
                self._delivered.popitem(last=False)


class AlertActivities:
    """The `cadenza.alert` activity: runs hand SLA breaches to the worker's alert manager."""

    def __init__(self, manager: AlertManager) -> None:
        self.manager = manager

    @activity.defn(name=ALERT_ACTIVITY)
    async def alert(self, alert: AlertInput) -> dict[str, Any]:
        delivered = await self.manager.raise_alert(alert)
        return {"delivered": delivered, "sinks": [s.name for s in self.manager.sinks]}
