"""A worker session's observability, set up once at the composition root: tracing, the monitor
with its metric readers (OTLP, the Prometheus endpoint), baselines seeded from visibility, and
the alert sinks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from temporalio.client import Client

from activities.alerts import AlertManager, AlertSink, LogSink, OtelEventSink, WebhookSink
from worker.observability.baselines import Baselines, seed_baselines
from worker.observability.monitor import Monitor
from worker.observability.tracing import (
    TelemetryConfigError,
    Tracing,
    install_tracing,
    metric_reader,
)
from worker.settings import Settings

log = logging.getLogger("cadenza.monitor")


@dataclass
class Observability:
    """What a worker session observes with: tracing, the monitor, alerts, metric readers."""

    tracing: Tracing
    monitor: Monitor
    alerts: AlertManager
    meter_provider: MeterProvider
    metrics_address: str | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)


def alert_sinks(settings: Settings, http: httpx.AsyncClient) -> list[AlertSink]:
    """The sinks `settings.alert_sinks` names, plus a webhook whenever `alert_webhook_url` is set
    (a webhook needs the URL; `alert_webhook_token` is sent as a bearer token)."""
    names = list(settings.alert_sinks)
    if settings.alert_webhook_url and "webhook" not in names:
        names.append("webhook")
    sinks: list[AlertSink] = []
    for name in names:
        if name == "log":
            sinks.append(LogSink())
        elif name == "otel":
            sinks.append(OtelEventSink())
        elif name == "webhook":
            if not settings.alert_webhook_url:
                raise TelemetryConfigError(
                    "alert sink 'webhook' needs CADENZA_ALERT_WEBHOOK_URL (the receiver's URL)"
                )
            headers = {}
            if settings.alert_webhook_token:
                token = settings.alert_webhook_token.get_secret_value()
                headers["Authorization"] = f"Bearer {token}"
            url = settings.alert_webhook_url.get_secret_value()
            sinks.append(WebhookSink(url, http, headers=headers))
        else:
            raise TelemetryConfigError(f"unknown alert sink {name!r}: use log, webhook or otel")
    return sinks


@asynccontextmanager
async def observability(
    client: Client, settings: Settings, http: httpx.AsyncClient
) -> AsyncIterator[Observability]:
    """Tracing, the monitor (metrics, baselines), alerts and the Prometheus endpoint, for the
    duration of a worker session."""
    tracing = install_tracing("cadenza-worker")
    alerts = AlertManager(alert_sinks(settings, http))
    readers: list[MetricReader] = []
    server, address = _prometheus(settings, readers)
    otlp = metric_reader()
    if otlp is not None:
        readers.append(otlp)
    meter_provider = MeterProvider(
        metric_readers=readers, resource=Resource.create({"service.name": "cadenza-worker"})
    )
    baselines = Baselines(
        window=settings.baseline_window,
        min_samples=settings.baseline_min_samples,
        factor=settings.anomaly_factor,
        min_excess=settings.anomaly_min_excess_seconds,
    )
    monitor = Monitor(meter_provider, baselines, alerts, asyncio.get_running_loop())
    seen = Observability(tracing, monitor, alerts, meter_provider, address)
    seen.tasks.append(asyncio.create_task(monitor.deliver_alerts()))
    if settings.baseline_seed_runs:
        seen.tasks.append(
            asyncio.create_task(
                _seed_quietly(
                    client, baselines, settings.baseline_seed_runs, settings.baseline_seed_results
                )
            )
        )
    tracing.router.attach(monitor)
    log.info(
        "telemetry: traces %s; metrics %s; alerts to %s",
        f"exported ({tracing.exporting})" if tracing.exporting else "not exported (no OTEL_*)",
        ", ".join(filter(None, [address, "otlp" if otlp else None])) or "not published",
        ", ".join(s.name for s in alerts.sinks) or "nowhere",
    )
    try:
        yield seen
    finally:
        tracing.router.detach(monitor)
        for task in seen.tasks:
            task.cancel()
        await asyncio.gather(*seen.tasks, return_exceptions=True)
        if server is not None:
            server.shutdown()
            server.server_close()
        meter_provider.shutdown()
        tracing.flush()


def _prometheus(settings: Settings, readers: list[MetricReader]) -> tuple[Any, str | None]:
    """The Prometheus endpoint on `--metrics-port` (its server and URL), its reader added to
    `readers`; (None, None) without a port."""
    if settings.metrics_port is None:
        return None, None
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CollectorRegistry, make_wsgi_app

    from worker.services.health import bounded_wsgi_server

    registry = CollectorRegistry()
    readers.append(PrometheusMetricReader(registry=registry))
    # loopback unless CADENZA_METRICS_HOST says otherwise; slow scrapers are cut (5 s)
    server = bounded_wsgi_server(
        make_wsgi_app(registry), settings.metrics_host, settings.metrics_port
    )
    return server, f"http://{settings.metrics_host}:{server.server_port}/metrics"


async def _seed_quietly(client: Client, baselines: Baselines, runs: int, results: int) -> None:
    try:
        count = await asyncio.wait_for(seed_baselines(client, baselines, runs, results), 60)
        log.info("baselines seeded from %d completed runs", count)
    except Exception as exc:
        log.warning("baselines not seeded from visibility: %s", exc)
