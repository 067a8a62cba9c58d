"""`std.http`: one HTTP request of a step, guarded, bounded and isolated.

- Where: only addresses the worker's egress policy allows (`activities/egress.py`: no private,
  loopback, link-local or metadata addresses unless `CADENZA_HTTP_ALLOW` lists them), checked
  at every connection, so on every redirect too (redirects are followed here, at most 10).
- Isolation: a client per request, so no cookie or connection of one run reaches another.
- Size: the body is read as it streams (and decompressed with a bound); past 1 MiB the step
  fails with PayloadTooLarge without reading further.
- Time: `timeout` bounds the whole request (connect, redirects, body), not each read.
- Credentials written in a URL (`user:pass@`) never appear in an error message.
- Secrets by name: a header value `{"$secret": "API_TOKEN", "prefix": "Bearer "}` is read from
  the worker's `CADENZA_SECRET_API_TOKEN` here, at the request (activities/secrets.py); the
  value is scrubbed (`***`) from the step's output and errors. An unknown name fails the step
  at once (InputValidationError) naming the variable to set.
"""

from __future__ import annotations

import asyncio
import json
import re
import zlib
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from activities.contracts import ErrorType
from activities.egress import EgressPolicy, EgressRefused, GuardedTransport
from activities.registry import ActionContext, ActionError
from activities.secrets import Resolved, SecretRef, SecretResolver

MAX_BODY_BYTES = 1_048_576
MAX_REDIRECTS = 10
REDIRECTS = (301, 302, 303, 307, 308)
_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/?#@\s]*@")


def redact(text: str) -> str:
    """`text` with the credentials of every URL in it replaced by `***`."""
    return _CREDENTIALS.sub(r"\1***@", text)


class HttpInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    url: str = Field(pattern=r"^https?://", description="Absolute http(s) URL.")
    headers: dict[str, str | SecretRef] = Field(
        default_factory=dict,
        description="Request headers; a value may name a secret of the worker's environment: "
        '{"$secret": "API_TOKEN", "prefix": "Bearer "} reads CADENZA_SECRET_API_TOKEN.',
    )
    json_body: Any = Field(None, alias="json", description="JSON body to send.")
    timeout: float = Field(30, gt=0, le=3600, description="Seconds for the whole request.")
    expect_status: int | list[int] | None = Field(
        None, description="Accepted status codes; absent: any 2xx."
    )

    def accepts(self, status: int, *, explicitly: bool = False) -> bool:
        if self.expect_status is None:
            return not explicitly and 200 <= status < 300
        codes = self.expect_status
        return status in (codes if isinstance(codes, list) else [codes])


async def http(
    params: HttpInput, ctx: ActionContext, secrets: SecretResolver | None = None
) -> dict[str, Any]:
    """Make an HTTP request; a 5xx or a network error retries, an unexpected 4xx does not.
    Secrets the headers name are resolved here and scrubbed from the output and errors."""
    resolved = Resolved()
    headers = (secrets or SecretResolver()).resolve_map(params.headers, "headers", resolved)
    try:
        out = await _request(params, ctx, headers)
    except ActionError as exc:
        if not resolved.values:
            raise
        raise ActionError(
            resolved.scrub(str(exc)), type=exc.type, non_retryable=exc.non_retryable
        ) from None
    except Exception as exc:
        if not resolved.values:
            raise
        raise ActionError(
            resolved.scrub(f"{type(exc).__name__}: {exc}"), type=ErrorType.HTTP_ERROR
        ) from None
    return resolved.scrub(out)  # type: ignore[no-any-return]


async def _request(
    params: HttpInput, ctx: ActionContext, headers: dict[str, str]
) -> dict[str, Any]:
    target = redact(f"{params.method} {params.url}")
    try:
        async with asyncio.timeout(params.timeout), _client(ctx.egress, params.timeout) as client:
            response, body = await _exchange(client, params, headers)
    except TimeoutError:
        raise ActionError(
            f"{target} took longer than its timeout of {params.timeout:g} s",
            type=ErrorType.TIMEOUT,
        ) from None
    except EgressRefused as exc:
        raise ActionError(
            redact(f"{target} refused: {exc}"), type=ErrorType.FORBIDDEN, non_retryable=True
        ) from None
    except httpx.TimeoutException as exc:
        raise ActionError(redact(f"{target} timed out: {exc}"), type=ErrorType.TIMEOUT) from None
    except httpx.HTTPError as exc:
        raise ActionError(redact(f"{target} failed: {exc}"), type=ErrorType.HTTP_ERROR) from None
    text = _decode(response, body)
    if not params.accepts(response.status_code):
        raise ActionError(
            redact(f"{target} answered {response.status_code}: {text[:200]}"),
            type=ErrorType.HTTP_ERROR,
            non_retryable=400 <= response.status_code < 500 and response.status_code != 429,
        )
    out: dict[str, Any] = {"status": response.status_code, "headers": dict(response.headers)}
    if "json" in response.headers.get("content-type", ""):
        try:
            out["json"] = json.loads(text)
        except (ValueError, RecursionError):
            out["text"] = text
    else:
        out["text"] = text
    return out


def _client(policy: EgressPolicy, timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=GuardedTransport(policy),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        headers={"accept-encoding": "gzip, deflate"},  # what _read_body can bound
    )


async def _exchange(
    client: httpx.AsyncClient, params: HttpInput, headers: dict[str, str]
) -> tuple[httpx.Response, bytes]:
    """Send the request and follow redirects; the final response and its body. Headers that
    carry a secret go to the origin they were written for only, as credentials do."""
    secret_headers = [k.lower() for k, v in params.headers.items() if isinstance(v, SecretRef)]
    request = client.build_request(
        params.method, params.url, headers=headers, json=params.json_body
    )
    for hop in range(MAX_REDIRECTS + 1):
        try:
            response = await client.send(request, stream=True)
        except EgressRefused as exc:
            if hop:  # name where the redirect went
                raise EgressRefused(f"redirected to {request.url}: {exc}") from None
            raise
        try:
            status = response.status_code
            if (
                status not in REDIRECTS
                or "location" not in response.headers
                or params.accepts(status, explicitly=True)
            ):
                return response, await _read_body(response)
            request = _redirected(request, response, secret_headers)
        finally:
            await response.aclose()
    raise ActionError(
        redact(f"{params.method} {params.url}: more than {MAX_REDIRECTS} redirects"),
        type=ErrorType.HTTP_ERROR,
        non_retryable=True,
    )


def _redirected(
    request: httpx.Request, response: httpx.Response, secret_headers: list[str]
) -> httpx.Request:
    """The request a redirect asks for, as browsers make it: 303 (and 301/302 after a POST)
    becomes a GET without a body; credentials and cookies stay with their origin."""
    url = request.url.join(response.headers["location"])
    if url.scheme not in ("http", "https"):
        raise ActionError(
            redact(f"{request.method} {request.url} redirected to {url}: not http(s)"),
            type=ErrorType.HTTP_ERROR,
            non_retryable=True,
        )
    method, content = request.method, request.content
    if (response.status_code == 303 and method != "HEAD") or (
        response.status_code in (301, 302) and method == "POST"
    ):
        method, content = "GET", b""
    headers = httpx.Headers(request.headers)
    dropped = ["host", "content-length", "transfer-encoding"]
    if not content:
        dropped.append("content-type")
    if (url.scheme, url.host, url.port) != (request.url.scheme, request.url.host, request.url.port):
        dropped += ["authorization", "cookie", *secret_headers]
    for name in dropped:
        headers.pop(name, None)
    return httpx.Request(method, url, headers=headers, content=content or None)


async def _read_body(response: httpx.Response) -> bytes:
    """The body, decompressed, read no further than MAX_BODY_BYTES."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        inflate: Any = zlib.decompressobj(47)  # zlib or gzip header, detected
    elif encoding in ("", "identity"):
        inflate = None
    else:
        raise ActionError(
            f"the response is encoded {encoding!r}, which std.http does not decode; ask for "
            "gzip or identity (Accept-Encoding)",
            type=ErrorType.HTTP_ERROR,
            non_retryable=True,
        )
    body = bytearray()
    try:
        async for chunk in response.aiter_raw():
            if inflate is not None:  # never more output than the cap allows (zip bombs)
                chunk = inflate.decompress(chunk, MAX_BODY_BYTES + 1 - len(body))
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise ActionError(
                    f"the response body is over {MAX_BODY_BYTES} bytes (the limit of a step's "
                    "output); fetch large data in your own action and return a reference",
                    type=ErrorType.PAYLOAD_TOO_LARGE,
                    non_retryable=True,
                )
    except zlib.error as exc:
        raise ActionError(
            f"the response body is not valid {encoding}: {exc}", type=ErrorType.HTTP_ERROR
        ) from None
    return bytes(body)


def _decode(response: httpx.Response, body: bytes) -> str:
    try:
        return body.decode(response.charset_encoding or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")
