"""`cadenza codec-server`: the Web UI's codec endpoint, with a token unless told otherwise."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Annotated

import typer

from worker.cli.base import EXIT_OK, UsageError, err, run_command
from worker.codec import KEYS_VARIABLE, parse_keys, payload_codec
from worker.services.codec_server import TOKEN_VARIABLE, codec_server


def codec_server_command(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8081,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    origin: Annotated[
        list[str] | None,
        typer.Option("--origin", help="Web UI origin allowed by CORS (repeatable; no '*')."),
    ] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help=f"Serve without {TOKEN_VARIABLE}: anyone who reaches the port can decrypt "
            "(only for a dev set-up bound to loopback).",
        ),
    ] = False,
) -> None:
    """Serve the Web UI's remote codec endpoint (/encode, /decode) with this process's keys;
    requests need `Authorization: Bearer $CADENZA_CODEC_SERVER_TOKEN`."""

    async def main() -> int:
        keys = parse_keys(os.environ.get(KEYS_VARIABLE, ""))
        if not keys:
            raise UsageError(
                f"{KEYS_VARIABLE} is not set: without keys there is nothing to decode "
                "(make one with `cadenza codec-key`)"
            )
        token = os.environ.get(TOKEN_VARIABLE) or None
        origins = origin or ["http://localhost:8233"]
        serving = codec_server(
            payload_codec(keys), port, host, origins, token, insecure_no_auth=insecure_no_auth
        )
        with serving as url:
            auth = "bearer token required" if token else "NO AUTH (--insecure-no-auth)"
            err.print(
                f"codec server on {url} (keys {', '.join(keys)}; CORS for {', '.join(origins)}; "
                f"{auth}); in the Web UI set the codec endpoint to {url}; Ctrl-C stops it",
                highlight=False,
                markup=False,
            )
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
        return EXIT_OK

    run_command(main)
