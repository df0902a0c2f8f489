"""What the API app holds for its whole life: settings, the one store backend, the clock, the inventory."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from soc.core.clock import Clock
from soc.core.models import JobRun
from soc.core.settings import Settings
from soc.inventory import Inventory, InventoryError, load_inventory
from soc.schemas.jobs import JobInfo
from soc.services.context import ServiceContext
from soc.store import Backend


class Scheduler(Protocol):
    """What the API asks of the scheduler running beside it (`soc.scheduler.SocScheduler`)."""

    @property
    def running(self) -> bool:
        """The scheduler thread runs."""
        ...

    def job_infos(self) -> list[JobInfo]:
        """Every job with its schedule, next slot and latest runs."""
        ...

    def run_now(self, name: str, actor: str) -> JobRun:
        """Start a job now, in the background; return its started run (ServiceError: unknown or running)."""
        ...


@dataclass
class ApiState:
    """Shared by every request; a request gets its own `ServiceContext` on the shared backend."""

    settings: Settings
    backend: Backend
    clock: Clock
    scheduler: Scheduler | None = None
    _inventory: Inventory | None = None
    _inventory_stamp: tuple[float, int] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def context(self, actor: str) -> ServiceContext:
        """A services context acting as `actor` on the shared backend (not to be closed by the caller)."""
        return ServiceContext(self.settings, self.backend, self.clock, actor)

    def inventory(self) -> Inventory | None:
        """The inventory of `settings.inventory`, re-read when its file changes (None: none configured).

        InventoryError when the file became invalid: the API says so rather than serving stale portals.
        """
        path: Path | None = self.settings.inventory
        if path is None:
            return None
        try:
            stat = path.stat()
        except OSError as exc:
            raise InventoryError(f"{path}: cannot read the inventory: {exc.strerror or exc}") from None
        stamp = (stat.st_mtime, stat.st_size)
        with self._lock:
            if self._inventory is None or stamp != self._inventory_stamp:
                self._inventory = load_inventory(path)
                self._inventory_stamp = stamp
            return self._inventory
