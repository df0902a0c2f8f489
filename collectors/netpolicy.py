"""Where the scanner may connect when a scanned portal tells it to (AIA URLs, redirects).

A portal controls its certificates and redirects: it must not be able to point the scanner at the
SOC's own network or a cloud metadata service. Public addresses are allowed; anything else only when
the inventory lists its network in `allowed_networks` (the portal lab allows loopback). The same rule
(`soc.core.net.address_refusal`) decides where a portal itself may be scanned: its inventory address,
its URL and http_url hosts (checked when the inventory is loaded) and its DNS answer (at scan time).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

from soc.core.net import IPNetwork, address_refusal

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(Exception):
    """The host resolves only to addresses the scanner may not contact (or does not resolve)."""


def is_allowed(address: IPAddress, allowed_networks: Sequence[IPNetwork]) -> bool:
    """Public, or inside a network the inventory allows."""
    return address_refusal(address, allowed_networks) is None


def candidates(host: str, port: int) -> list[IPAddress]:
    """The host's addresses: itself when it is an IP literal, else from DNS (AddressRefused if none)."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as exc:  # UnicodeError: a label over 63 characters, "a..b"
        raise AddressRefused(f"{host}: cannot resolve ({exc})") from None
    return [ipaddress.ip_address(info[4][0]) for info in infos]


def allowed_address(host: str, port: int, allowed_networks: Sequence[IPNetwork]) -> str:
    """The first address of `host` the scanner may contact; AddressRefused naming the address otherwise."""
    found = candidates(host, port)
    for address in found:
        if is_allowed(address, allowed_networks):
            return str(address)
    raise AddressRefused(f"{host} resolves to {found[0]}, outside the allowed addresses")
