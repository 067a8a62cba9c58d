"""The worker's health endpoint (`cadenza worker --health-port P`), for Docker and Kubernetes.

- `GET /livez`: 200 while the worker runs (polls its task queue) and Temporal answered a health
  check within the last `stale_after` seconds; 503 otherwise, so an orchestrator restarts a
  worker that is wedged or cut off for good, but not one that misses a check or two.
- `GET /readyz`: 200 while the worker runs and Temporal's last health check succeeded.
- `GET /`: the same facts as JSON.

Served by the worker's own event loop: a loop too busy to answer is itself a failing probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from temporalio.client import Client

log = logging.getLogger("cadenza.health")


class Health:
    """What the probes report; `check` refreshes the Temporal side."""

    def __init__(
        self, client: Client, running: Callable[[], bool], stale_after: float = 60.0
    ) -> None:
        self.client = client
        self.running = running
        self.stale_after = stale_after
        self.last_ok: float | None = None
        self.last_error: str | None = None

    async def check(self) -> None:
        try:
            ok = await asyncio.wait_for(self.client.service_client.check_health(), timeout=5)
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            return
        if ok:
            self.last_ok = time.monotonic()
            self.last_error = None
        else:
            self.last_error = "Temporal reports itself not serving"

    def facts(self) -> dict[str, Any]:
        age = None if self.last_ok is None else round(time.monotonic() - self.last_ok, 1)
        polling = self.running()
        connected = self.last_error is None and self.last_ok is not None
        return {
            "polling": polling,
            "temporal_connected": connected,
            "seconds_since_temporal_ok": age,
            "last_error": self.last_error,
            "live": polling and age is not None and age <= self.stale_after,
            "ready": polling and connected,
        }


async def _handle(
    health: Health, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        request = await asyncio.wait_for(reader.readline(), timeout=5)
        while (await asyncio.wait_for(reader.readline(), timeout=5)) not in (b"\r\n", b"\n", b""):
            pass  # headers: not needed
        parts = request.decode("latin-1").split()
        path = parts[1] if len(parts) >= 2 else "/"
        facts = health.facts()
        if path.startswith("/livez"):
            status = 200 if facts["live"] else 503
        elif path.startswith("/readyz"):
            status = 200 if facts["ready"] else 503
        elif path == "/":
            status = 200
        else:
            status = 404
        body = json.dumps(facts).encode()
        reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


@asynccontextmanager
async def health_server(
    health: Health, port: int, host: str = "0.0.0.0", every: float = 10.0
) -> AsyncIterator[str]:
    """Serve the probes on `host:port` and check Temporal every `every` seconds; yields the
    base URL."""
    server = await asyncio.start_server(lambda r, w: _handle(health, r, w), host, port)
    bound = server.sockets[0].getsockname()[1]

    async def keep_checking() -> None:
        while True:
            await health.check()
            await asyncio.sleep(every)

    checker = asyncio.create_task(keep_checking())
    url = f"http://{host}:{bound}"
    log.info("health probes on %s/livez and %s/readyz", url, url)
    try:
        yield url
    finally:
        checker.cancel()
        server.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()
        with contextlib.suppress(asyncio.CancelledError):
            await checker
