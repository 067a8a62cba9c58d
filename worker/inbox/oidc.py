"""OpenID Connect sign-in: the authorization-code flow with discovery, state, nonce and PKCE;
the ID token verified (signature by a key of the issuer's JWKS, iss, aud, exp, nonce) before
its claim names the approver."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from cadenza.errors import EXIT_USAGE, CadenzaError

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"]


class OidcFailed(CadenzaError):
    """The OIDC sign-in failed: the issuer could not be reached, refused the code, or its ID
    token did not verify (signature, issuer, audience, expiry, nonce); the message says which."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class Pending:
    """What the browser carries (in a signed cookie) from the redirect to the callback."""

    state: str
    nonce: str
    verifier: str


class OidcClient:
    """One relying party at one issuer.

    Args:
        issuer: the issuer URL (`{issuer}/.well-known/openid-configuration` is read).
        client_id, client_secret: the inbox's registration at the issuer.
        redirect_uri: `{inbox URL}/oidc/callback`, as registered.
        http: the client for discovery, token and JWKS requests (injected: tests, proxies).
        claim: the ID token claim that names the approver.
    """

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        http: httpx.AsyncClient,
        claim: str = "preferred_username",
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.http = http
        self.claim = claim
        self._metadata: dict[str, Any] | None = None

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            url = f"{self.issuer}/.well-known/openid-configuration"
            data = await self._get_json(url)
            if data.get("issuer", "").rstrip("/") != self.issuer:
                raise OidcFailed(f"{url} names issuer {data.get('issuer')!r}, not {self.issuer!r}")
            self._metadata = data
        return self._metadata

    def begin(self) -> Pending:
        return Pending(
            state=secrets.token_urlsafe(24),
            nonce=secrets.token_urlsafe(24),
            verifier=secrets.token_urlsafe(48),
        )

    async def authorization_url(self, pending: Pending) -> str:
        endpoint = (await self.metadata())["authorization_endpoint"]
        challenge = base64.urlsafe_b64encode(hashlib.sha256(pending.verifier.encode()).digest())
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid profile email",
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        }
        return f"{endpoint}?{urlencode(query)}"

    async def finish(self, code: str, pending: Pending) -> str:
        """Exchange the code, verify the ID token; the approver it names.

        Raises:
            OidcFailed: the exchange failed or the token does not verify.
        """
        metadata = await self.metadata()
        try:
            response = await self.http.post(
                metadata["token_endpoint"],
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": self.redirect_uri,
                    "code_verifier": pending.verifier,
                },
                auth=(self.client_id, self.client_secret),
            )
        except httpx.HTTPError as exc:
            raise OidcFailed(f"the issuer's token endpoint is unreachable: {exc}") from None
        if response.status_code != 200:
            raise OidcFailed(f"the issuer refused the code (HTTP {response.status_code})")
        try:
            id_token = str(response.json()["id_token"])
        except (ValueError, KeyError, TypeError):
            raise OidcFailed("the issuer's token response has no id_token") from None
        claims = await self.verify(id_token, pending.nonce)
        who = claims.get(self.claim)
        if not isinstance(who, str) or not who.strip():
            raise OidcFailed(f"the ID token has no {self.claim!r} claim to name the approver")
        return who.strip()

    async def verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims once its signature, iss, aud, exp and nonce hold."""
        try:
            kid = jwt.get_unverified_header(id_token).get("kid")
        except jwt.PyJWTError as exc:
            raise OidcFailed(f"the ID token is malformed: {exc}") from None
        key = await self._key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=ALGORITHMS,
                audience=self.client_id,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
                leeway=30,
            )
        except jwt.PyJWTError as exc:
            raise OidcFailed(f"the ID token does not verify: {exc}") from None
        if not secrets.compare_digest(str(claims.get("nonce", "")).encode(), nonce.encode()):
            raise OidcFailed("the ID token's nonce is not this sign-in's (a replayed token?)")
        return claims

    async def _key(self, kid: str | None) -> Any:
        jwks = await self._get_json((await self.metadata())["jwks_uri"])
        try:
            keys = jwt.PyJWKSet.from_dict(jwks).keys
        except jwt.PyJWTError as exc:
            raise OidcFailed(f"the issuer's JWKS is unusable: {exc}") from None
        for key in keys:
            if kid is None or key.key_id == kid:
                return key.key
        raise OidcFailed(f"no key {kid!r} in the issuer's JWKS")

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self.http.get(url)
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcFailed(f"cannot read {url}: {exc}") from None
        if not isinstance(data, dict):
            raise OidcFailed(f"{url} is not a JSON object")
        return data
