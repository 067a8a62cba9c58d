"""std.http against real local servers: the egress guard (after DNS, on every redirect), the
operator's allow-list, no cookies across runs, the streamed body cap, the whole-request deadline
and credentials kept out of error messages."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest

from activities.contracts import ErrorType
from activities.egress import EgressPolicy, is_public
from activities.http import MAX_BODY_BYTES, HttpInput, http, redact
from activities.registry import ActionContext, ActionError
from tests.support.processes import LOOPBACK_ALLOW
from tests.support.receivers import serving
from worker.settings import Settings

LOOPBACK = EgressPolicy.parse(LOOPBACK_ALLOW)


class Server:
    """What a test server saw, and how much it sent."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.cookies: list[str | None] = []
        self.sent = 0
        self.target = ""  # where /redirect points


def _handler(seen: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, **headers: str) -> None:
            self.send_response(status)
            for name, value in {"Content-Length": str(len(body)), **headers}.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(body)

        def _endless(self, chunk: bytes, pause: float = 0.0) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(300_000_000))
            self.end_headers()
            try:
                while seen.sent < 300_000_000:
                    self.wfile.write(chunk)
                    seen.sent += len(chunk)
                    time.sleep(pause)
            except OSError:  # the client hung up
                pass

        def do_GET(self) -> None:
            seen.paths.append(self.path)
            seen.cookies.append(self.headers.get("Cookie"))
            if self.path == "/set-cookie":
                self._send(200, b"{}", Set_Cookie="session=run-a; Path=/")
            elif self.path == "/redirect":
                self._send(302, b"", Location=seen.target)
            elif self.path == "/loop":
                self._send(302, b"", Location="/loop")
            elif self.path == "/fail":
                self._send(500, b"boom")
            elif self.path == "/huge":
                self._endless(b"x" * 65536)
            elif self.path == "/trickle":
                self._endless(b"x", pause=0.2)
            elif self.path == "/bomb":
                bomb = gzip.compress(b"\0" * 50_000_000)
                self._send(200, bomb, Content_Encoding="gzip", Content_Type="text/plain")
            else:
                self._send(200, b'{"ok": true}', Content_Type="application/json")

        def do_POST(self) -> None:
            seen.paths.append(f"POST {self.path}")
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self._send(303, b"", Location="/after-post")

    return Handler


@pytest.fixture
def server() -> Iterator[tuple[Server, str]]:
    seen = Server()
    with serving(_handler(seen)) as url:
        yield seen, url


@pytest.fixture
async def shared() -> AsyncIterator[httpx.AsyncClient]:
    """The worker's shared client, as the step executor hands it to actions."""
    async with httpx.AsyncClient() as client:
        yield client


def ctx(shared: httpx.AsyncClient, egress: EgressPolicy | None = None) -> ActionContext:
    return ActionContext(
        workflow_id="w",
        step_id="s",
        attempt=1,
        http=shared,
        heartbeat=lambda *a: None,
        egress=egress or EgressPolicy(),
    )


async def call(context: ActionContext, url: str, **params: Any) -> dict[str, Any]:
    # bounded here, so code without a whole-request deadline fails instead of hanging
    return await asyncio.wait_for(http(HttpInput(url=url, **params), context), timeout=20)


async def refused(context: ActionContext, url: str, **params: Any) -> ActionError:
    with pytest.raises(ActionError) as caught:
        await call(context, url, **params)
    return caught.value


async def test_loopback_is_refused_by_default_and_never_reached(
    server: tuple[Server, str], shared: httpx.AsyncClient
) -> None:
    seen, url = server
    for target in (url, url.replace("127.0.0.1", "localhost")):
        error = await refused(ctx(shared), f"{target}/x", method="PUT", headers={"X-A": "1"})
        assert error.type == ErrorType.FORBIDDEN == "Forbidden" and error.non_retryable
        assert "CADENZA_HTTP_ALLOW" in str(error)
    assert seen.paths == []
    assert (await call(ctx(shared, LOOPBACK), f"{url}/x"))["json"] == {"ok": True}


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://100.100.100.200/latest/meta-data/",
        "http://168.63.129.16/machine",
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://0.0.0.0:9/",
        "http://[::1]:9/",
        "http://[::ffff:127.0.0.1]:9/",
        "http://[64:ff9b::7f00:1]:9/",
        "http://2130706433:9/",  # 127.0.0.1 as one number
    ],
)
async def test_private_link_local_and_metadata_addresses_are_refused(
    url: str, shared: httpx.AsyncClient
) -> None:
    assert (await refused(ctx(shared), url)).type == ErrorType.FORBIDDEN


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("169.254.169.254", False),
        ("127.0.0.2", False),
        ("100.64.0.1", False),
        ("224.0.1.1", False),
        ("::", False),
        ("2002:7f00:1::", False),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),  # Teredo
    ],
)
def test_what_counts_as_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def test_the_allow_list_takes_hosts_and_networks_and_refuses_nonsense() -> None:
    policy = EgressPolicy.parse(" Billing.Internal. ,10.20.0.0/16, 127.0.0.1,[::1]")
    assert policy.host_allowed("billing.internal") and not policy.host_allowed("internal")
    assert policy.address_allowed(ipaddress.ip_address("10.20.3.4"))
    assert policy.address_allowed(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert not policy.address_allowed(ipaddress.ip_address("10.21.0.1"))
    for bad in ("http://x", "a b", "*.example.com", "user@host"):
        with pytest.raises(ValueError, match="CADENZA_HTTP_ALLOW"):
            EgressPolicy.parse(bad)
    assert Settings(http_allow="localhost").egress().hosts == {"localhost"}


async def test_every_redirect_is_checked_again(
    server: tuple[Server, str], shared: httpx.AsyncClient
) -> None:
    seen, url = server
    by_name = url.replace("127.0.0.1", "localhost")
    seen.target = f"{url}/secret"  # allowed by name, then sent to an address that is not
    error = await refused(ctx(shared, EgressPolicy.parse("localhost")), f"{by_name}/redirect")
    assert error.type == ErrorType.FORBIDDEN
    assert seen.paths == ["/redirect"]
    seen.target = "http://169.254.169.254/latest/meta-data/"
    error = await refused(ctx(shared, LOOPBACK), f"{url}/redirect")
    assert error.type == ErrorType.FORBIDDEN and "169.254.169.254" in str(error)


async def test_redirects_are_followed_bounded_and_post_becomes_get_after_303(
    server: tuple[Server, str], shared: httpx.AsyncClient
) -> None:
    seen, url = server
    seen.target = "/final"
    assert (await call(ctx(shared, LOOPBACK), f"{url}/redirect"))["json"] == {"ok": True}
    posted = await call(ctx(shared, LOOPBACK), f"{url}/form", method="POST", json={"a": 1})
    assert posted["status"] == 200 and seen.paths[-2:] == ["POST /form", "/after-post"]
    kept = await call(ctx(shared, LOOPBACK), f"{url}/redirect", expect_status=302)
    assert kept["status"] == 302  # a redirect the step expects is its answer
    error = await refused(ctx(shared, LOOPBACK), f"{url}/loop")
    assert error.type == ErrorType.HTTP_ERROR and "more than 10 redirects" in str(error)


async def test_no_cookie_of_one_run_is_sent_on_another_runs_request(
    server: tuple[Server, str], shared: httpx.AsyncClient
) -> None:
    seen, url = server
    await call(ctx(shared, LOOPBACK), f"{url}/set-cookie")  # run A
    await call(ctx(shared, LOOPBACK), f"{url}/other")  # run B, same worker
    assert seen.cookies == [None, None]


async def test_the_body_cap_is_enforced_while_reading(
    server: tuple[Server, str], shared: httpx.AsyncClient
) -> None:
    seen, url = server
    error = await refused(ctx(shared, LOOPBACK), f"{url}/huge", timeout=15)
    assert error.type == ErrorType.PAYLOAD_TOO_LARGE and error.non_retryable
    assert seen.sent < 20 * MAX_BODY_BYTES  # stopped reading, not read 300 MB then refused


async def test_a_compressed_body_is_inflated_no_further_than_the_cap(
    server: tuple[Server, str], shared: httpx.AsyncClient
) -> None:
    started = time.monotonic()
    error = await refused(ctx(shared, LOOPBACK), f"{server[1]}/bomb")
    assert error.type == ErrorType.PAYLOAD_TOO_LARGE
    assert time.monotonic() - started < 5


async def test_timeout_bounds_the_whole_request_not_each_read(
    server: tuple[Server, str], shared: httpx.AsyncClient
) -> None:
    started = time.monotonic()
    error = await refused(ctx(shared, LOOPBACK), f"{server[1]}/trickle", timeout=1)
    assert error.type == ErrorType.TIMEOUT and "timeout of 1 s" in str(error)
    assert time.monotonic() - started < 3


async def test_credentials_in_urls_never_reach_an_error_message(
    server: tuple[Server, str], shared: httpx.AsyncClient
) -> None:
    seen, url = server
    secret_url = url.replace("://", "://alice:s3cret@")
    messages = [
        str(await refused(ctx(shared), f"{secret_url}/x")),  # refused
        str(await refused(ctx(shared, LOOPBACK), f"{secret_url}/fail")),  # 500
        str(await refused(ctx(shared, LOOPBACK), "http://bob:hunter2@127.0.0.1:9/")),  # refused
    ]
    seen.target = "http://carol:pa55@169.254.169.254/"
    messages.append(str(await refused(ctx(shared, LOOPBACK), f"{url}/redirect")))
    for message in messages:
        assert "s3cret" not in message and "hunter2" not in message and "pa55" not in message
        assert "***@" in message
    assert redact("see https://u:p@h/x and http://h/y") == "see https://***@h/x and http://h/y"


def test_the_worker_settings_read_the_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CADENZA_HTTP_ALLOW", "10.0.0.0/8,svc.local")
    policy = Settings().egress()
    assert policy.host_allowed("svc.local") and policy.networks
    monkeypatch.setenv("CADENZA_HTTP_ALLOW", "not a host")
    with pytest.raises(ValueError, match="neither a host name"):
        Settings()
