"""`cadenza codec-server`: the Temporal Web UI's remote codec endpoint.

With payload encryption on, the Web UI shows ciphertext. Point the UI at this server (Settings ->
Codec Server, or `--ui-codec-endpoint` of the dev server, or `TEMPORAL_CODEC_ENDPOINT` of the UI
container) and it sends payloads here to be decoded (`POST /decode`) or encoded (`POST /encode`),
as `{"payloads": [{"metadata": {...}, "data": "base64"}]}` (proto JSON of `Payloads`).

The server holds the keys, so it is strict:
- Auth: a request must carry `Authorization: Bearer <CADENZA_CODEC_SERVER_TOKEN>`; running
  without a token takes `--insecure-no-auth` (a loopback-only dev set-up).
- CORS: only the configured origins (exact `scheme://host[:port]`, default
  http://localhost:8233) get CORS headers; `*` is refused as a configuration, and a request from
  any other origin is refused with 403.
- Body: `Content-Length` is required, a plain decimal number, at most 8 MiB (411, 400, 413
  otherwise); a client that stops sending is dropped after 30 s.
- Payloads: decoded by the same codec as workers (bounded inflate, unencrypted payloads
  refused when keys are set).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from cadenza.errors import EXIT_USAGE, CadenzaError

log = logging.getLogger("cadenza.codec")
MAX_BODY = 8 * 1024 * 1024
READ_TIMEOUT = 30.0
TOKEN_VARIABLE = "CADENZA_CODEC_SERVER_TOKEN"
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-]+(:\d{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:\d{1,5})?")
_LENGTH = re.compile(r"[0-9]{1,12}")


class CodecServerConfigError(CadenzaError):
    """The codec server's configuration would expose the keys: no token, or a `*` or malformed
    CORS origin. Set CADENZA_CODEC_SERVER_TOKEN (or pass --insecure-no-auth for a loopback-only
    dev set-up) and name the Web UI's origin exactly."""

    exit_code = EXIT_USAGE


def checked_origins(origins: Sequence[str]) -> tuple[str, ...]:
    """The origins, each exactly `scheme://host[:port]`.

    Raises:
        CodecServerConfigError: `*`, or anything else that is not an origin.
    """
    for origin in origins:
        if origin == "*":
            raise CodecServerConfigError(
                "CORS origin '*' is refused: any web page could have a visitor's browser decode "
                "payloads; pass the Web UI's origin, e.g. --origin http://localhost:8233"
            )
        if not _ORIGIN.fullmatch(origin):
            raise CodecServerConfigError(
                f"CORS origin {origin!r} is not scheme://host[:port] (no path, no trailing /)"
            )
    return tuple(origins)


def _body_length(headers: Any) -> tuple[int, str] | int:
    """The request body's length, or (status, reason) when it cannot be trusted."""
    if headers.get("Transfer-Encoding"):
        return 411, "chunked bodies are not accepted; send Content-Length"
    values = headers.get_all("Content-Length") or []
    if not values:
        return 411, "Content-Length is required"
    if len(set(values)) > 1 or not _LENGTH.fullmatch(values[0].strip()):
        return 400, "Content-Length must be one non-negative decimal number"
    length = int(values[0])
    if length > MAX_BODY:
        return 413, f"body of {length} bytes; the limit is {MAX_BODY}"
    return length


def _handler(
    codec: PayloadCodec, origins: Sequence[str], token: str | None
) -> type[BaseHTTPRequestHandler]:
    # long: one request-handler class, closing over this server's codec, origins and token
    class Handler(BaseHTTPRequestHandler):
        server_version = "cadenza-codec"
        timeout = READ_TIMEOUT  # a socket timeout: a stalled client cannot hold a thread

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

        def _origin_refused(self) -> bool:
            origin = self.headers.get("Origin")
            if origin is None or origin in origins:
                return False
            self._reply(403, {"error": f"origin {origin!r} is not allowed (--origin)"})
            return True

        def _cors(self) -> None:
            origin = self.headers.get("Origin")
            if origin is not None and origin in origins:
                self.send_header("Access-Control-Allow-Origin", origin)
                self.send_header("Access-Control-Allow-Credentials", "true")
            self.send_header("Vary", "Origin")

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self._cors()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status >= 400:  # the body may not have been read: do not reuse the connection
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)

        def do_OPTIONS(self) -> None:
            if self._origin_refused():
                return
            self.send_response(204)
            self._cors()
            self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
            self.send_header(
                "Access-Control-Allow-Headers", "Content-Type, X-Namespace, Authorization"
            )
            self.send_header("Access-Control-Max-Age", "600")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _authorized(self) -> bool:
            if token is None:
                return True
            given = self.headers.get("Authorization", "")
            if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return True
            self._reply(401, {"error": "a valid 'Authorization: Bearer' token is needed"})
            return False

        def do_POST(self) -> None:
            operation = self.path.rstrip("/").rsplit("/", 1)[-1]
            if operation not in ("encode", "decode"):
                self._reply(404, {"error": "POST /encode or /decode"})
                return
            if self._origin_refused() or not self._authorized():
                return
            length = _body_length(self.headers)
            if isinstance(length, tuple):
                self._reply(length[0], {"error": length[1]})
                return
            body = self.rfile.read(length)
            if len(body) < length:
                self._reply(400, {"error": f"body ended after {len(body)} of {length} bytes"})
                return
            try:
                request = json_format.Parse(body, Payloads())
            except json_format.ParseError as exc:
                self._reply(400, {"error": f"not a Payloads JSON document: {exc}"})
                return
            work = codec.encode if operation == "encode" else codec.decode
            try:
                done = asyncio.run(work(list(request.payloads)))
            except Exception as exc:
                self._reply(400, {"error": f"{operation} failed: {exc}"})
                return
            self._reply(200, json_format.MessageToDict(Payloads(payloads=done)))

    return Handler


@contextmanager
def codec_server(
    codec: PayloadCodec,
    port: int,
    host: str = "127.0.0.1",
    origins: Sequence[str] = ("http://localhost:8233",),
    token: str | None = None,
    *,
    insecure_no_auth: bool = False,
) -> Iterator[str]:
    """Serve the codec endpoint in a thread; yields its base URL.

    Raises:
        CodecServerConfigError: no `token` without `insecure_no_auth`, or a bad origin.
    """
    if not token and not insecure_no_auth:
        raise CodecServerConfigError(
            f"the codec server decrypts for whoever asks: set {TOKEN_VARIABLE} (requests then "
            "need 'Authorization: Bearer <token>'), or pass --insecure-no-auth for a dev "
            "set-up that only this machine reaches"
        )
    handler = _handler(codec, checked_origins(origins), token or None)
    server = ThreadingHTTPServer((host, port), handler)
    thread = threading.Thread(target=server.serve_forever, name="codec-server", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
