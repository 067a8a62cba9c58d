"""Built-in and user actions through the step executor: http, sync actions, output limits."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from worker.client import CadenzaClient
from workflows.dsl.models import WorkflowState


class _Handler(BaseHTTPRequestHandler):
    hits: dict[str, int] = {}

    def do_GET(self) -> None:
        self.hits[self.path] = self.hits.get(self.path, 0) + 1
        status = {"/missing": 404, "/flaky": 500 if self.hits[self.path] < 2 else 200}.get(
            self.path, 200
        )
        body = json.dumps({"path": self.path, "hit": self.hits[self.path]}).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers["content-length"])
        body = self.rfile.read(length)
        self.send_response(201)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_base() -> Iterator[str]:
    _Handler.hits = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def http_step(sid: str, path: str, **mapping: str) -> dict[str, Any]:
    return {
        "step_id": sid,
        "action": "std.http",
        "input_mapping": {"url": f"input.base + '{path}'", **mapping},
        "retry_policy": {"initial_interval": 0.1, "max_attempts": 3},
    }


async def test_std_http_get_post_and_status_handling(
    cadenza: CadenzaClient, worker_factory, http_base: str
) -> None:
    definition = {
        "workflow_id": "http",
        "steps": [
            http_step("get", "/ok"),
            http_step("post", "/echo", method="'POST'", json="{'order': 7}", expect_status="201"),
            http_step("flaky", "/flaky"),
        ],
    }
    async with worker_factory():
        result = await cadenza.result((await cadenza.start(definition, {"base": http_base})).id)
    assert result.status == WorkflowState.COMPLETED, result.error
    assert result.steps["get"].output["status"] == 200
    assert result.steps["get"].output["json"] == {"path": "/ok", "hit": 1}
    assert result.steps["post"].output["json"] == {"order": 7}
    assert result.steps["flaky"].attempts == 2  # the 500 was retried


async def test_std_http_client_error_is_not_retried(
    cadenza: CadenzaClient, worker_factory, http_base: str
) -> None:
    definition = {"workflow_id": "http", "steps": [http_step("missing", "/missing")]}
    async with worker_factory():
        result = await cadenza.result((await cadenza.start(definition, {"base": http_base})).id)
    error = result.steps["missing"].error
    assert result.status == WorkflowState.FAILED
    assert error is not None and error.type == "HttpError" and "404" in error.message
    assert result.steps["missing"].attempts == 1
    assert _Handler.hits["/missing"] == 1


async def test_sync_action_runs_and_oversized_output_fails_clearly(
    cadenza: CadenzaClient, worker_factory
) -> None:
    definition = {
        "workflow_id": "sizes",
        "steps": [
            {"step_id": "small", "action": "test.sync_big", "input_mapping": {"size": "5"}},
            {
                "step_id": "huge",
                "action": "test.sync_big",
                "dependencies": ["small"],
                "input_mapping": {"size": "1100000"},
            },
        ],
    }
    async with worker_factory():
        result = await cadenza.result((await cadenza.start(definition)).id)
    assert result.steps["small"].output == {"text": "xxxxx"}
    error = result.steps["huge"].error
    assert error is not None and error.type == "PayloadTooLarge"
    assert "limit is 1048576" in error.message and result.steps["huge"].attempts == 1
