"""The SSRF guard, shared by the webhook dispatcher and the pg_net emulation's worker: outgoing requests may not
reach loopback, private, link-local, unique-local or metadata addresses unless allow-listed.

Webhooks: checked when an endpoint is configured (`check_url`, `check_resolved`) and again on every send, after DNS
resolution (`GuardedResolver`, the resolver of the dispatcher's HTTP client, so the address connected to is the one
checked). The dispatcher never follows redirects (a 3xx is a failure), so no redirect can lead elsewhere. Hosts
and CIDRs in TRIPSAGE_WEBHOOK_ALLOW_HOSTS are exempt, and plain http is accepted only for them.

The net worker (`tripsage.net.transfer`) checks every address libcurl is about to connect to, on every redirect hop,
with `blocked_reason` and its own allow-list, TRIPSAGE_NET_ALLOW_HOSTS; plain http stays allowed, as in pg_net.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud metadata endpoints outside the ranges Python already calls private or link-local.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "168.63.129.16")
)
CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")


class UnsafeTarget(ValueError):
    """A webhook URL that the SSRF guard refuses."""


def blocked_reason(address: IPAddress) -> str | None:
    """Why an address may not be a webhook target, or None if it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if isinstance(address, ipaddress.IPv6Address) and address in ipaddress.ip_network("fc00::/7"):
        return "a unique-local address"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "not a unicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in CARRIER_GRADE_NAT:
        return "a shared (carrier-grade NAT) address"
    if address.is_private:
        return "a private address"
    return None


@dataclass(frozen=True)
class AllowList:
    """Hosts and networks exempt from the guard (TRIPSAGE_WEBHOOK_ALLOW_HOSTS: comma-separated hosts or CIDRs)."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = field(default=())

    @classmethod
    def parse(cls, text: str) -> AllowList:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in (part.strip() for part in text.split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def with_entries(self, *entries: str) -> AllowList:
        extra = AllowList.parse(",".join(entries))
        return AllowList(self.hosts | extra.hosts, self.networks + extra.networks)

    def allows_host(self, host: str) -> bool:
        host = host.lower().rstrip(".").strip("[]")
        if host in self.hosts:
            return True
        address = _literal(host)
        return address is not None and self.allows_address(address)

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks) or str(address) in self.hosts


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_url(url: str, allow: AllowList) -> str:
    """Refuse a URL that is malformed, plain http to a host not allowlisted, or an unsafe address literal.

    Returns the host. Host names are checked again once resolved (`check_resolved`, `GuardedResolver`).
    """
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a malformed port
    except ValueError as error:
        raise UnsafeTarget(f"invalid webhook URL {url!r}: {error}") from error
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTarget(f"invalid webhook URL {url!r}: it must be http(s)://host/...")
    host = parts.hostname
    if allow.allows_host(host):
        return host
    if parts.scheme == "http":
        raise UnsafeTarget(
            f"webhook URL {url!r}: plain http is allowed only for hosts in TRIPSAGE_WEBHOOK_ALLOW_HOSTS; use https"
        )
    if host == "localhost" or host.endswith(".localhost"):
        raise UnsafeTarget(f"webhook URL {url!r} targets a loopback address (SSRF guard)")
    address = _literal(host)
    if address is not None and (reason := blocked_reason(address)) is not None:
        raise UnsafeTarget(f"webhook URL {url!r} targets {reason} (SSRF guard)")
    return host


def _check_addresses(host: str, addresses: list[str], allow: AllowList) -> None:
    for text in addresses:
        address = ipaddress.ip_address(text.split("%")[0])
        if allow.allows_address(address):
            continue
        if (reason := blocked_reason(address)) is not None:
            raise UnsafeTarget(f"webhook host {host!r} resolves to {address}, {reason} (SSRF guard)")


async def check_resolved(url: str, allow: AllowList) -> None:
    """`check_url`, then resolve the host and refuse it if any address is unsafe (when an endpoint is configured)."""
    host = check_url(url, allow)
    if allow.allows_host(host) or _literal(host) is not None:
        return
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as error:
        raise UnsafeTarget(f"webhook host {host!r} does not resolve: {error}") from error
    _check_addresses(host, [str(info[4][0]) for info in infos], allow)


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver with the guard applied to every address it returns (so DNS rebinding cannot slip by)."""

    def __init__(self, allow: AllowList) -> None:
        self.allow = allow
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if not self.allow.allows_host(host):
            _check_addresses(host, [r["host"] for r in results], self.allow)
        return results

    async def close(self) -> None:
        await self._inner.close()
