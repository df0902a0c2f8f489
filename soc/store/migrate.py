"""`soc store migrate --to search`: copy the SOC data of an embedded store into the search cluster.

Table by table, in batches read in primary-key order. Every document gets the id the search backend
itself would give it (or `sqlite-<row id>` for rows with a number only), so a batch copied twice is
written twice, never duplicated. After each batch the checkpoint (a JSON file next to the database,
written atomically) records the last key copied: an interrupted copy resumes after it. At the end
each index is compared with its table: the number of documents, and a checksum of their contents
(the sum of SHA-256 digests of each document in canonical JSON, which does not depend on order).
Users, tokens, the audit trail and jobs are not copied: they stay in the SQLite file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Select, Table, select, tuple_

from soc.core.files import atomic_write_text
from soc.store.errors import StoreError
from soc.store.search.indices import SearchIndices, iso
from soc.store.search.shapes import (
    CLAIMS,
    COVERAGE_VERSIONS,
    DRILL_ACTIONS,
    DRILL_EVENTS,
    DRILL_SESSIONS,
    FINDING_EVENTS,
    FINDINGS,
    KPI_SNAPSHOTS,
    OBSERVATIONS,
    PORTAL_SCANS,
    REPORTS,
    RUN_FINDINGS,
    RUNS,
    SYSTEM_VERSIONS,
    Shape,
)
from soc.store.sqlite import schema

BATCH = 1000
_MOD = 2**256


def _plain(value: Any) -> Any:
    """A column's value as the documents keep it."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def _url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Copy:
    """How one table becomes one index: its rows in key order, each row's document id, values and month."""

    name: str
    table: Table
    shape: Shape
    key: tuple[str, ...]
    doc_id: Callable[[Mapping[str, Any]], str]
    values: Callable[[dict[str, Any]], dict[str, Any]] = lambda row: row
    month: Callable[[Mapping[str, Any]], datetime | None] = lambda row: None
    joined: bool = False
    """Rows carry `run_started` (the run's start: the month of their index)."""
    unique: tuple[str, ...] = ()
    """Model fields that tell the documents apart (default: `key`)."""

    def __post_init__(self) -> None:
        if not self.unique:
            object.__setattr__(self, "unique", self.key)

    def rows(self, engine: Engine, after: Sequence[Any] | None, limit: int) -> list[dict[str, Any]]:
        columns = [self.table.c[name] for name in self.key]
        stmt: Select[Any]
        if self.joined:
            runs = schema.scan_runs
            stmt = select(self.table, runs.c.started_at.label("run_started")).join(
                runs, runs.c.id == self.table.c.run_id)
        else:
            stmt = select(self.table)
        if after is not None:
            stmt = stmt.where(tuple_(*columns) > tuple_(*after)) if len(columns) > 1 else stmt.where(
                columns[0] > after[0])
        stmt = stmt.order_by(*columns).limit(limit)
        with engine.connect() as conn:
            return [dict(row) for row in conn.execute(stmt).mappings()]

    def count(self, engine: Engine) -> int:
        from sqlalchemy import func

        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(self.table)).scalar_one())

    def document(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return self.shape.document(self.values({name: _plain(value) for name, value in row.items()}))


def _run_month(row: Mapping[str, Any]) -> datetime | None:
    started = row.get("run_started")
    return started if isinstance(started, datetime) else None


def _version(key_column: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def values(row: dict[str, Any]) -> dict[str, Any]:
        return row | {"key": row[key_column], "sequence": row["id"]}
    return values


COPIES: tuple[Copy, ...] = (
    Copy("runs", schema.scan_runs, RUNS, ("id",), lambda row: str(row["id"])),
    Copy("findings", schema.findings, FINDINGS, ("fingerprint",), lambda row: str(row["fingerprint"])),
    Copy("finding-events", schema.finding_events, FINDING_EVENTS, ("id",), lambda row: f"sqlite-{row['id']}",
         values=lambda row: row | {"sequence": row["id"]}, month=lambda row: row["at"], unique=("sequence",)),
    Copy("run-findings", schema.run_findings, RUN_FINDINGS, ("run_id", "fingerprint"),
         lambda row: f"{row['run_id']}:{row['fingerprint']}", month=_run_month, joined=True),
    Copy("observations", schema.observations, OBSERVATIONS, ("id",), lambda row: f"sqlite-{row['id']}",
         values=lambda row: row | {"sequence": row["id"]}, month=_run_month, joined=True, unique=("sequence",)),
    Copy("portal-scans", schema.portal_scans, PORTAL_SCANS, ("run_id", "portal_url"),
         lambda row: f"{row['run_id']}:{_url_key(str(row['portal_url']))}", month=_run_month, joined=True),
    Copy("claims", schema.claims, CLAIMS, ("key",), lambda row: str(row["key"])),
    Copy("register-systems", schema.system_versions, SYSTEM_VERSIONS, ("id",), lambda row: f"sqlite-{row['id']}",
         values=_version("system_id"), unique=("sequence",)),
    Copy("register-coverage", schema.coverage_versions, COVERAGE_VERSIONS, ("id",),
         lambda row: f"sqlite-{row['id']}", values=_version("agency"), unique=("sequence",)),
    Copy("drill-sessions", schema.drill_sessions, DRILL_SESSIONS, ("id",), lambda row: str(row["id"])),
    Copy("drill-events", schema.drill_events, DRILL_EVENTS, ("session_id", "seq"),
         lambda row: f"{row['session_id']}:{row['seq']}"),
    Copy("drill-actions", schema.drill_actions, DRILL_ACTIONS, ("id",), lambda row: str(row["id"])),
    Copy("reports", schema.reports, REPORTS, ("id",), lambda row: str(row["id"])),
    Copy("kpis", schema.kpi_snapshots, KPI_SNAPSHOTS, ("as_of", "scope", "kpi_id"),
         lambda row: f"{row['as_of']}:{row['scope']}:{row['kpi_id']}"),
)


def digest(document: Mapping[str, Any]) -> int:
    """One document's contribution to an index's checksum."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return int.from_bytes(hashlib.sha256(canonical.encode()).digest(), "big")


@dataclass
class Checkpoint:
    """Where a migration stands: per table, the last key copied, whether it is done, its running checksum."""

    path: Path
    target: str
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, target: str) -> Checkpoint:
        if not path.exists():
            return cls(path, target)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StoreError(f"{path}: the migration checkpoint cannot be read ({exc}); delete it to start "
                             "again (`--restart`)") from exc
        if data.get("target") != target:
            raise StoreError(f"{path}: a migration to {data.get('target')!r} was begun, not to {target!r}; "
                             "finish it, or start again with --restart")
        return cls(path, target, dict(data.get("tables", {})))

    def save(self) -> None:
        atomic_write_text(self.path, json.dumps({"target": self.target, "tables": self.tables}, indent=1))


@dataclass(frozen=True)
class TableResult:
    """One table compared with its index after the copy."""

    name: str
    rows: int
    documents: int
    checksum_equal: bool

    @property
    def ok(self) -> bool:
        return self.rows == self.documents and self.checksum_equal


def migrate(engine: Engine, indices: SearchIndices, checkpoint: Checkpoint, *, batch: int = BATCH,
            progress: Callable[[str, int, int], None] | None = None) -> list[TableResult]:
    """Copy every table (resuming after the checkpoint), then compare counts and checksums."""
    indices.setup()
    for copy in COPIES:
        state = checkpoint.tables.setdefault(copy.name, {"after": None, "done": False, "copied": 0, "sum": "0"})
        total = copy.count(engine)
        if progress is not None:
            progress(copy.name, int(state["copied"]), total)
        while not state["done"]:
            rows = copy.rows(engine, state["after"], batch)
            actions = [{"_op_type": "index", "_index": indices.write(copy.shape, copy.month(row)),
                        "_id": copy.doc_id(row), "_source": copy.document(row)} for row in rows]
            indices.bulk_or_raise(actions)
            if rows:
                state["after"] = [_plain(rows[-1][name]) for name in copy.key]
                state["copied"] = int(state["copied"]) + len(rows)
            state["done"] = len(rows) < batch
            checkpoint.save()
            if progress is not None:
                progress(copy.name, int(state["copied"]), total)
    indices.refresh(*(copy.shape for copy in COPIES))
    return [verify(engine, indices, copy) for copy in COPIES]


def verify(engine: Engine, indices: SearchIndices, copy: Copy) -> TableResult:
    """Count and checksum of a table's documents as made from it now, and of its index as read back."""
    expected, rows = 0, 0
    after: Sequence[Any] | None = None
    while True:
        page = copy.rows(engine, after, BATCH)
        for row in page:
            expected = (expected + digest(copy.document(row))) % _MOD
        rows += len(page)
        if len(page) < BATCH:
            break
        after = [_plain(page[-1][name]) for name in copy.key]
    found, documents = 0, 0
    for hit in _every(indices, copy):
        found = (found + digest(hit["_source"])) % _MOD
        documents += 1
    return TableResult(copy.name, rows, documents, expected == found)


def _every(indices: SearchIndices, copy: Copy) -> Iterator[dict[str, Any]]:
    """Every document of the table's index, in the order of its unique document fields (search_after needs a
    total order, and sorting on `_id` is off by default in Elasticsearch 8)."""
    sort = [{copy.shape.path(name): "asc"} for name in copy.unique]
    yield from indices.hits(copy.shape, {"match_all": {}}, sort=sort)
