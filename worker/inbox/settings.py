"""Settings of the approval inbox and of the reminder links workers add: `CADENZA_INBOX_*`,
`CADENZA_OIDC_*` and the approval signing key, read from the environment by `worker/` only."""

from __future__ import annotations

import hmac

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from cadenza.errors import EXIT_USAGE, CadenzaError

DEFAULT_PORT = 8090
DEFAULT_LINK_TTL = 7 * 86400.0


class InboxConfigInvalid(CadenzaError):
    """The inbox's configuration cannot be used (no secret on a public address, a malformed
    token list, an OIDC issuer without client id); the message names the setting and the fix."""

    exit_code = EXIT_USAGE


class InboxSettings(BaseSettings):
    """What the inbox (and a worker adding sign-in links to reminders) reads from `CADENZA_*`."""

    model_config = SettingsConfigDict(env_prefix="CADENZA_", extra="ignore", env_ignore_empty=True)

    inbox_secret: str = Field(
        "",
        repr=False,
        description="Signs sign-in links and session cookies (at least 32 characters; "
        "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`).",
    )
    inbox_url: str = Field(
        "",
        description="Where approvers reach the inbox (https://inbox.example.com): the base of "
        "sign-in links, the OIDC redirect; on workers it turns reminder links on.",
    )
    inbox_link_ttl: float = Field(
        DEFAULT_LINK_TTL, gt=0, le=30 * 86400, description="Seconds a reminder's link is valid."
    )
    inbox_tokens: str = Field(
        "",
        repr=False,
        description="Bearer tokens of services, NAME=TOKEN comma-separated: each token decides "
        "as approver NAME through the API (tokens of at least 24 characters).",
    )
    oidc_client_id: str = Field("", description="The inbox's client id at the OIDC issuer.")
    oidc_client_secret: str = Field("", repr=False, description="Its client secret.")
    approval_signing_key: str = Field(
        "", repr=False, description="ID:BASE64-PRIVATE: the inbox signs decisions with it."
    )
    task_queue: str = Field("cadenza", description="The task queue of the runs it serves.")

    def secret_bytes(self) -> bytes:
        return self.inbox_secret.encode()

    def tokens(self) -> dict[str, str]:
        """{token: approver} from `inbox_tokens`, every entry checked."""
        tokens: dict[str, str] = {}
        for entry in filter(None, (e.strip() for e in self.inbox_tokens.split(","))):
            name, sep, token = entry.partition("=")
            if not sep or not name.strip() or len(token.strip()) < 24:
                raise InboxConfigInvalid(
                    f"CADENZA_INBOX_TOKENS entry {name.strip()[:40]!r}: expected NAME=TOKEN with "
                    "a token of at least 24 characters, e.g. "
                    "`ci-bot=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')`"
                )
            tokens[token.strip()] = name.strip()
        return tokens


def token_owner(tokens: dict[str, str], presented: str) -> str | None:
    """The approver a bearer token stands for, compared in constant time; None: unknown."""
    owner = None
    for token, name in tokens.items():
        if hmac.compare_digest(token.encode(), presented.encode()):
            owner = name
    return owner
