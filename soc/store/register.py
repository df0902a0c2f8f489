"""The register of information systems and anti-malware coverage, with full history, on SQLite.

Every import writes a new version of each record it changes (valid_from = when it was applied,
valid_to = when the next version replaced it), with who applied it and from which file. So the
register as it stood at any moment can be read back, and any past date's figures recomputed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import JSON, Column, Connection, Index, Integer, String, Table, Text, insert, or_, select, update

from soc.compliance.models import CoverageRecord, SystemRecord
from soc.models import utcnow
from soc.store.sqlite import SqliteStore, UTCDateTime, metadata


def _versions_table(name: str, key: str) -> Table:
    """A versioned record table: one row per version, valid_from inclusive, valid_to exclusive (None: current)."""
    return Table(
        name,
        metadata,
        Column("id", Integer(), primary_key=True, autoincrement=True),
        Column(key, String(64), nullable=False),
        Column("valid_from", UTCDateTime(), nullable=False),
        Column("valid_to", UTCDateTime(), nullable=True),
        Column("actor", Text(), nullable=False),
        Column("source", Text(), nullable=False),
        Column("data", JSON(), nullable=False),
    )


system_versions = _versions_table("system_versions", "system_id")
Index("ix_system_versions_system_id_valid_from", system_versions.c.system_id, system_versions.c.valid_from)
Index("ix_system_versions_valid_from_valid_to", system_versions.c.valid_from, system_versions.c.valid_to)
coverage_versions = _versions_table("coverage_versions", "agency")
Index("ix_coverage_versions_agency_valid_from", coverage_versions.c.agency, coverage_versions.c.valid_from)

Record = TypeVar("Record", SystemRecord, CoverageRecord)


class FieldChange(BaseModel):
    """One field of one record changed by one import."""

    key: str
    field: str
    old: Any = None
    new: Any = None


class RegisterChanges(BaseModel):
    """What applying a file changed."""

    added: list[str] = Field(default_factory=list)
    changed: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    fields: list[FieldChange] = Field(default_factory=list)
    """Field-level changes of the records that existed before (new records are listed in `added`)."""


class HistoryEntry(BaseModel):
    """One version of a record: when, who, from which file, and what changed from the previous one."""

    valid_from: datetime
    valid_to: datetime | None
    actor: str
    source: str
    changes: list[FieldChange]


class HistoryError(ValueError):
    """An import would rewrite history (its effective time is before a record's latest version)."""


def _diff(key: str, old: dict[str, Any] | None, new: dict[str, Any]) -> list[FieldChange]:
    if old is None:
        return [FieldChange(key=key, field=name, new=value) for name, value in new.items() if value not in (None, {})]
    return [FieldChange(key=key, field=name, old=old.get(name), new=value)
            for name, value in new.items() if old.get(name) != value]


class SqliteRegister:
    """The register's storage, sharing the findings store's database file and migrations."""

    def __init__(self, store: SqliteStore, clock: Callable[[], datetime] = utcnow) -> None:
        self._store = store
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
        with self._store.engine.connect() as conn:
            rows = conn.execute(select(system_versions).where(system_versions.c.system_id == system_id)
                                .order_by(system_versions.c.valid_from, system_versions.c.id)).mappings().all()
        history, previous = [], None
        for row in rows:
            history.append(HistoryEntry(valid_from=row["valid_from"], valid_to=row["valid_to"], actor=row["actor"],
                                        source=row["source"], changes=_diff(system_id, previous, row["data"])))
            previous = row["data"]
        return history

    def _as_of(self, table: Table, moment: datetime) -> list[dict[str, Any]]:
        with self._store.engine.connect() as conn:
            rows = conn.execute(
                select(table.c.data)
                .where(table.c.valid_from <= moment)
                .where(or_(table.c.valid_to.is_(None), table.c.valid_to > moment))
            ).scalars()
            return list(rows)

    def _apply(self, table: Table, key_column: str, items: Iterable[tuple[str, BaseModel]], actor: str,
               source: str, at: datetime | None) -> RegisterChanges:
        now = at or self._clock()
        changes = RegisterChanges()
        with self._store.writer.begin() as conn:
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
                    changes.fields += _diff(item_key, existing[2], data)
        return changes

    @staticmethod
    def _current(conn: Connection, table: Table, key_column: str) -> dict[str, tuple[int, datetime, Any]]:
        rows = conn.execute(select(table.c.id, table.c[key_column], table.c.valid_from, table.c.data)
                            .where(table.c.valid_to.is_(None)))
        return {row[1]: (row[0], row[2], row[3]) for row in rows}
