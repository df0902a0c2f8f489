"""What a collector runner is given: the portals, the configuration and the way back to the pipeline."""

from __future__ import annotations

import ipaddress
import queue
import socket
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from soc.core.clock import Clock
from soc.core.net import IPNetwork, address_refusal
from soc.core.observations import FailedObservation
from soc.core.settings import Settings
from soc.inventory import Inventory, Portal, ip_literal

EVENT = "__event__"
"""Collector name of a progress event ('reachable' / 'unreachable') rather than an observation."""
DONE = "__done__"
"""Collector name of a runner's 'I have finished' message."""


@dataclass
class ScanJob:
    """One scan's portals and configuration, shared by the runners (each in its own thread)."""

    inventory: Inventory
    settings: Settings
    portals: dict[str, Portal]
    only: tuple[str, ...]
    clock: Clock
    events: queue.Queue[tuple[str, str, Any]] = field(default_factory=queue.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    """Set when the scan ends early (Ctrl-C): runners stop at their next observation and release what they hold."""
    start_after: Mapping[str, float] = field(default_factory=dict)
    """Seconds after the scan began before each portal (by URL) may be contacted; absent: at once. The
    scheduler spreads the nightly scan over its window with these (`soc.services.jobs.spread_starts`)."""
    began: float = field(default_factory=time.monotonic, init=False, repr=False)
    _targets: dict[str, Target] | None = field(default=None, init=False, repr=False)
    _targets_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _offsets: dict[str, float] | None = field(default=None, init=False, repr=False)

    def emit(self, collector: str, portal_url: str, item: BaseModel | str | None) -> None:
        """Hand a typed observation (or a progress event) to the pipeline's main thread."""
        self.events.put((collector, portal_url, item))

    def target(self, portal: Portal) -> Target:
        """Where `portal` may be scanned, decided once per scan for all collectors (the first one to ask waits)."""
        with self._targets_lock:
            if self._targets is None:
                self._targets = resolve_all(list(self.portals.values()), self.inventory.settings.allowed_networks)
            return self._targets[portal.url]

    def start_offset(self, portal_url: str) -> float:
        """When a portal may first be contacted, in seconds after the scan began: the earliest `start_after`
        of the portals on its address, so the portals of one server start together (and its politeness
        limits, one nmap scan per address, sslyze's shared connection budget, still see them all at once)."""
        if not self.start_after:
            return 0.0
        with self._targets_lock:
            offsets = self._offsets
        if offsets is None:
            by_address: dict[str, float] = {}
            place = {url: self.target(portal).address or url for url, portal in self.portals.items()}
            for url, where in place.items():
                wanted = max(0.0, float(self.start_after.get(url, 0.0)))
                by_address[where] = min(wanted, by_address.get(where, wanted))
            offsets = {url: by_address[where] for url, where in place.items()}
            with self._targets_lock:
                self._offsets = offsets
        return offsets.get(portal_url, 0.0)

    def waves(self, portal_urls: Iterable[str]) -> list[tuple[float, list[str]]]:
        """The portals grouped by their start offset, earliest first (one wave when nothing is spread)."""
        groups: dict[float, list[str]] = {}
        for url in portal_urls:
            groups.setdefault(self.start_offset(url), []).append(url)
        return sorted(groups.items())

    def wait_until(self, offset: float) -> bool:
        """Wait until `offset` seconds after the scan began; False when the scan is cancelled first."""
        delay = self.began + offset - time.monotonic()
        if delay <= 0:
            return not self.cancelled.is_set()
        return not self.cancelled.wait(delay)

    def failed(self, collector: str, portal_url: str, error: str) -> FailedObservation:
        """A typed failed observation, now."""
        return FailedObservation(portal_url=portal_url, observed_at=self.clock.now(), error=error[:500])


MAX_RESOLVERS = 16
"""DNS look-ups in flight at once while a scan decides where its portals may be scanned."""


@dataclass(frozen=True)
class Target:
    """Where one portal may be scanned: the address every collector connects to, or why it is not scanned."""

    address: str | None
    refused: str | None = None
    """Why the portal is not scanned at all: its address is outside the allowed networks (never contacted)."""
    unresolved: str | None = None
    """Why its host has no address (DNS gave none)."""


def resolve_address(portal: Portal, allowed_networks: Sequence[IPNetwork] = ()) -> Target:
    """Where `portal` may be scanned: its inventory address, else its host's first allowed DNS answer.

    The address policy of redirects and AIA applies to the portal itself (`soc.core.net.address_refusal`):
    public, or inside the inventory's `allowed_networks`. A host whose every answer is refused is not
    scanned; the address found is pinned for every collector, so the name is never resolved again.
    """
    literal = portal.address if portal.address is not None else ip_literal(portal.host)
    if literal is not None:
        found = [literal]
    else:
        try:
            infos = socket.getaddrinfo(portal.host, portal.port, type=socket.SOCK_STREAM)
            found = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
        except (OSError, UnicodeError, ValueError) as exc:  # UnicodeError: a label over 63 characters
            return Target(None, unresolved=f"cannot resolve {portal.host}: {exc}"[:300])
    refusals = []
    for address in found:
        refusal = address_refusal(address, allowed_networks)
        if refusal is None:
            return Target(str(address))
        refusals.append(refusal)
    where = "its inventory address" if portal.address is not None else portal.host
    return Target(None, refused=(f"address not allowed: {where} → {'; '.join(refusals[:3])}; not contacted "
                                 f"(outside the inventory's settings.allowed_networks)"))


def resolve_all(portals: Sequence[Portal], allowed_networks: Sequence[IPNetwork]) -> dict[str, Target]:
    """`resolve_address` for every portal, the DNS look-ups side by side (daemon threads: Ctrl-C never waits)."""
    targets: dict[str, Target] = {}
    lookups: queue.SimpleQueue[Portal] = queue.SimpleQueue()
    for portal in portals:
        if portal.address is None and ip_literal(portal.host) is None:
            lookups.put(portal)
        else:
            targets[portal.url] = resolve_address(portal, allowed_networks)

    def worker() -> None:
        while True:
            try:
                portal = lookups.get_nowait()
            except queue.Empty:
                return
            targets[portal.url] = resolve_address(portal, allowed_networks)

    threads = [threading.Thread(target=worker, name="resolve", daemon=True)
               for _ in range(min(MAX_RESOLVERS, lookups.qsize()))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return targets
