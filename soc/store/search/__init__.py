"""The search backend: the SOC's data in Elasticsearch or OpenSearch, the service's own records in SQLite.

Findings, runs, observations, assessments, the register, drills and the report archive are in the
cluster (`soc.store.search.shapes`); users, API tokens, the audit trail, the job history, the scheduler
lease and APScheduler's job store stay in the SQLite file of the service (`SOC_DB`): small, written by
the one process they belong to, and needing transactions the cluster does not have.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from soc.core.clock import SYSTEM_CLOCK, Clock
from soc.core.settings import StoreSettings
from soc.store.errors import StoreError
from soc.store.search.client import connect, location
from soc.store.search.drills import SearchDrillStore, SearchReportStore
from soc.store.search.findings import SearchFindingStore
from soc.store.search.indices import SearchIndices
from soc.store.search.kpis import SearchKpiHistory
from soc.store.search.register import SearchRegister
from soc.store.sqlite import SqliteBackend

__all__ = ["SearchBackend", "SearchDrillStore", "SearchFindingStore", "SearchIndices", "SearchKpiHistory",
           "SearchRegister", "SearchReportStore", "open_indices"]


def open_indices(settings: StoreSettings) -> SearchIndices:
    """The SOC's indices on the configured cluster (not checked: `soc store setup` makes them)."""
    return SearchIndices(connect(settings), settings.index_prefix, settings.flavour, settings.retries)


class SearchBackend:
    """The `Backend` protocol: SOC data on the cluster, the service's records on `local` (SQLite)."""

    def __init__(self, settings: StoreSettings, local: SqliteBackend, clock: Clock = SYSTEM_CLOCK) -> None:
        self.settings = settings
        self._local = local
        self.indices = open_indices(settings)
        if not self.indices.ready():
            self.indices.client.close()
            raise StoreError(f"the search store {location(settings)} has no SOC indices yet: run `soc store setup`")
        self._findings = SearchFindingStore(self.indices, clock)
        self._register = SearchRegister(self.indices, clock)
        self._drills = SearchDrillStore(self.indices)
        self._reports = SearchReportStore(self.indices)
        self._kpis = SearchKpiHistory(self.indices)

    @property
    def findings(self) -> SearchFindingStore:
        """Runs, observations, findings."""
        return self._findings

    @property
    def register(self) -> SearchRegister:
        """The register and coverage."""
        return self._register

    @property
    def drills(self) -> SearchDrillStore:
        """Drill sessions and corrective actions."""
        return self._drills

    @property
    def reports(self) -> SearchReportStore:
        """The archive of generated reports."""
        return self._reports

    @property
    def kpis(self) -> SearchKpiHistory:
        """The KPIs computed day by day."""
        return self._kpis

    @property
    def audit(self) -> Any:
        """The audit trail (SQLite)."""
        return self._local.audit

    @property
    def users(self) -> Any:
        """Users, tokens, service secrets (SQLite)."""
        return self._local.users

    @property
    def jobs(self) -> Any:
        """The job-run history and the scheduler lease (SQLite)."""
        return self._local.jobs

    def job_store(self) -> Any:
        """APScheduler's job store (SQLite)."""
        return self._local.job_store()

    @property
    def location(self) -> str:
        """The cluster (without credentials) and the local file."""
        return f"{location(self.settings)} + {self._local.location}"

    @property
    def read_only(self) -> bool:
        """The local file could only be opened read-only."""
        return self._local.read_only

    def close(self) -> None:
        """Release connections."""
        self.indices.client.close()
        self._local.close()

    def __enter__(self) -> SearchBackend:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
