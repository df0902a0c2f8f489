"""The daily KPI figures on a search cluster (document id `day:scope:kpi`: a day evaluated again replaces them)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from soc.compliance.kpi import KpiSnapshot
from soc.store.search.indices import SearchIndices
from soc.store.search.shapes import KPI_SNAPSHOTS


class SearchKpiHistory:
    """The `KpiHistory` protocol on a search cluster."""

    def __init__(self, indices: SearchIndices) -> None:
        self._ix = indices

    def record(self, snapshots: Sequence[KpiSnapshot]) -> int:
        """Keep a day's figures, replacing those of the same day, scope and KPI."""
        index = self._ix.read(KPI_SNAPSHOTS)
        actions = [{"_op_type": "index", "_index": index, "_id": f"{item.as_of}:{item.scope}:{item.kpi_id}",
                    "_source": KPI_SNAPSHOTS.document(item.model_dump(mode="json"))} for item in snapshots]
        return len(self._ix.bulk_or_raise(actions, refresh="wait_for").written)

    def history(self, kpi_id: str | None = None, scope: str | None = None, since: date | None = None,
                until: date | None = None) -> list[KpiSnapshot]:
        """Figures by day (then scope, KPI), optionally filtered."""
        path = KPI_SNAPSHOTS.path
        clauses: list[dict[str, Any]] = []
        if kpi_id is not None:
            clauses.append({"term": {path("kpi_id"): kpi_id}})
        if scope is not None:
            clauses.append({"term": {path("scope"): scope}})
        bounds = {op: day.isoformat() for op, day in (("gte", since), ("lte", until)) if day is not None}
        if bounds:
            clauses.append({"range": {path("as_of"): bounds}})
        sort = [{path("as_of"): "asc"}, {path("scope"): "asc"}, {path("kpi_id"): "asc"}]
        hits = self._ix.hits(KPI_SNAPSHOTS, {"bool": {"filter": clauses}}, sort=sort)
        return [KpiSnapshot.model_validate(KPI_SNAPSHOTS.values(hit["_source"])) for hit in hits]
