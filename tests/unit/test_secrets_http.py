"""`std.http` secrets by name: `{"$secret": NAME}` in a header is read from the worker's
`CADENZA_SECRET_NAME` inside the activity, sent, and scrubbed from the output and errors; an
unknown name fails at once naming the variable; a cross-origin redirect does not carry it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from activities.contracts import ErrorType
from activities.egress import EgressPolicy
from activities.http import HttpInput, http
from activities.registry import ActionContext, ActionError
from activities.secrets import SecretResolver
from activities.std import default_registry

TOKEN = "s3cr3t-t0ken-value"


class Echo(BaseHTTPRequestHandler):
    """Answers with the request's headers as JSON, in the status the path asks for; /hop
    redirects to the other origin (`localhost` instead of 127.0.0.1)."""

    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:
        headers = dict(self.headers.items())
        Echo.seen.append(headers)
        if self.path.startswith("/hop"):
            port = self.server.server_address[1]
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{port}/landed")
            self.end_headers()
            return
        status = int(self.path.strip("/").split("/")[0] or 200) if self.path[1:2].isdigit() else 200
        body = json.dumps({"echo": headers, "note": f"you sent {headers.get('X-Api-Key')}"})
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Echo", headers.get("X-Api-Key", ""))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def context() -> ActionContext:
    return ActionContext(
        workflow_id="w",
        step_id="s",
        attempt=1,
        http=None,
        heartbeat=lambda *a: None,
        egress=EgressPolicy.parse("127.0.0.1,localhost"),
    )


def request(url: str, **headers: Any) -> HttpInput:
    return HttpInput.model_validate({"url": url, "headers": headers})


SECRETS = SecretResolver({"CADENZA_SECRET_API_TOKEN": TOKEN})


async def test_a_secret_header_is_sent_and_never_returned(echo: str) -> None:
    Echo.seen.clear()
    params = request(f"{echo}/", **{"X-Api-Key": {"$secret": "API_TOKEN"}})
    out = await http(params, context(), SECRETS)
    assert Echo.seen[-1]["X-Api-Key"] == TOKEN  # the receiver got it
    assert TOKEN not in json.dumps(out)  # the output (headers, body) has it scrubbed
    assert out["json"]["echo"]["X-Api-Key"] == "***" and out["headers"]["x-echo"] == "***"


async def test_a_prefix_goes_before_the_value(echo: str) -> None:
    Echo.seen.clear()
    ref = {"$secret": "API_TOKEN", "prefix": "Bearer "}
    await http(request(f"{echo}/", Authorization=ref), context(), SECRETS)
    assert Echo.seen[-1]["Authorization"] == f"Bearer {TOKEN}"


async def test_an_error_quoting_the_secret_has_it_scrubbed(echo: str) -> None:
    params = request(f"{echo}/403", **{"X-Api-Key": {"$secret": "API_TOKEN"}})
    with pytest.raises(ActionError) as caught:
        await http(params, context(), SECRETS)
    assert caught.value.type == ErrorType.HTTP_ERROR and caught.value.non_retryable
    assert "403" in str(caught.value) and TOKEN not in str(caught.value)


async def test_an_unknown_secret_fails_at_once_naming_the_variable(echo: str) -> None:
    params = request(f"{echo}/", **{"X-Api-Key": {"$secret": "NOPE"}})
    with pytest.raises(ActionError) as caught:
        await http(params, context(), SecretResolver({}))
    assert caught.value.type == ErrorType.INPUT_VALIDATION and caught.value.non_retryable
    assert "CADENZA_SECRET_NOPE" in str(caught.value) and "headers.X-Api-Key" in str(caught.value)


async def test_the_process_environment_is_read_at_the_call(
    echo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CADENZA_SECRET_API_TOKEN", TOKEN)
    Echo.seen.clear()
    await http(request(f"{echo}/", **{"X-Api-Key": {"$secret": "API_TOKEN"}}), context())
    assert Echo.seen[-1]["X-Api-Key"] == TOKEN


async def test_a_cross_origin_redirect_does_not_carry_the_secret(echo: str) -> None:
    Echo.seen.clear()
    params = request(f"{echo}/hop", **{"X-Api-Key": {"$secret": "API_TOKEN"}, "X-Plain": "1"})
    await http(params, context(), SECRETS)
    first, landed = Echo.seen[-2], Echo.seen[-1]
    assert first["X-Api-Key"] == TOKEN
    assert "X-Api-Key" not in landed and landed["X-Plain"] == "1"


def test_secret_names_are_checked_and_the_schema_documents_the_reference() -> None:
    with pytest.raises(ValueError, match="secret"):
        request("http://x", A={"$secret": "lower-case"})
    with pytest.raises(ValueError):
        request("http://x", A={"$secret": "OK", "value": "inline"})
    schema = json.dumps(default_registry().get("std.http").input_schema())
    assert "$secret" in schema and "CADENZA_SECRET_" in schema
