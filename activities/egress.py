"""Where `std.http` may connect: public addresses only, unless the operator allows more.

A definition author chooses `std.http`'s URL, so without a guard any run could reach what only
the worker should: the cloud metadata service (credentials), loopback admin ports, the private
network. The guard sits where the connection is made (an httpcore network backend): the host is
resolved, every address is checked, and the connection goes to a checked address, so neither a
DNS answer that changes between check and use nor a redirect can get past it.

Refused: loopback, private (RFC 1918, ULA), link-local (169.254/16: the metadata services),
shared (100.64/10), unspecified, reserved, multicast, the known metadata addresses, and IPv6
forms that embed one of those (mapped, NAT64, 6to4, Teredo). The operator allows more with
`CADENZA_HTTP_ALLOW`: host names (matched exactly, case-insensitive) and CIDRs or addresses,
comma-separated, e.g. `CADENZA_HTTP_ALLOW=billing.internal,10.20.0.0/16,127.0.0.1`.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from cadenza.errors import CadenzaError

ALLOW_VARIABLE = "CADENZA_HTTP_ALLOW"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean...
        "169.254.170.2",  # AWS ECS task credentials
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure WireServer (a public address)
    )
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class EgressRefused(CadenzaError):
    """A connection the egress policy does not allow. `std.http` fails the step with error
    type Forbidden; allow the host or its network in CADENZA_HTTP_ALLOW if it should be reached.
    """


def _embedded(ip: IPAddress) -> list[IPAddress]:
    """`ip` and the IPv4 addresses an IPv6 address carries (mapped, NAT64, 6to4, Teredo)."""
    found: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            found.append(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            found.append(ip.sixtofour)
        if ip.teredo is not None:
            found.extend(ip.teredo)
        if ip in NAT64:
            found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def is_public(ip: IPAddress) -> bool:
    """True for a global unicast address that is no metadata service, nor embeds one that isn't."""
    return all(
        a.is_global and not a.is_multicast and a not in METADATA_ADDRESSES for a in _embedded(ip)
    )


@dataclass(frozen=True)
class EgressPolicy:
    """Public addresses, plus the operator's allowed hosts and networks."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str) -> EgressPolicy:
        """`host,CIDR,address,...` (the value of CADENZA_HTTP_ALLOW) -> a policy.

        Raises:
            ValueError: an entry that is neither a host name nor an address or CIDR.
        """
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            try:
                networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            host = item.lower().rstrip(".")
            if not host or any(c in host for c in "/:@ *") or host[0] in "-.":
                raise ValueError(
                    f"{ALLOW_VARIABLE}: {item!r} is neither a host name nor an address or CIDR; "
                    "e.g. billing.internal,10.0.0.0/8,127.0.0.1"
                )
            hosts.add(host)
        return cls(frozenset(hosts), tuple(networks))

    def host_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def address_allowed(self, ip: IPAddress) -> bool:
        if is_public(ip):
            return True
        return any(
            a in net for a in _embedded(ip) for net in self.networks if a.version == net.version
        )

    def refusal(self, host: str, addresses: Iterable[str]) -> str:
        listed = ", ".join(sorted(set(addresses))) or "no address"
        return (
            f"{host} resolves to {listed}: private, loopback, link-local and metadata addresses "
            f"are refused; an operator can allow the host or its network in {ALLOW_VARIABLE} on "
            "the worker"
        )


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself and connects only to addresses the policy allows."""

    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.AnyIOBackend()

    async def _allowed_addresses(self, host: str, port: int) -> list[str]:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror}") from None
        found = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
        if self.policy.host_allowed(host):
            return found
        allowed = [a for a in found if self.policy.address_allowed(ipaddress.ip_address(a))]
        if not allowed:
            raise EgressRefused(self.policy.refusal(host, found))
        return allowed

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        error: Exception | None = None
        for address in await self._allowed_addresses(host, port):
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:  # try the next address
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise EgressRefused("unix sockets are refused")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """The default verifying context, made once (loading the CA bundle takes ~30 ms)."""
    return httpx.create_ssl_context()


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a `GuardedBackend`; no proxy from the environment (a proxy would
    make the connection for us, past the guard)."""

    def __init__(self, policy: EgressPolicy) -> None:
        super().__init__(verify=_ssl_context(), trust_env=False)
        # httpx takes no network backend, so the pool it made is replaced by one that has ours;
        # handle_async_request (the request and exception mapping) stays httpx's.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=_ssl_context(), network_backend=GuardedBackend(policy)
        )
