"""The worker's side servers: loopback by default, and slow clients neither hold them nor keep
another client's probe from answering (health: asyncio; metrics: threads)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from worker.services import health as health_module
from worker.services.health import Health, bounded_wsgi_server, health_server
from worker.settings import Settings


class Fine(Health):
    """Health facts without a Temporal connection: live and ready."""

    def __init__(self) -> None:
        super().__init__(client=None, running=lambda: True)  # type: ignore[arg-type]
        self.last_ok = time.monotonic()

    async def check(self) -> None:
        self.last_ok = time.monotonic()


def test_side_servers_bind_loopback_unless_told() -> None:
    settings = Settings()
    assert settings.health_host == "127.0.0.1" and settings.metrics_host == "127.0.0.1"


async def get(url: str) -> tuple[int, float]:
    started = time.monotonic()
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    writer.close()
    return status, time.monotonic() - started


async def test_slow_clients_do_not_block_livez_and_are_cut(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(health_module, "READ_DEADLINE", 1.0)
    async with health_server(Fine(), 0, every=3600) as url:
        assert url.startswith("http://127.0.0.1:")
        port = int(url.rsplit(":", 1)[1])
        slow = []
        for _ in range(20):  # each sends half a request, then a header line now and then
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /livez HTTP/1.1\r\n")
            await writer.drain()
            slow.append((reader, writer))
        status, took = await get(url)
        assert status == 200 and took < 1.0, took
        # a trickling client is cut at the deadline, not held for ever
        reader, writer = slow[0]
        cut = time.monotonic()

        async def trickle() -> None:
            with contextlib.suppress(ConnectionError):
                while True:
                    writer.write(b"X-Slow: 1\r\n")
                    await writer.drain()
                    await asyncio.sleep(0.3)

        trickler = asyncio.create_task(trickle())
        assert await asyncio.wait_for(reader.read(), 5) == b""
        trickler.cancel()
        assert time.monotonic() - cut < 3
        for _, w in slow:
            w.close()


async def test_connections_past_the_cap_are_refused_and_slots_come_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(health_module, "READ_DEADLINE", 1.0)
    monkeypatch.setattr(health_module, "MAX_CONNECTIONS", 3)
    async with health_server(Fine(), 0, every=3600) as url:
        port = int(url.rsplit(":", 1)[1])
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 2) == b""  # refused, not queued
        writer.close()
        # the holders are cut at the deadline: the probe answers again
        for r, _ in held:
            assert await asyncio.wait_for(r.read(), 5) == b""
        status, _ = await get(url)
        assert status == 200
        for _, w in held:
            w.close()


@pytest.fixture
def metrics() -> Iterator[str]:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"up 1\n"]

    server = bounded_wsgi_server(app, "127.0.0.1", 0, timeout=1.0)
    yield f"http://127.0.0.1:{server.server_port}/metrics"
    server.shutdown()
    server.server_close()


def test_slow_scrapers_do_not_hold_the_metrics_endpoint(metrics: str) -> None:
    port = int(metrics.split(":")[2].split("/")[0])
    slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
    for s in slow:
        s.sendall(b"GET /metrics HTTP/1.1\r\n")  # and nothing more
    started = time.monotonic()
    with urllib.request.urlopen(metrics, timeout=5) as answer:
        assert answer.read() == b"up 1\n"
    assert time.monotonic() - started < 1.0
    slow[0].settimeout(5)
    cut = time.monotonic()
    try:  # the server closes it after its timeout
        assert slow[0].recv(1024) == b""
    except ConnectionResetError:
        pass
    assert time.monotonic() - cut < 4
    for s in slow:
        s.close()
