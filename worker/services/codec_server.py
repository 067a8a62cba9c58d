"""`cadenza codec-server`: the Temporal Web UI's remote codec endpoint.

With payload encryption on, the Web UI shows ciphertext. Point the UI at this server (Settings ->
Codec Server, or `--ui-codec-endpoint` of the dev server, or `TEMPORAL_CODEC_ENDPOINT` of the UI
container) and it sends payloads here to be decoded (`POST /decode`) or encoded (`POST /encode`),
as `{"payloads": [{"metadata": {...}, "data": "base64"}]}` (proto JSON of `Payloads`).

CORS: the UI calls from the browser, so the UI's origin (`--origin`, default
http://localhost:8233) is allowed, with the headers the UI sends (`Content-Type`, `X-Namespace`,
`Authorization`). With `CADENZA_CODEC_SERVER_TOKEN` set, a request must carry `Authorization:
Bearer <token>` (the UI can be given the token, or forward its own login's access token). The
server holds the keys, so bind it where only operators reach it.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

log = logging.getLogger("cadenza.codec")
MAX_BODY = 8 * 1024 * 1024


def _handler(
    codec: PayloadCodec, origins: Sequence[str], token: str | None
) -> type[BaseHTTPRequestHandler]:
    # long: one request-handler class, closing over this server's codec, origins and token
    class Handler(BaseHTTPRequestHandler):
        server_version = "cadenza-codec"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

        def _cors(self) -> None:
            origin = self.headers.get("Origin")
            if origin and (origin in origins or "*" in origins):
                self.send_header("Access-Control-Allow-Origin", origin)
                self.send_header("Vary", "Origin")
                self.send_header("Access-Control-Allow-Credentials", "true")

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self._cors()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_OPTIONS(self) -> None:
            self.send_response(204)
            self._cors()
            self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
            self.send_header(
                "Access-Control-Allow-Headers", "Content-Type, X-Namespace, Authorization"
            )
            self.send_header("Access-Control-Max-Age", "600")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            operation = self.path.rstrip("/").rsplit("/", 1)[-1]
            if operation not in ("encode", "decode"):
                self._reply(404, {"error": "POST /encode or /decode"})
                return
            if token is not None:
                given = self.headers.get("Authorization", "")
                if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                    self._reply(401, {"error": "a valid 'Authorization: Bearer' token is needed"})
                    return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._reply(413, {"error": f"body over {MAX_BODY} bytes"})
                return
            try:
                request = json_format.Parse(self.rfile.read(length), Payloads())
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
) -> Iterator[str]:
    """Serve the codec endpoint in a thread; yields its base URL."""
    server = ThreadingHTTPServer((host, port), _handler(codec, origins, token))
    thread = threading.Thread(target=server.serve_forever, name="codec-server", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
