"""The daily KPI figures on SQLite."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import Engine, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from soc.compliance.kpi import KpiSnapshot
from soc.store.sqlite.schema import BEGIN_OPTION, kpi_snapshots


class SqliteKpiHistory:
    """The `KpiHistory` protocol on the backend's SQLite database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})

    def record(self, snapshots: Sequence[KpiSnapshot]) -> int:
        """Keep a day's figures, replacing those of the same day, scope and KPI."""
        if not snapshots:
            return 0
        rows = [item.model_dump(mode="python") | {"as_of": item.as_of.isoformat()} for item in snapshots]
        statement = sqlite_insert(kpi_snapshots)
        keys = {"as_of", "scope", "kpi_id"}
        statement = statement.on_conflict_do_update(
            index_elements=sorted(keys), set_={name: statement.excluded[name] for name in rows[0] if name not in keys})
        with self._writer.begin() as conn:
            conn.execute(statement, rows)
        return len(rows)

    def history(self, kpi_id: str | None = None, scope: str | None = None, since: date | None = None,
                until: date | None = None) -> list[KpiSnapshot]:
        """Figures by day (then scope, KPI), optionally filtered."""
        table = kpi_snapshots.c
        stmt = select(kpi_snapshots)
        if kpi_id is not None:
            stmt = stmt.where(table.kpi_id == kpi_id)
        if scope is not None:
            stmt = stmt.where(table.scope == scope)
        if since is not None:
            stmt = stmt.where(table.as_of >= since.isoformat())
        if until is not None:
            stmt = stmt.where(table.as_of <= until.isoformat())
        stmt = stmt.order_by(table.as_of, table.scope, table.kpi_id)
        with self._engine.connect() as conn:
            return [KpiSnapshot.model_validate(dict(row)) for row in conn.execute(stmt).mappings()]
