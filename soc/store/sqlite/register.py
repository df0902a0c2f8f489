"""The register of information systems and anti-malware coverage, bitemporal, on SQLite: an import's plan
(`soc.store.bitemporal`) carried out in one transaction."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, Table, func, insert, or_, select, update

from soc.compliance.history import Finish, HistoryEntry, RegisterChanges, field_changes, keep_record
from soc.compliance.models import CoverageRecord, SystemRecord
from soc.core.clock import SYSTEM_CLOCK, Clock, start_of_day
from soc.core.errors import ProblemsError
from soc.store.bitemporal import Version, plan_import
from soc.store.sqlite.schema import BEGIN_OPTION, coverage_versions, system_versions


class SqliteRegister:
    """The `RegisterStore` protocol on the backend's SQLite database."""

    def __init__(self, engine: Engine, clock: Clock = SYSTEM_CLOCK) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})
        self._clock = clock

    def apply_systems(self, records: Sequence[SystemRecord], actor: str, source: str,
                      at: datetime | None = None, present: Collection[str] | None = None,
                      finish: Finish = keep_record) -> RegisterChanges:
        """Apply a file's systems atomically, effective `at` (default now); systems not in the file stay.

        `present`: the file's columns (absent ones keep stored values; None: all). `finish` completes each
        merged record; any problem it reports refuses the whole file (ProblemsError, nothing written).
        """
        return self._apply(system_versions, "system_id", [(r.id, r, at) for r in records], actor, source,
                           present, finish)

    def apply_coverage(self, records: Sequence[CoverageRecord], actor: str, source: str,
                       at: datetime | None = None, present: Collection[str] | None = None) -> RegisterChanges:
        """Apply an anti-malware coverage file atomically (one record per agency), effective on each record's
        own "as of" date, else `at`."""
        items = [(r.agency, r, start_of_day(r.as_of) if r.as_of else at) for r in records]
        return self._apply(coverage_versions, "agency", items, actor, source, present, keep_record)

    def systems_as_of(self, moment: datetime, known_at: datetime | None = None) -> list[SystemRecord]:
        """The register as it stood at `moment`, as known at `known_at` (default: now)."""
        return [SystemRecord.model_validate(data) for data in self._as_of(system_versions, moment, known_at)]

    def coverage_as_of(self, moment: datetime, known_at: datetime | None = None) -> list[CoverageRecord]:
        """Anti-malware coverage as it stood at `moment`, as known at `known_at` (default: now)."""
        return [CoverageRecord.model_validate(data) for data in self._as_of(coverage_versions, moment, known_at)]

    def data_since(self, known_at: datetime | None = None) -> dict[str, datetime]:
        """Agency → the earliest moment the register (systems or coverage) has any data for it."""
        earliest: dict[str, datetime] = {}
        with self._engine.connect() as conn:
            for table in (system_versions, coverage_versions):
                rows = conn.execute(select(table.c.data["agency"].as_string(), func.min(table.c.valid_from))
                                    .where(*self._known(table, known_at)).group_by(table.c.data["agency"]))
                for agency, first in rows:
                    if agency is not None and first is not None and (agency not in earliest
                                                                     or first < earliest[agency]):
                        earliest[agency] = first
        return earliest

    def system_history(self, system_id: str) -> list[HistoryEntry]:
        """Every version of one system as believed now, in valid-time order, with what each changed."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(system_versions).where(system_versions.c.system_id == system_id)
                                .where(system_versions.c.superseded_at.is_(None))
                                .order_by(system_versions.c.valid_from, system_versions.c.id)).mappings().all()
        history, previous = [], None
        for row in rows:
            history.append(HistoryEntry(valid_from=row["valid_from"], valid_to=row["valid_to"],
                                        recorded_at=row["recorded_at"], actor=row["actor"], source=row["source"],
                                        changes=field_changes(system_id, previous, row["data"])))
            previous = row["data"]
        return history

    def _known(self, table: Table, known_at: datetime | None) -> list[Any]:
        if known_at is None:
            return [table.c.superseded_at.is_(None)]
        return [table.c.recorded_at <= known_at,
                or_(table.c.superseded_at.is_(None), table.c.superseded_at > known_at)]

    def _as_of(self, table: Table, moment: datetime, known_at: datetime | None) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(table.c.data)
                .where(*self._known(table, known_at))
                .where(table.c.valid_from <= moment)
                .where(or_(table.c.valid_to.is_(None), table.c.valid_to > moment))
            ).scalars()
            return list(rows)

    def _apply(self, table: Table, key_column: str, items: Sequence[tuple[str, BaseModel, datetime | None]],
               actor: str, source: str, present: Collection[str] | None, finish: Finish) -> RegisterChanges:
        with self._writer.begin() as conn:
            known = self._believed(conn, table, key_column, [key for key, _, _ in items])
            plan = plan_import(items, known, actor, source, self._clock.now(), present, finish)
            if plan.problems:
                raise ProblemsError(plan.problems)  # rolls the transaction back: nothing of the file is kept
            if plan.supersede:
                conn.execute(update(table).where(table.c.id.in_(plan.supersede)).values(superseded_at=plan.recorded))
            for row in plan.insert:
                values = dict(row)
                values[key_column] = values.pop("key")
                conn.execute(insert(table).values(values))
        return plan.changes

    @staticmethod
    def _believed(conn: Connection, table: Table, key_column: str, keys: Sequence[str]) -> dict[str, list[Version]]:
        """The versions believed now of each key, in valid-time order."""
        found: dict[str, list[Version]] = {}
        wanted = sorted(set(keys))
        for start in range(0, len(wanted), 500):  # SQLite's bound-parameter limit
            rows = conn.execute(select(table.c.id, table.c[key_column], table.c.valid_from, table.c.valid_to,
                                       table.c.data, table.c.actor, table.c.source)
                                .where(table.c.superseded_at.is_(None))
                                .where(table.c[key_column].in_(wanted[start:start + 500]))
                                .order_by(table.c.valid_from))
            for row in rows:
                found.setdefault(row[1], []).append(Version(row[0], row[2], row[3], row[4], row[5], row[6]))
        return found
