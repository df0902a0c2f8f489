"""Network address types shared by the inventory and the collectors."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def reached(address: IPAddress) -> IPAddress:
    """The address a connection really reaches: the IPv4 address inside an IPv4-mapped IPv6 one (::ffff:10.0.0.1)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_kind(address: IPAddress) -> str | None:
    """None for a public address the scanner may always contact, else what it is ('a private address', …).

    An IPv4-mapped IPv6 address is judged as the IPv4 address it reaches. Multicast is never a scan
    target, whatever Python's `is_global` says of it.
    """
    address = reached(address)
    if address.is_global and not address.is_multicast:
        return None
    kinds = (("a loopback", address.is_loopback), ("a link-local", address.is_link_local),
             ("an unspecified", address.is_unspecified), ("a multicast", address.is_multicast),
             ("a private", address.is_private), ("a reserved", address.is_reserved))
    return next((f"{kind} address" for kind, found in kinds if found), "a non-public address")


def address_refusal(address: IPAddress, allowed_networks: Sequence[IPNetwork]) -> str | None:
    """Why the scanner may not contact `address` ('10.0.0.1 is a private address'); None when it may.

    Public addresses are always allowed; anything else only inside a network the inventory lists in
    `settings.allowed_networks` (the operator's decision, never a portal's or a spreadsheet's).
    """
    kind = address_kind(address)
    if kind is None:
        return None
    target = reached(address)
    if any(candidate in network for candidate in {address, target} for network in allowed_networks
           if candidate.version == network.version):
        return None
    return f"{address} is {kind}" if target == address else f"{address} (that is {target}) is {kind}"
