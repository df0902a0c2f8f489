"""The bitemporal register on a search cluster: an import's plan (`soc.store.bitemporal`) written in one bulk.

Without transactions, the plan's new versions are written first and the superseded ones marked after;
a reader in between may see a version twice for a moment, never none. Two imports of the same file at
once are not serialised (the SQLite store serialises them): the register is imported by hand, rarely.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from pydantic import BaseModel

from soc.compliance.history import Finish, HistoryEntry, RegisterChanges, field_changes, keep_record
from soc.compliance.models import CoverageRecord, SystemRecord
from soc.core.clock import SYSTEM_CLOCK, Clock, start_of_day
from soc.core.errors import ProblemsError
from soc.store.bitemporal import Version, plan_import
from soc.store.search.indices import SearchIndices, iso
from soc.store.search.shapes import COVERAGE_VERSIONS, SYSTEM_VERSIONS, Shape


def _when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class SearchRegister:
    """The `RegisterStore` protocol on a search cluster."""

    def __init__(self, indices: SearchIndices, clock: Clock = SYSTEM_CLOCK) -> None:
        self._ix = indices
        self._clock = clock

    def apply_systems(self, records: Sequence[SystemRecord], actor: str, source: str,
                      at: datetime | None = None, present: Collection[str] | None = None,
                      finish: Finish = keep_record) -> RegisterChanges:
        """Apply a file's systems, effective `at` (default now); a problem refuses the whole file."""
        return self._apply(SYSTEM_VERSIONS, [(r.id, r, at) for r in records], actor, source, present, finish)

    def apply_coverage(self, records: Sequence[CoverageRecord], actor: str, source: str,
                       at: datetime | None = None, present: Collection[str] | None = None) -> RegisterChanges:
        """Apply an anti-malware coverage file (one record per agency), effective on each record's "as of"."""
        items = [(r.agency, r, start_of_day(r.as_of) if r.as_of else at) for r in records]
        return self._apply(COVERAGE_VERSIONS, items, actor, source, present, keep_record)

    def systems_as_of(self, moment: datetime, known_at: datetime | None = None) -> list[SystemRecord]:
        """The register as it stood at `moment`, as known at `known_at` (default: now)."""
        return [SystemRecord.model_validate(data) for data in self._as_of(SYSTEM_VERSIONS, moment, known_at)]

    def coverage_as_of(self, moment: datetime, known_at: datetime | None = None) -> list[CoverageRecord]:
        """Anti-malware coverage as it stood at `moment`, as known at `known_at` (default: now)."""
        return [CoverageRecord.model_validate(data) for data in self._as_of(COVERAGE_VERSIONS, moment, known_at)]

    def data_since(self, known_at: datetime | None = None) -> dict[str, datetime]:
        """Agency → the earliest moment the register (systems or coverage) has any data for it."""
        earliest: dict[str, datetime] = {}
        for shape in (SYSTEM_VERSIONS, COVERAGE_VERSIONS):
            aggs = {"a": {"terms": {"field": "organization.id", "size": 10_000},
                          "aggs": {"first": {"min": {"field": shape.path("valid_from")}}}}}
            answer = self._ix.search(shape, self._known(shape, known_at), size=0, aggs=aggs)
            for bucket in answer["aggregations"]["a"]["buckets"]:
                first = bucket["first"].get("value_as_string") or None
                if first is None:
                    continue
                moment = datetime.fromisoformat(first.replace("Z", "+00:00")).astimezone(UTC)
                agency = str(bucket["key"])
                if agency not in earliest or moment < earliest[agency]:
                    earliest[agency] = moment
        return earliest

    def system_history(self, system_id: str) -> list[HistoryEntry]:
        """Every version of one system as believed now, in valid-time order, with what each changed."""
        history, previous = [], None
        for version, row in self._believed(SYSTEM_VERSIONS, [system_id]).get(system_id, []):
            history.append(HistoryEntry(valid_from=version.valid_from, valid_to=version.valid_to,
                                        recorded_at=row["recorded_at"], actor=version.actor, source=version.source,
                                        changes=field_changes(system_id, previous, version.data)))
            previous = version.data
        return history

    # --- internals ------------------------------------------------------------------------------------------

    def _known(self, shape: Shape, known_at: datetime | None) -> dict[str, Any]:
        superseded = shape.path("superseded_at")
        if known_at is None:
            return {"bool": {"must_not": [{"exists": {"field": superseded}}]}}
        return {"bool": {"filter": [
            {"range": {shape.path("recorded_at"): {"lte": iso(known_at)}}},
            {"bool": {"should": [{"bool": {"must_not": [{"exists": {"field": superseded}}]}},
                                 {"range": {superseded: {"gt": iso(known_at)}}}], "minimum_should_match": 1}}]}}

    def _as_of(self, shape: Shape, moment: datetime, known_at: datetime | None) -> list[dict[str, Any]]:
        valid_to = shape.path("valid_to")
        query = {"bool": {"filter": [
            self._known(shape, known_at),
            {"range": {shape.path("valid_from"): {"lte": iso(moment)}}},
            {"bool": {"should": [{"bool": {"must_not": [{"exists": {"field": valid_to}}]}},
                                 {"range": {valid_to: {"gt": iso(moment)}}}], "minimum_should_match": 1}}]}}
        sort = [{shape.path("key"): "asc"}, {shape.path("sequence"): "asc"}]
        return [shape.values(hit["_source"])["data"] for hit in self._ix.hits(shape, query, sort=sort)]

    def _believed(self, shape: Shape, keys: Sequence[str]) -> dict[str, list[tuple[Version, dict[str, Any]]]]:
        """The versions believed now of each key, in valid-time order (with their stored values)."""
        found: dict[str, list[tuple[Version, dict[str, Any]]]] = {}
        wanted = sorted(set(keys))
        sort = [{shape.path("valid_from"): "asc"}, {shape.path("sequence"): "asc"}]
        for start in range(0, len(wanted), 1000):
            query = {"bool": {"filter": [{"terms": {shape.path("key"): wanted[start:start + 1000]}},
                                         self._known(shape, None)]}}
            for hit in self._ix.hits(shape, query, sort=sort):
                row = shape.values(hit["_source"])
                version = Version(hit["_id"], datetime.fromisoformat(row["valid_from"]), _when(row["valid_to"]),
                                  row["data"], row["actor"], row["source"])
                found.setdefault(row["key"], []).append((version, row | {"_seq": hit}))
        return found

    def _apply(self, shape: Shape, items: Sequence[tuple[str, BaseModel, datetime | None]], actor: str, source: str,
               present: Collection[str] | None, finish: Finish) -> RegisterChanges:
        believed = self._believed(shape, [key for key, _, _ in items])
        known = {key: [version for version, _ in rows] for key, rows in believed.items()}
        stored = {version.id: row for rows in believed.values() for version, row in rows}
        plan = plan_import(items, known, actor, source, self._clock.now(), present, finish)
        if plan.problems:
            raise ProblemsError(plan.problems)
        index = self._ix.read(shape)
        actions: list[dict[str, Any]] = []
        for row in plan.insert:
            values = row | {"recorded_at": iso(row["recorded_at"]), "valid_from": iso(row["valid_from"]),
                            "valid_to": iso(row["valid_to"]) if row["valid_to"] else None,
                            "superseded_at": None, "sequence": self._ix.sequence()}
            actions.append({"_op_type": "create", "_index": index, "_id": uuid4().hex,
                            "_source": shape.document(values)})
        self._ix.bulk_or_raise(actions)
        superseded = []
        for version_id in plan.supersede:
            row = {k: v for k, v in stored[version_id].items() if k != "_seq"}
            hit = stored[version_id]["_seq"]
            superseded.append({"_op_type": "index", "_index": hit["_index"], "_id": version_id,
                               "_source": shape.document(row | {"superseded_at": iso(plan.recorded)})})
        self._ix.bulk_or_raise(superseded, refresh="wait_for")
        if not superseded:
            self._ix.refresh(shape)
        return plan.changes
