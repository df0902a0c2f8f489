"""Tests of the embedded SQLite store: lifecycle, atomicity, migrations, time handling."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import StatementError

from soc.core.clock import SYSTEM_CLOCK, Clock, FixedClock
from soc.core.models import (
    Finding,
    FindingStatus,
    Observation,
    RunStatus,
    Severity,
    StoredFinding,
)
from soc.store import FindingStore, StoreError, open_backend
from soc.store.sqlite import SqliteBackend, SqliteFindingStore
from soc.store.sqlite.schema import UTCDateTime, alembic_config, metadata

PORTAL_A = "https://a.example/"
PORTAL_B = "https://b.example/"
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
ICT = timezone(timedelta(hours=7), "ICT")


@contextmanager
def opened(path: Path, clock: Clock = SYSTEM_CLOCK) -> Iterator[SqliteFindingStore]:
    """The findings store of an SQLite backend on `path`, closed on exit."""
    with SqliteBackend(path, clock) as backend:
        yield backend.findings


@contextmanager
def open_store(location: str | Path) -> Iterator[FindingStore]:
    """The findings store chosen by the backend factory."""
    backend = open_backend(location)
    try:
        yield backend.findings
    finally:
        backend.close()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def store(db_path: Path, clock: FixedClock) -> Iterator[SqliteFindingStore]:
    with opened(db_path, clock) as findings:
        yield findings


def expired_cert(portal: str = PORTAL_A, detail: str = "", severity: Severity = Severity.HIGH) -> Finding:
    return Finding(
        portal_url=portal,
        check_id="tls.cert.expired",
        severity=severity,
        title_vi="Chứng chỉ TLS đã hết hạn",
        title_en="TLS certificate expired",
        evidence="notAfter=2025-01-01",
        detail=detail,
    )


def missing_hsts(portal: str = PORTAL_A) -> Finding:
    return Finding(
        portal_url=portal,
        check_id="http.hsts.missing",
        severity=Severity.MEDIUM,
        title_vi="Thiếu HSTS",
        title_en="HSTS missing",
        evidence="no Strict-Transport-Security header",
    )


def weak_protocol(portal: str = PORTAL_A) -> Finding:
    return Finding(
        portal_url=portal,
        check_id="tls.protocol.tls10",
        severity=Severity.CRITICAL,
        title_vi="Hỗ trợ TLS 1.0",
        title_en="TLS 1.0 supported",
        evidence="TLSv1.0 handshake accepted",
    )


def obs(portal: str = PORTAL_A, complete: bool = True, collector: str = "tls", **data: object) -> Observation:
    return Observation(
        collector=collector,
        portal_url=portal,
        observed_at=T0,
        complete=complete,
        data=dict(data),
    )


def scan(
    store: SqliteFindingStore,
    findings: list[Finding],
    portal: str = PORTAL_A,
    complete: bool = True,
) -> tuple[str, list[str], list[str], list[str], list[str]]:
    """One run over one portal; returns the run id and (new, reopened, still_open, resolved)."""
    run = store.begin_run("inventory.yaml", 1)
    changes = store.record_portal(run.id, portal, [obs(portal, complete)], findings)
    store.finish_run(run.id, complete=True)
    return run.id, changes.new, changes.reopened, changes.still_open, changes.resolved


def by_fingerprint(store: SqliteFindingStore) -> dict[str, StoredFinding]:
    return {finding.fingerprint: finding for finding in store.list_findings()}


def table_counts(db_path: Path) -> dict[str, int]:
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with engine.connect() as conn:
            return {
                table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in metadata.sorted_tables
            }
    finally:
        engine.dispose()


def test_sqlite_findings_store_satisfies_the_protocol(store: SqliteFindingStore) -> None:
    as_protocol: FindingStore = store
    assert as_protocol.list_runs() == []


def test_begin_run_is_committed_immediately(store: SqliteFindingStore, db_path: Path) -> None:
    run = store.begin_run("inventory.yaml", 3)
    with opened(db_path) as other:
        seen = other.get_run(run.id)
    assert seen is not None and seen == run
    assert seen.status is RunStatus.RUNNING
    assert (seen.portal_count, seen.portals_done, seen.finished_at) == (3, 0, None)


def test_finish_run_sets_status_and_time(store: SqliteFindingStore, clock: FixedClock) -> None:
    done = store.begin_run("inv", 1)
    broken = store.begin_run("inv", 1)
    clock.advance(timedelta(minutes=5))
    assert store.finish_run(done.id, complete=True).status is RunStatus.COMPLETE
    finished = store.finish_run(broken.id, complete=False)
    assert finished.status is RunStatus.INCOMPLETE
    assert finished.finished_at == T0 + timedelta(minutes=5)


def test_finish_unknown_run_raises(store: SqliteFindingStore) -> None:
    with pytest.raises(KeyError, match="no scan run"):
        store.finish_run("nope", complete=True)


def test_list_runs_most_recent_first_with_limit(store: SqliteFindingStore, clock: FixedClock) -> None:
    ids = []
    for _ in range(3):
        ids.append(store.begin_run("inv", 1).id)
        clock.advance(timedelta(minutes=1))
    assert [run.id for run in store.list_runs()] == ids[::-1]
    assert [run.id for run in store.list_runs(limit=2)] == ids[:0:-1]
    assert store.get_run("unknown") is None


def test_lifecycle_new_still_open_resolved_reopened(store: SqliteFindingStore, clock: FixedClock) -> None:
    cert = expired_cert()
    fp = cert.fingerprint

    run1, new, reopened, still, resolved = scan(store, [cert])
    assert (new, reopened, still, resolved) == ([fp], [], [], [])
    first = by_fingerprint(store)[fp]
    assert first.status is FindingStatus.OPEN
    assert first.first_seen == first.last_seen == T0
    assert first.last_run_id == run1

    clock.advance(timedelta(days=1))
    run2, new, reopened, still, resolved = scan(store, [cert])
    assert (new, reopened, still, resolved) == ([], [], [fp], [])
    second = by_fingerprint(store)[fp]
    assert (second.first_seen, second.last_seen, second.last_run_id) == (T0, T0 + timedelta(days=1), run2)

    clock.advance(timedelta(days=1))
    run3, new, reopened, still, resolved = scan(store, [])
    assert (new, reopened, still, resolved) == ([], [], [], [fp])
    gone = by_fingerprint(store)[fp]
    assert gone.status is FindingStatus.RESOLVED
    assert gone.resolved_at == T0 + timedelta(days=2)

    clock.advance(timedelta(days=1))
    run4, new, reopened, still, resolved = scan(store, [cert])
    assert (new, reopened, still, resolved) == ([], [fp], [], [])
    back = by_fingerprint(store)[fp]
    assert back.status is FindingStatus.OPEN
    assert back.resolved_at is None
    assert back.first_seen == T0

    history = [(e.old_status, e.new_status, e.actor, e.run_id, e.note) for e in store.events(fp)]
    assert history == [
        (None, FindingStatus.OPEN, "scan", run1, "opened"),
        (FindingStatus.OPEN, FindingStatus.RESOLVED, "scan", run3, "not seen by a complete scan"),
        (FindingStatus.RESOLVED, FindingStatus.OPEN, "scan", run4, "reopened"),
    ]


def test_sighting_refreshes_content(store: SqliteFindingStore) -> None:
    scan(store, [expired_cert(severity=Severity.HIGH)])
    worse = expired_cert(severity=Severity.CRITICAL).model_copy(update={"evidence": "notAfter=2024-01-01"})
    scan(store, [worse])
    stored = by_fingerprint(store)[worse.fingerprint]
    assert (stored.severity, stored.evidence) == (Severity.CRITICAL, "notAfter=2024-01-01")


def test_incomplete_observation_resolves_nothing_of_its_collector(store: SqliteFindingStore) -> None:
    cert, hsts = expired_cert(), missing_hsts()
    scan(store, [cert, hsts])
    run = store.begin_run("inv", 1)
    changes = store.record_portal(run.id, PORTAL_A, [obs(), obs(collector="http", complete=False)], [])
    assert changes.resolved == [cert.fingerprint]  # the complete TLS observation speaks for tls.* only
    statuses = {f.check_id: f.status for f in store.list_findings()}
    assert statuses == {"tls.cert.expired": FindingStatus.RESOLVED, "http.hsts.missing": FindingStatus.OPEN}


def test_only_incomplete_observations_resolve_nothing(store: SqliteFindingStore) -> None:
    scan(store, [expired_cert(), missing_hsts()])
    run = store.begin_run("inv", 1)
    changes = store.record_portal(run.id, PORTAL_A, [obs(complete=False), obs(collector="http", complete=False)], [])
    assert changes.resolved == []
    assert {f.status for f in store.list_findings()} == {FindingStatus.OPEN}


def test_unknown_collector_is_refused(store: SqliteFindingStore) -> None:
    run = store.begin_run("inv", 1)
    with pytest.raises(ValueError, match="unknown collector"):
        store.record_portal(run.id, PORTAL_A, [obs(collector="smtp")], [])


def test_no_observation_resolves_nothing(store: SqliteFindingStore) -> None:
    scan(store, [expired_cert()])
    run = store.begin_run("inv", 1)
    assert store.record_portal(run.id, PORTAL_A, [], []).resolved == []
    assert store.list_findings()[0].status is FindingStatus.OPEN


def test_false_positive_is_never_auto_resolved(store: SqliteFindingStore) -> None:
    cert = expired_cert()
    scan(store, [cert])
    store.set_status(cert.fingerprint, FindingStatus.FALSE_POSITIVE, actor="lan", note="test portal")
    *_, resolved = scan(store, [])
    assert resolved == []
    assert by_fingerprint(store)[cert.fingerprint].status is FindingStatus.FALSE_POSITIVE


@pytest.mark.parametrize("status", [FindingStatus.ACKNOWLEDGED, FindingStatus.RISK_ACCEPTED])
def test_triaged_findings_are_auto_resolved(store: SqliteFindingStore, status: FindingStatus) -> None:
    cert = expired_cert()
    scan(store, [cert])
    store.set_status(cert.fingerprint, status, actor="lan")
    *_, resolved = scan(store, [])
    assert resolved == [cert.fingerprint]
    assert store.events(cert.fingerprint)[-1].old_status is status


@pytest.mark.parametrize("status", [FindingStatus.ACKNOWLEDGED, FindingStatus.FALSE_POSITIVE])
def test_triaged_findings_seen_again_keep_their_status(store: SqliteFindingStore, status: FindingStatus) -> None:
    cert = expired_cert()
    scan(store, [cert])
    store.set_status(cert.fingerprint, status, actor="lan")
    _, new, reopened, still, _ = scan(store, [cert])
    assert (new, reopened, still) == ([], [], [cert.fingerprint])
    assert by_fingerprint(store)[cert.fingerprint].status is status


def test_resolution_leaves_other_portals_alone(store: SqliteFindingStore) -> None:
    a_cert, b_cert = expired_cert(PORTAL_A), expired_cert(PORTAL_B)
    run = store.begin_run("inv", 2)
    store.record_portal(run.id, PORTAL_A, [obs(PORTAL_A)], [a_cert])
    store.record_portal(run.id, PORTAL_B, [obs(PORTAL_B)], [b_cert])
    *_, resolved = scan(store, [], portal=PORTAL_A)
    assert resolved == [a_cert.fingerprint]
    statuses = {f.portal_url: f.status for f in store.list_findings()}
    assert statuses == {PORTAL_A: FindingStatus.RESOLVED, PORTAL_B: FindingStatus.OPEN}


def test_only_unseen_findings_are_resolved(store: SqliteFindingStore) -> None:
    old_cert, new_cert = expired_cert(detail="sha256:old"), expired_cert(detail="sha256:new")
    scan(store, [old_cert, missing_hsts()])
    _, new, _, still, resolved = scan(store, [new_cert, missing_hsts()])
    assert (new, still, resolved) == ([new_cert.fingerprint], [missing_hsts().fingerprint], [old_cert.fingerprint])


def test_portals_done_counts_recorded_portals(store: SqliteFindingStore) -> None:
    run = store.begin_run("inv", 2)
    store.record_portal(run.id, PORTAL_A, [obs(PORTAL_A)], [])
    store.record_portal(run.id, PORTAL_B, [obs(PORTAL_B)], [])
    assert store.finish_run(run.id, complete=True).portals_done == 2


def test_record_portal_rejects_bad_input(store: SqliteFindingStore) -> None:
    run = store.begin_run("inv", 1)
    with pytest.raises(ValueError, match="passed for portal"):
        store.record_portal(run.id, PORTAL_A, [obs(PORTAL_A)], [expired_cert(PORTAL_B)])
    naive = obs().model_copy(update={"observed_at": datetime(2025, 1, 1)})
    with pytest.raises(ValueError, match="naive"):
        store.record_portal(run.id, PORTAL_A, [naive], [])
    with pytest.raises(KeyError, match="no scan run"):
        store.record_portal("missing", PORTAL_A, [obs()], [])


def test_same_finding_twice_in_one_run_is_linked_once(store: SqliteFindingStore) -> None:
    run = store.begin_run("inv", 1)
    store.record_portal(run.id, PORTAL_A, [obs()], [expired_cert(), expired_cert()])
    store.record_portal(run.id, PORTAL_A, [obs()], [expired_cert()])
    assert [f.fingerprint for f in store.run_findings(run.id)] == [expired_cert().fingerprint]


def test_crash_mid_portal_writes_nothing_of_that_portal(
    store: SqliteFindingStore, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = store.begin_run("inv", 2)
    store.record_portal(run.id, PORTAL_A, [obs(PORTAL_A)], [expired_cert(PORTAL_A)])
    before = table_counts(db_path)
    earlier = store.list_findings()

    def explode(*_: object) -> list[str]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(SqliteFindingStore, "_resolve_unseen", explode)
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.record_portal(run.id, PORTAL_B, [obs(PORTAL_B)], [expired_cert(PORTAL_B), missing_hsts(PORTAL_B)])

    assert table_counts(db_path) == before
    assert store.list_findings() == earlier
    assert store.observations(run.id) == [obs(PORTAL_A)]
    run_now = store.get_run(run.id)
    assert run_now is not None and run_now.portals_done == 1


def test_unserialisable_observation_writes_nothing(store: SqliteFindingStore, db_path: Path) -> None:
    run = store.begin_run("inv", 2)
    store.record_portal(run.id, PORTAL_A, [obs(PORTAL_A)], [expired_cert(PORTAL_A)])
    before = table_counts(db_path)
    bad = obs(PORTAL_B, blob=object())
    with pytest.raises(StatementError):
        store.record_portal(run.id, PORTAL_B, [obs(PORTAL_B), bad], [expired_cert(PORTAL_B)])
    assert table_counts(db_path) == before
    assert [f.portal_url for f in store.list_findings()] == [PORTAL_A]


def test_list_findings_filters_and_orders_worst_first(store: SqliteFindingStore) -> None:
    run = store.begin_run("inv", 2)
    store.record_portal(run.id, PORTAL_B, [obs(PORTAL_B)], [missing_hsts(PORTAL_B), weak_protocol(PORTAL_B)])
    store.record_portal(run.id, PORTAL_A, [obs(PORTAL_A)], [missing_hsts(PORTAL_A), expired_cert(PORTAL_A)])
    store.set_status(missing_hsts(PORTAL_A).fingerprint, FindingStatus.ACKNOWLEDGED, actor="lan")

    order = [(f.severity, f.portal_url, f.check_id) for f in store.list_findings()]
    assert order == [
        (Severity.CRITICAL, PORTAL_B, "tls.protocol.tls10"),
        (Severity.HIGH, PORTAL_A, "tls.cert.expired"),
        (Severity.MEDIUM, PORTAL_A, "http.hsts.missing"),
        (Severity.MEDIUM, PORTAL_B, "http.hsts.missing"),
    ]
    assert len(store.list_findings(statuses=[FindingStatus.OPEN])) == 3
    assert len(store.list_findings(severities=[Severity.MEDIUM, Severity.CRITICAL])) == 3
    assert len(store.list_findings(check_ids=["http.hsts.missing"])) == 2
    assert len(store.list_findings(portal_url=PORTAL_A)) == 2
    only = store.list_findings(
        statuses=[FindingStatus.OPEN], check_ids=["http.hsts.missing"], portal_url=PORTAL_B
    )
    assert [f.fingerprint for f in only] == [missing_hsts(PORTAL_B).fingerprint]


def test_run_findings_are_those_seen_in_the_run(store: SqliteFindingStore) -> None:
    run1, *_ = scan(store, [expired_cert(), missing_hsts()])
    run2, *_ = scan(store, [missing_hsts()])
    assert [f.check_id for f in store.run_findings(run1)] == ["tls.cert.expired", "http.hsts.missing"]
    seen_in_run2 = store.run_findings(run2)
    assert [f.check_id for f in seen_in_run2] == ["http.hsts.missing"]
    assert store.run_findings("unknown") == []


def test_observations_round_trip_with_json_data(store: SqliteFindingStore) -> None:
    run = store.begin_run("inv", 2)
    tls = obs(PORTAL_A, protocols=["TLSv1.2", "TLSv1.3"], chain={"depth": 2, "ok": True})
    http = obs(PORTAL_A, collector="http", complete=False, status=None)
    store.record_portal(run.id, PORTAL_A, [tls, http], [])
    store.record_portal(run.id, PORTAL_B, [obs(PORTAL_B)], [])
    assert store.observations(run.id, PORTAL_A) == [tls, http]
    assert len(store.observations(run.id)) == 3
    assert store.observations("unknown") == []


def test_set_status_records_history_and_resolved_at(store: SqliteFindingStore, clock: FixedClock) -> None:
    cert = expired_cert()
    scan(store, [cert])
    clock.advance(timedelta(hours=1))
    resolved = store.set_status(cert.fingerprint, FindingStatus.RESOLVED, actor="minh", note="renewed")
    assert (resolved.status, resolved.resolved_at, resolved.status_note) == (
        FindingStatus.RESOLVED,
        T0 + timedelta(hours=1),
        "renewed",
    )
    reopened = store.set_status(cert.fingerprint, FindingStatus.ACKNOWLEDGED, actor="lan")
    assert (reopened.resolved_at, reopened.status_note) == (None, None)
    manual = [(e.actor, e.old_status, e.new_status, e.run_id, e.note) for e in store.events(cert.fingerprint)][1:]
    assert manual == [
        ("minh", FindingStatus.OPEN, FindingStatus.RESOLVED, None, "renewed"),
        ("lan", FindingStatus.RESOLVED, FindingStatus.ACKNOWLEDGED, None, None),
    ]


def test_set_status_unknown_fingerprint_raises_key_error(store: SqliteFindingStore) -> None:
    with pytest.raises(KeyError, match="no finding with fingerprint 'deadbeef'"):
        store.set_status("deadbeef", FindingStatus.RESOLVED, actor="lan")


def test_reopening_the_file_keeps_everything(db_path: Path, clock: FixedClock) -> None:
    with opened(db_path, clock) as first:
        run_id, *_ = scan(first, [expired_cert(), missing_hsts()])
        first.set_status(missing_hsts().fingerprint, FindingStatus.RISK_ACCEPTED, actor="lan", note="legacy")
        runs, found = first.list_runs(), first.list_findings()
        kept = first.observations(run_id)
        history = first.events(missing_hsts().fingerprint)
    with open_store(db_path) as second:
        assert second.list_runs() == runs
        assert second.list_findings() == found
        assert second.observations(run_id) == kept
        assert second.run_findings(run_id) == found
        assert second.events(missing_hsts().fingerprint) == history


def test_migrations_match_metadata(store: SqliteFindingStore, db_path: Path) -> None:
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
            head = ScriptDirectory.from_config(alembic_config()).get_current_head()
            assert context.get_current_revision() == head
    finally:
        engine.dispose()


def test_old_file_is_upgraded_on_open(db_path: Path) -> None:
    SqliteBackend(db_path).close()
    engine = create_engine(f"sqlite:///{db_path}")
    config = alembic_config()
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    finally:
        engine.dispose()
    with open_store(db_path) as store:
        assert store.list_findings() == []
    assert table_counts(db_path) == dict.fromkeys((t.name for t in metadata.sorted_tables), 0)


def test_connection_pragmas(store: SqliteFindingStore) -> None:
    with store._engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar_one() == 5000


def test_times_round_trip_as_aware_utc(db_path: Path) -> None:
    local_start = datetime(2025, 3, 1, 15, 30, 0, 123456, tzinfo=ICT)
    with opened(db_path, FixedClock(local_start)) as store:
        run = store.begin_run("inv", 1)
        observed = obs().model_copy(update={"observed_at": local_start})
        store.record_portal(run.id, PORTAL_A, [observed], [expired_cert()])
        stored_run = store.get_run(run.id)
        [stored_obs] = store.observations(run.id)
        [finding] = store.list_findings()
    assert stored_run is not None
    for moment in (stored_run.started_at, stored_obs.observed_at, finding.first_seen):
        assert moment == local_start
        assert moment.utcoffset() == timedelta(0)
    assert stored_run.started_at.hour == 8


def test_utc_datetime_type_rejects_naive_and_stores_utc_text() -> None:
    column_type = UTCDateTime()
    dialect = sqlite.dialect()
    with pytest.raises(ValueError, match="naive"):
        column_type.process_bind_param(datetime(2025, 1, 1), dialect)
    stored = column_type.process_bind_param(datetime(2025, 1, 1, 7, tzinfo=ICT), dialect)
    assert stored == "2025-01-01T00:00:00.000000+00:00"
    assert column_type.process_result_value(stored, dialect) == datetime(2025, 1, 1, tzinfo=UTC)
    assert column_type.process_bind_param(None, dialect) is None


def test_mark_abandoned_runs(store: SqliteFindingStore, clock: FixedClock) -> None:
    stale = store.begin_run("inv", 1)
    finished = store.begin_run("inv", 1)
    store.finish_run(finished.id, complete=True)
    clock.advance(timedelta(hours=2))
    fresh = store.begin_run("inv", 1)
    clock.advance(timedelta(minutes=30))

    before = store.get_run(stale.id)
    assert before is not None and before.status is RunStatus.RUNNING
    assert [r.id for r in store.mark_abandoned_runs(clock.now() - timedelta(hours=1))] == [stale.id]
    statuses = {run.id: run.status for run in store.list_runs()}
    assert statuses == {
        stale.id: RunStatus.INCOMPLETE,
        finished.id: RunStatus.COMPLETE,
        fresh.id: RunStatus.RUNNING,
    }
    assert store.mark_abandoned_runs(clock.now() - timedelta(hours=1)) == []


def test_opening_a_store_leaves_running_runs_alone(db_path: Path) -> None:
    with opened(db_path) as first:
        run = first.begin_run("inv", 1)
    with open_store(db_path) as second:
        assert second.list_runs()[0].status is RunStatus.RUNNING
        assert second.get_run(run.id) == run


def test_open_store_accepts_paths_and_sqlite_urls(tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b" / "soc.db"
    with open_store(str(nested)) as by_text:
        run = by_text.begin_run("inv", 1)
    assert nested.exists()
    with open_store(f"sqlite:///{nested}") as by_url:
        assert by_url.get_run(run.id) == run


@pytest.mark.parametrize("url", ["elasticsearch://es.local:9200/soc", "sqlite://", "sqlite:///:memory:"])
def test_open_store_rejects_other_backends(url: str) -> None:
    with pytest.raises(StoreError, match=r"in-memory|unsupported store backend"):
        open_backend(url)


def test_head_revision_constant_matches_the_migration_chain() -> None:
    from alembic.script import ScriptDirectory

    from soc.store.sqlite.schema import HEAD_REVISION, alembic_config

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION
