"""Fixtures shared by every layer of tests: a fixed clock, a temporary store, an inventory, the portal lab.

Nothing in the suite depends on the day it runs: services and stores get `clock` (a FixedClock), and
CLI tests invoke the app with `CliState(clock)`.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from soc.core.clock import LOCAL_ZONE, FixedClock
from soc.core.settings import Settings
from soc.lab import PortalLab
from soc.services.context import ServiceContext
from soc.store import Backend, open_backend
from tests.search_fixtures import search_settings  # noqa: F401  (a fixture: a search store of the test's own)

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=LOCAL_ZONE)
"""The suite's 'now' (a Friday morning in Đồng Nai)."""
LAB_BASE = "127.0.20."
"""The shared lab's addresses, away from the demo's 127.0.10.x."""


@pytest.fixture
def clock() -> FixedClock:
    """A clock fixed at NOW; tests move it with `clock.advance(timedelta(...))`."""
    return FixedClock(NOW)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a test's store lives."""
    return tmp_path / "state" / "soc.db"


@pytest.fixture
def backend(db_path: Path, clock: FixedClock) -> Iterator[Backend]:
    """A temporary store (the default backend, migrated), on the fixed clock."""
    opened = open_backend(db_path, clock)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def context(backend: Backend, clock: FixedClock, db_path: Path) -> ServiceContext:
    """The services' context on the temporary store, acting as 'tester'."""
    return ServiceContext(Settings(db=db_path), backend, clock, actor="tester")


@pytest.fixture
def inventory_path(tmp_path: Path) -> Path:
    """A two-agency inventory (Sở Tư pháp, Sở Y tế), one portal each."""
    data = {
        "agencies": [{"id": "stp", "name": "Sở Tư pháp"}, {"id": "syt", "name": "Sở Y tế"}],
        "portals": [{"url": "https://stp.dongnai.gov.vn/", "agency": "stp"},
                    {"url": "https://syt.dongnai.gov.vn/", "agency": "syt"}],
    }
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalLab]:
    """The portal lab (every case on its own loopback address, one shared port), for the whole session."""
    with PortalLab(tmp_path_factory.mktemp("lab"), port=_free_port(LAB_BASE + "1"), base_address=LAB_BASE) as running:
        yield running
