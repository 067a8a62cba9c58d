"""`cadenza inbox`: serve the approval inbox; `cadenza inbox link`: print a sign-in link."""

from __future__ import annotations

import ipaddress
import re
import secrets
import sys
from typing import Annotated

import typer

from worker.cli.base import EXIT_OK, err, run_command
from worker.client import CadenzaClient, connect
from worker.inbox.links import MIN_SECRET, LinkSigner
from worker.inbox.settings import DEFAULT_PORT, InboxConfigInvalid, InboxSettings

app = typer.Typer(
    help="The approval inbox: a web page where approvers decide (docs/approvals.md).",
    no_args_is_help=False,
)

DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def checked_secret(settings: InboxSettings, host: str) -> bytes:
    """The secret that signs links and sessions; a random one per process on loopback only."""
    if settings.inbox_secret:
        if len(settings.inbox_secret) < MIN_SECRET:
            raise InboxConfigInvalid(
                f"CADENZA_INBOX_SECRET has {len(settings.inbox_secret)} characters; use at least "
                f"{MIN_SECRET} (python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return settings.secret_bytes()
    if not is_loopback(host):
        raise InboxConfigInvalid(
            f"--host {host} is not a loopback address: set CADENZA_INBOX_SECRET (at least "
            f"{MIN_SECRET} characters) so that sign-in links and sessions are signed with it"
        )
    err.print(
        "CADENZA_INBOX_SECRET is not set: sessions use a random secret for this process "
        "(`cadenza inbox link` needs the same secret: set it to sign in by link)",
        highlight=False,
    )
    return secrets.token_bytes(32)


@app.callback(invoke_without_command=True)
def inbox(
    context: typer.Context,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = DEFAULT_PORT,
    host: Annotated[
        str, typer.Option(help="Interface; not loopback: CADENZA_INBOX_SECRET required.")
    ] = "127.0.0.1",
    oidc_issuer: Annotated[
        str | None,
        typer.Option(help="OpenID Connect issuer (CADENZA_OIDC_CLIENT_ID/SECRET from env)."),
    ] = None,
    oidc_claim: Annotated[
        str, typer.Option(help="The ID token claim that names the approver.")
    ] = "preferred_username",
) -> None:
    """Serve the approval inbox (sign-in by signed link or OIDC, decisions as signed updates)."""
    if context.invoked_subcommand is not None:
        return

    async def main() -> int:
        import uvicorn

        from worker.inbox.app import create_app

        settings = InboxSettings()
        secret = checked_secret(settings, host)
        public_url = settings.inbox_url or f"http://{host}:{port}"

        async def cadenza() -> CadenzaClient:
            return CadenzaClient(await connect(), settings.task_queue)

        web = create_app(
            settings,
            cadenza,
            secret=secret,
            public_url=public_url,
            oidc_issuer=oidc_issuer,
            oidc_claim=oidc_claim,
        )
        if not settings.approval_signing_key:
            err.print(
                "CADENZA_APPROVAL_SIGNING_KEY is not set: decisions go unsigned (refused by "
                "workers with CADENZA_APPROVAL_KEYS; `cadenza approval-keys` prints a pair)",
                highlight=False,
            )
        err.print(f"approval inbox on {public_url}", highlight=False)
        # no access log: a sign-in link's token is in the query string of /login
        config = uvicorn.Config(web, host=host, port=port, access_log=False, log_level="warning")
        await uvicorn.Server(config).serve()
        return EXIT_OK

    run_command(main)


@app.command("link")
def link(
    approver: Annotated[str, typer.Option("--approver", help="Who signs in with it.")],
    ttl: Annotated[
        str, typer.Option("--ttl", help="How long it is valid: 900, 30m, 12h, 7d.")
    ] = "24h",
) -> None:
    """Print a sign-in link for APPROVER (CADENZA_INBOX_SECRET signs it; CADENZA_INBOX_URL is
    its base). Whoever holds it signs in as APPROVER until it expires: send it to them only."""

    async def main() -> int:
        settings = InboxSettings()
        if len(settings.inbox_secret) < MIN_SECRET:
            raise InboxConfigInvalid(
                f"set CADENZA_INBOX_SECRET (at least {MIN_SECRET} characters, the inbox's own) "
                "to sign links"
            )
        if not approver.strip() or len(approver) > 200:
            raise InboxConfigInvalid("--approver: a name of 1 to 200 characters")
        base = settings.inbox_url or f"http://127.0.0.1:{DEFAULT_PORT}"
        signer = LinkSigner(settings.secret_bytes())
        sys.stdout.write(signer.url(base, approver.strip(), parse_ttl(ttl)) + "\n")
        return EXIT_OK

    run_command(main)


def parse_ttl(value: str) -> float:
    match = DURATION.match(value.strip())
    seconds = float(match.group(1)) * UNITS[match.group(2)] if match else 0.0
    if not 0 < seconds <= 30 * 86400:
        raise InboxConfigInvalid(f"--ttl {value!r}: a duration up to 30d, e.g. 900, 30m, 12h, 7d")
    return seconds
