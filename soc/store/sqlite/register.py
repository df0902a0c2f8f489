"""The register of information systems and anti-malware coverage, with full history, on SQLite.

Every import writes a new version of each record it changes (valid_from = when it was applied,
valid_to = when the next version replaced it), with who applied it and from which file. So the
register as it stood at any moment can be read back, and any past date's figures recomputed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, Table, insert, or_, select, update

from soc.compliance.history import HistoryEntry, HistoryError, RegisterChanges, field_changes
from soc.compliance.models import CoverageRecord, SystemRecord
from soc.core.clock import SYSTEM_CLOCK, Clock
from soc.store.sqlite.schema import BEGIN_OPTION, coverage_versions, system_versions


class SqliteRegister:
    """The `RegisterStore` protocol on the backend's SQLite database."""

    def __init__(self, engine: Engine, clock: Clock = SYSTEM_CLOCK) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})
        self._clock = clock

    def apply_systems(self, records: Sequence[SystemRecord], actor: str, source: str,
                      at: datetime | None = None) -> RegisterChanges:
        """Apply a file's systems atomically: new versions for what changed; systems not in the file stay."""
        return self._apply(system_versions, "system_id", [(r.id, r) for r in records], actor, source, at)

    def apply_coverage(self, records: Sequence[CoverageRecord], actor: str, source: str,
                       at: datetime | None = None) -> RegisterChanges:
        """Apply an anti-malware coverage file atomically (one current record per agency)."""
        return self._apply(coverage_versions, "agency", [(r.agency, r) for r in records], actor, source, at)

    def systems_as_of(self, moment: datetime) -> list[SystemRecord]:
        """The register as it stood at `moment`."""
        return [SystemRecord.model_validate(data) for data in self._as_of(system_versions, moment)]

    def coverage_as_of(self, moment: datetime) -> list[CoverageRecord]:
        """Anti-malware coverage as it stood at `moment`."""
        return [CoverageRecord.model_validate(data) for data in self._as_of(coverage_versions, moment)]

    def system_history(self, system_id: str) -> list[HistoryEntry]:
        """Every version of one system, oldest first, with what each changed."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(system_versions).where(system_versions.c.system_id == system_id)
                                .order_by(system_versions.c.valid_from, system_versions.c.id)).mappings().all()
        history, previous = [], None
        for row in rows:
            history.append(HistoryEntry(valid_from=row["valid_from"], valid_to=row["valid_to"], actor=row["actor"],
                                        source=row["source"], changes=field_changes(system_id, previous, row["data"])))
            previous = row["data"]
        return history

    def _as_of(self, table: Table, moment: datetime) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(table.c.data)
                .where(table.c.valid_from <= moment)
                .where(or_(table.c.valid_to.is_(None), table.c.valid_to > moment))
            ).scalars()
            return list(rows)

    def _apply(self, table: Table, key_column: str, items: Iterable[tuple[str, BaseModel]], actor: str,
               source: str, at: datetime | None) -> RegisterChanges:
        now = at or self._clock.now()
        changes = RegisterChanges()
        with self._writer.begin() as conn:
            current = self._current(conn, table, key_column)
            for item_key, record in items:
                data = record.model_dump(mode="json")
                existing = current.get(item_key)
                if existing is not None and existing[1] > now:
                    raise HistoryError(f"{item_key}: has a version from {existing[1].isoformat()}, after {now}")
                if existing is not None and existing[2] == data:
                    changes.unchanged.append(item_key)
                    continue
                if existing is not None:
                    conn.execute(update(table).where(table.c.id == existing[0]).values(valid_to=now))
                conn.execute(insert(table).values({key_column: item_key, "valid_from": now, "valid_to": None,
                                                   "actor": actor, "source": source, "data": data}))
                if existing is None:
                    changes.added.append(item_key)
                else:
                    changes.changed.append(item_key)
                    changes.fields += field_changes(item_key, existing[2], data)
        return changes

    @staticmethod
    def _current(conn: Connection, table: Table, key_column: str) -> dict[str, tuple[int, datetime, Any]]:
        rows = conn.execute(select(table.c.id, table.c[key_column], table.c.valid_from, table.c.data)
                            .where(table.c.valid_to.is_(None)))
        return {row[1]: (row[0], row[2], row[3]) for row in rows}
