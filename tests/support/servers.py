"""Servers tests start: an embedded Temporal server with its data in a file, for tests that restart
it (what a run must survive: its worker gone, the server stopped and started again on the same
data), and any ASGI app (the inbox, a test's OIDC provider) under uvicorn on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from temporalio.client import Client

from worker.client import connect
from worker.services.dev_server import EmbeddedServer, ServerConfig, free_port
from worker.wiring import ensure_search_attributes


class FileServer:
    """`start`ed by `file_server`; `restart` stops it (its workers lose it too) and starts it
    again on the same database file."""

    def __init__(self, folder: Path) -> None:
        self.config = ServerConfig(port=free_port(), headless=True, db_path=folder / "temporal.db")
        self._log = folder / "server.log"
        self._server = EmbeddedServer(self.config, log_path=self._log)

    async def client(self) -> Client:
        """A client of the server, once it answers (a server just started may not yet), with
        cadenza's search attributes registered."""
        client = await connect(wait=30, address=self.config.address)
        await ensure_search_attributes(client)
        return client

    def restart(self) -> None:
        self._server.stop()
        self._server = EmbeddedServer(self.config, log_path=self._log)
        self._server.start()

    def stop(self) -> None:
        self._server.stop()


@contextmanager
def file_server(folder: Path) -> Iterator[FileServer]:
    server = FileServer(folder)
    server._server.start()
    try:
        yield server
    finally:
        server.stop()


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve the ASGI `app` with uvicorn on 127.0.0.1 and a free port; its base URL."""
    import uvicorn  # the inbox's server: only the tests that serve an app load it

    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = asyncio.get_running_loop().time() + 20
    while not server.started:
        if task.done():
            task.result()
        assert asyncio.get_running_loop().time() < deadline, "uvicorn did not start"
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
