"""The store contract suite: every test runs on each backend (SQLite; the search backend on osmem-server,
or on the cluster `SOC_TEST_SEARCH_URL` names). A test uses `backend` and the protocols only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from soc.core.clock import FixedClock
from soc.core.settings import Settings, StoreSettings
from soc.services.context import ServiceContext
from soc.store import Backend, open_backend
from tests.search_fixtures import engine_name

BACKENDS = ["sqlite", "search"]


def pytest_report_header() -> str:
    return f"store contract suite: sqlite, and the search backend on {engine_name()}"


@pytest.fixture(params=BACKENDS)
def store_settings(request: pytest.FixtureRequest) -> StoreSettings:
    """The store choice of one run of a contract test."""
    if request.param == "sqlite":
        return StoreSettings()
    settings: StoreSettings = request.getfixturevalue("search_settings")
    return settings


@pytest.fixture
def backend(db_path: Path, clock: FixedClock, store_settings: StoreSettings) -> Iterator[Backend]:
    """An empty store of the backend under test, on the fixed clock."""
    opened = open_backend(db_path, clock, store=store_settings)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def context(backend: Backend, clock: FixedClock, db_path: Path, store_settings: StoreSettings) -> ServiceContext:
    """The services' context on the store under test, acting as 'tester'."""
    return ServiceContext(Settings(db=db_path, store=store_settings), backend, clock, actor="tester")
