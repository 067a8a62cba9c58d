"""What the inbox's routes share: sessions, links, tokens, the OIDC client and the queries."""

from __future__ import annotations

from dataclasses import dataclass

from worker.inbox.auth import Sessions
from worker.inbox.links import LinkSigner
from worker.inbox.oidc import OidcClient
from worker.inbox.queries import ApprovalQueries


@dataclass
class Inbox:
    """One inbox's parts (built by `create_app`)."""

    sessions: Sessions
    links: LinkSigner
    tokens: dict[str, str]
    """{bearer token: approver} for the API."""
    queries: ApprovalQueries
    oidc: OidcClient | None = None
