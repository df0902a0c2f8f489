"""What a collector runner is given: the portals, the configuration and the way back to the pipeline."""

from __future__ import annotations

import queue
import socket
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from soc.core.clock import Clock
from soc.core.observations import FailedObservation
from soc.core.settings import Settings
from soc.inventory import Inventory, Portal

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

    def emit(self, collector: str, portal_url: str, item: BaseModel | str | None) -> None:
        """Hand a typed observation (or a progress event) to the pipeline's main thread."""
        self.events.put((collector, portal_url, item))

    def failed(self, collector: str, portal_url: str, error: str) -> FailedObservation:
        """A typed failed observation, now."""
        return FailedObservation(portal_url=portal_url, observed_at=self.clock.now(), error=error[:500])


def resolve_address(portal: Portal) -> str | None:
    """The portal's configured address, or its host's first address from DNS (None if it has none)."""
    if portal.address is not None:
        return str(portal.address)
    try:
        return str(socket.getaddrinfo(portal.host, portal.port, type=socket.SOCK_STREAM)[0][4][0])
    except OSError:
        return None
