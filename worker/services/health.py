"""The worker's health endpoint (`cadenza worker --health-port P`), for Docker and Kubernetes.

- `GET /livez`: 200 while the worker runs (polls its task queue) and Temporal answered a health
  check within the last `stale_after` seconds; 503 otherwise, so an orchestrator restarts a
  worker that is wedged or cut off for good, but not one that misses a check or two.
- `GET /readyz`: 200 while the worker runs and Temporal's last health check succeeded.
- `GET /`: the same facts as JSON.

Served by the worker's own event loop: a loop too busy to answer is itself a failing probe.
Bound to 127.0.0.1 unless `CADENZA_HEALTH_HOST` says otherwise (the Kubernetes manifests set
0.0.0.0 for the kubelet's probes). A client gets `READ_DEADLINE` seconds to send its request
and at most `MAX_CONNECTIONS` are served at once, so slow clients cannot hold the probes.
`bounded_wsgi_server` gives the Prometheus endpoint the same bounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socketserver
import threading
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


READ_DEADLINE = 5.0
"""Seconds a client has to send its whole request (line and headers): a slow client is cut."""
MAX_CONNECTIONS = 64
"""Connections served at once; more are closed at once (each one is cut by READ_DEADLINE)."""
MAX_HEADER_LINES = 100


async def _handle(
    health: Health,
    slots: asyncio.Semaphore,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    if slots.locked():  # full: refuse at once rather than queue behind slow clients
        writer.close()
        return
    async with slots:
        try:
            async with asyncio.timeout(READ_DEADLINE):
                path = await _read_path(reader)
            status, body = _answer(health, path)
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            async with asyncio.timeout(READ_DEADLINE):
                await writer.drain()
        except (TimeoutError, ConnectionError, ValueError):
            pass  # slow, gone, or not HTTP: dropped
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1)


async def _read_path(reader: asyncio.StreamReader) -> str:
    """The request's path; the headers are read (bounded) and ignored."""
    request = await reader.readline()
    for _ in range(MAX_HEADER_LINES):
        if (await reader.readline()) in (b"\r\n", b"\n", b""):
            break
    else:
        raise ValueError("too many header lines")
    parts = request.decode("latin-1").split()
    return parts[1] if len(parts) >= 2 else "/"


def _answer(health: Health, path: str) -> tuple[int, bytes]:
    facts = health.facts()
    if path.startswith("/livez"):
        status = 200 if facts["live"] else 503
    elif path.startswith("/readyz"):
        status = 200 if facts["ready"] else 503
    elif path == "/":
        status = 200
    else:
        status = 404
    return status, json.dumps(facts).encode()


@asynccontextmanager
async def health_server(
    health: Health, port: int, host: str = "127.0.0.1", every: float = 10.0
) -> AsyncIterator[str]:
    """Serve the probes on `host:port` (loopback unless told otherwise: `CADENZA_HEALTH_HOST`)
    and check Temporal every `every` seconds; yields the base URL."""
    slots = asyncio.Semaphore(MAX_CONNECTIONS)
    server = await asyncio.start_server(
        lambda r, w: _handle(health, slots, r, w), host, port, limit=8192
    )
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


def bounded_wsgi_server(app: Any, host: str, port: int, *, timeout: float = READ_DEADLINE) -> Any:
    """A threading WSGI server (the Prometheus endpoint's) that cuts a client silent for
    `timeout` seconds and serves at most MAX_CONNECTIONS at once; started in a daemon thread.
    Returns the server (`shutdown()`, `server_close()`, `server_port`)."""
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    deadline = timeout

    class Handler(WSGIRequestHandler):
        timeout = deadline  # the socket timeout of every read and write

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True
        slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

        def process_request(self, request: Any, client_address: Any) -> None:
            if not self.slots.acquire(blocking=False):
                self.shutdown_request(request)
                return
            super().process_request(request, client_address)

        def process_request_thread(self, request: Any, client_address: Any) -> None:
            try:
                super().process_request_thread(request, client_address)
            finally:
                self.slots.release()

    server = make_server(host, port, app, Server, handler_class=Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="metrics").start()
    return server
