"""The data set of the API load benchmark: a store with N findings over 500 portals, a year of nightly runs.

The store is created (and migrated) by `open_backend`, then filled with SQLAlchemy Core bulk inserts into
the real tables (far faster than `record_portal`, which would take hours for a million findings). Values
look like a real province's after a year of scans: check ids, titles and severities from the catalogue,
statuses mixed (mostly resolved history), deadlines on most findings whose SLA clock ran, ~200-character
evidence, a few assignments and risk acceptances, one assessment per portal per night, and a register with
one information system per portal. `run_findings` and `finding_events` stay empty (the listing and KPI
endpoints do not read them).

Built files are cached under `.soc/bench/` (gitignored), keyed by size and the migrations' digest.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml
from sqlalchemy import event, insert

from checks.catalogue import catalogue
from soc.compliance.models import ApprovalStatus, RequirementStatus, SystemRecord
from soc.core.clock import LOCAL_ZONE
from soc.core.models import FindingStatus, Severity
from soc.store import open_backend
from soc.store.sqlite.schema import MIGRATIONS_DIR, create_engine_for, findings, portal_scans, scan_runs

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=LOCAL_ZONE)
"""The benchmark's fixed clock: the data set is dated relative to it, so a cached file never ages."""
AGENCIES = 100
HISTORY_DAYS = 365
FORMAT = 1
"""Bump when the generated values change, so cached files are rebuilt."""
BATCH = 50_000
CACHE_DIR = Path(".soc/bench")
PORTAL_PREFIXES = ("tls.", "http.", "ports.", "trustlabel.")
STATUS_WEIGHTS = {FindingStatus.OPEN: 30, FindingStatus.ACKNOWLEDGED: 8, FindingStatus.RESOLVED: 55,
                  FindingStatus.FALSE_POSITIVE: 4, FindingStatus.RISK_ACCEPTED: 3}
SLA_DAYS = {Severity.CRITICAL: 3, Severity.HIGH: 7, Severity.MEDIUM: 30, Severity.LOW: 90}
CIPHERS = ("ECDHE-RSA-AES128-SHA", "AES256-SHA", "DES-CBC3-SHA", "ECDHE-RSA-AES256-GCM-SHA384", "RC4-SHA")
ISSUERS = ("CN=R11,O=Let's Encrypt,C=US", "CN=GlobalSign GCC R6 AlphaSSL CA 2023,O=GlobalSign nv-sa,C=BE",
           "CN=VNPT Certification Authority,O=VNPT Group,C=VN", "CN=Sectigo RSA Domain Validation Secure Server CA")


@dataclass(frozen=True)
class Dataset:
    """A built store and what describes it."""

    db: Path
    portals: list[str]
    agencies: list[str]
    findings: int
    build_seconds: float
    """0 when the file came from the cache."""


def portal_url(index: int) -> str:
    """Portal n of the data set: a public-looking name that is never contacted (no scan runs in the bench)."""
    return f"https://p{index:03d}.dongnai.gov.vn/"


def agency_id(index: int) -> str:
    return f"ag{index:03d}"


def portal_agency(index: int) -> str:
    return agency_id(index % AGENCIES)


def system_id(index: int) -> str:
    return f"HT{index:04d}"


def write_inventory(path: Path, portals: int) -> None:
    """The inventory of the data set's agencies and portals (each portal in its register system)."""
    agencies = [{"id": agency_id(i), "name": f"Cơ quan {i:03d} tỉnh Đồng Nai", "name_en": f"Agency {i:03d}"}
                for i in range(AGENCIES)]
    items = [{"url": portal_url(i), "agency": portal_agency(i), "name": f"Cổng thông tin {i:03d}",
              "system": system_id(i)} for i in range(portals)]
    path.write_text(yaml.safe_dump({"agencies": agencies, "portals": items}, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")


def dataset(count: int, portals: int = 500, cache_dir: Path = CACHE_DIR, rebuild: bool = False) -> Dataset:
    """The cached store with `count` findings over `portals` portals, built first if missing."""
    urls = [portal_url(i) for i in range(portals)]
    agencies = [agency_id(i) for i in range(AGENCIES)]
    db = cache_dir / f"api_load-{count}-{portals}-s{_schema_digest()}-f{FORMAT}.db"
    if db.exists() and not rebuild:
        return Dataset(db, urls, agencies, count, 0.0)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = db.with_name(db.name + ".part")
    for stale in (partial, partial.with_name(partial.name + "-wal"), partial.with_name(partial.name + "-shm")):
        stale.unlink(missing_ok=True)
    started = time.perf_counter()
    _build(partial, count, portals)
    os.replace(partial, db)  # only a finished build is ever reused
    return Dataset(db, urls, agencies, count, time.perf_counter() - started)


def _schema_digest() -> str:
    """Short digest of the migrations: a cached store made by other migrations (even an edited one) is not reused."""
    digest = hashlib.sha256()
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:10]


def _build(path: Path, count: int, portals: int) -> None:
    backend = open_backend(path)  # creates the file and runs the migrations
    try:
        backend.register.apply_systems(_systems(portals), actor="bench", source="register-2026.xlsx",
                                       at=NOW - timedelta(days=200))
    finally:
        backend.close()
    rng = random.Random(15)
    runs = _runs(portals, rng)
    engine = create_engine_for(path)
    event.listen(engine, "connect", _bulk_pragmas)
    try:
        with engine.begin() as conn:
            conn.execute(insert(scan_runs), runs)
        for batch in _chunks(_assessments(runs, portals, rng)):
            with engine.begin() as conn:
                conn.execute(insert(portal_scans), batch)
        for batch in _chunks(_findings(count, portals, runs, rng)):
            with engine.begin() as conn:
                conn.execute(insert(findings), batch)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()


def _bulk_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """A build that dies is thrown away, so it needs no fsync; 1 GB of cache keeps random index inserts fast."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA synchronous = OFF")
        cursor.execute("PRAGMA cache_size = -1000000")
    finally:
        cursor.close()


def _systems(portals: int) -> list[SystemRecord]:
    rng = random.Random(16)
    records = []
    for i in range(portals):
        level = rng.choice([1, 2, 2, 3, 3, 4])
        approved = rng.random() < 0.6
        records.append(SystemRecord(
            id=system_id(i), name=f"Cổng thông tin điện tử {i:03d}", agency=portal_agency(i), proposed_level=level,
            approved_level=level if approved else None,
            status=ApprovalStatus.APPROVED if approved else ApprovalStatus.SUBMITTED,
            decision_number=f"{rng.randint(1, 999)}/QĐ-UBND" if approved else None,
            decision_date=(NOW - timedelta(days=rng.randint(220, 900))).date() if approved else None,
            in_operation=True, handles_admin_procedures=rng.random() < 0.3,
            requirements=RequirementStatus.MET if rng.random() < 0.5 else RequirementStatus.PARTLY,
            requirements_assessed=(NOW - timedelta(days=rng.randint(200, 400))).date()))
    return records


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _runs(portals: int, rng: random.Random) -> list[dict[str, Any]]:
    """One complete nightly run (01:00 local) per day of the history, oldest first."""
    last = NOW.replace(hour=1, minute=0)
    runs = []
    for back in range(HISTORY_DAYS - 1, -1, -1):
        started = (last - timedelta(days=back)).astimezone(UTC)
        runs.append({"id": UUID(int=rng.getrandbits(128)).hex, "started_at": started,
                     "finished_at": started + timedelta(minutes=rng.randint(40, 90)), "status": "complete",
                     "inventory": "/etc/soc/inventory.yaml", "portal_count": portals, "portals_done": portals})
    return runs


def _assessments(runs: list[dict[str, Any]], portals: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    for run in runs:
        for i in range(portals):
            grade = rng.choices(["A", "B", "C", "F", "T"], [30, 35, 20, 10, 5])[0]
            complete = rng.random() > 0.03
            yield {"run_id": run["id"], "portal_url": portal_url(i),
                   "recorded_at": run["started_at"] + timedelta(seconds=5 * i + rng.random()),
                   "collectors": {"tls": complete, "http": True, "label": True, "ports": True},
                   "tls_grade": grade, "grade_without_trust": "B" if grade == "T" else None,
                   "score": rng.randint(35, 100), "category_scores": {"tls": rng.randint(40, 100),
                                                                       "http": rng.randint(40, 100)},
                   "reasons": [] if grade == "A" else ["giới hạn B: TLS 1.0 được bật / capped at B: TLS 1.0 enabled"],
                   "label_valid": rng.random() < 0.7}


def _findings(count: int, portals: int, runs: list[dict[str, Any]], rng: random.Random) -> Iterator[dict[str, Any]]:
    checks = [spec for check_id, spec in catalogue().items() if check_id.startswith(PORTAL_PREFIXES)]
    statuses, weights = list(STATUS_WEIGHTS), list(STATUS_WEIGHTS.values())
    now = NOW.astimezone(UTC)
    for n in range(count):
        index = n % portals
        url, spec = portal_url(index), rng.choice(checks)
        detail = f"{spec.id.split('.')[0]}-{n // portals:06d}"
        status = rng.choices(statuses, weights)[0]
        first = rng.randrange(len(runs))
        last = len(runs) - 1 if status is not FindingStatus.RESOLVED else rng.randrange(first, len(runs))
        first_seen, last_seen = runs[first]["started_at"] + timedelta(seconds=5 * index), \
            runs[last]["started_at"] + timedelta(seconds=5 * index)
        resolved_at = min(last_seen + timedelta(days=1), now) if status is FindingStatus.RESOLVED else None
        due_at = warn_at = None
        days = SLA_DAYS.get(spec.severity)
        if days is not None and (status is FindingStatus.RESOLVED or rng.random() < 0.8):
            due_at = first_seen + timedelta(days=days)
            warn_at = due_at - timedelta(days=days / 4)
        host = url.split("/")[2]
        evidence = (f"{host}:443 — {spec.title.en}; negotiated {rng.choice(CIPHERS)}, certificate serial "
                    f"{rng.getrandbits(64):016x} issued by {rng.choice(ISSUERS)}, seen {last_seen:%Y-%m-%d %H:%M} UTC")
        yield {
            "fingerprint": hashlib.sha256(f"{url}\x1f{spec.id}\x1f{detail}".encode()).hexdigest()[:32],
            "portal_url": url, "check_id": spec.id, "severity": spec.severity.value,
            "title_vi": spec.title.vi, "title_en": spec.title.en, "evidence": evidence.ljust(200, "."),
            "remediation_vi": spec.remediation.vi, "remediation_en": spec.remediation.en, "detail": detail,
            "status": status.value, "first_seen": first_seen, "last_seen": last_seen, "resolved_at": resolved_at,
            "last_run_id": runs[last]["id"],
            "status_note": {FindingStatus.FALSE_POSITIVE: "WAF trả lời thay máy chủ / the WAF answers for the server",
                            FindingStatus.RISK_ACCEPTED: "chờ thay thiết bị / waiting for the new appliance",
                            FindingStatus.RESOLVED: "no longer seen by a complete scan"}.get(status),
            "opened_at": first_seen, "due_at": due_at, "warn_at": warn_at,
            "assignee": agency_id(rng.randrange(AGENCIES)) if rng.random() < 0.05 else None,
            "risk_expires": now + timedelta(days=rng.randint(1, 300)) if status is FindingStatus.RISK_ACCEPTED
            else None,
            "risk_approver": "Giám đốc Sở / Director" if status is FindingStatus.RISK_ACCEPTED else None,
        }
