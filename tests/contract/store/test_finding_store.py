"""The FindingStore contract: runs, the lifecycle, queries and pages, triage and the SLA, on every backend.

Every test uses `backend` and the protocol only, so the SQLite store and the search store answer the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import pytest

from soc.core.clock import FixedClock
from soc.core.models import (
    Finding,
    FindingStatus,
    Observation,
    PortalChanges,
    PortalScan,
    RunOwner,
    RunStatus,
    Severity,
    StoredFinding,
)
from soc.findings.sla import SlaState, sla_state
from soc.store import Backend, FindingStore
from soc.store.query import CursorError, FindingQuery, FindingSort, encode_cursor

A = "https://a.dongnai.gov.vn/"
B = "https://b.dongnai.gov.vn/"
C = "https://c.dongnai.gov.vn/"


def finding(url: str = A, check: str = "tls.cert.expired", severity: Severity = Severity.HIGH,
            detail: str = "", evidence: str = "e") -> Finding:
    return Finding(portal_url=url, check_id=check, severity=severity, title_vi="Tiêu đề", title_en="Title",
                   evidence=evidence, remediation_vi="Khắc phục", remediation_en="Fix", detail=detail)


def cert(url: str = A, detail: str = "") -> Finding:
    return finding(url, "tls.cert.expired", Severity.HIGH, detail)


def tls10(url: str = A) -> Finding:
    return finding(url, "tls.protocol.tls10", Severity.CRITICAL)


def hsts(url: str = A) -> Finding:
    return finding(url, "http.hsts.missing", Severity.MEDIUM)


def obs(clock: FixedClock, url: str = A, collector: str = "tls", complete: bool = True,
        unjudged: Sequence[str] = (), **data: object) -> Observation:
    return Observation(collector=collector, portal_url=url, observed_at=clock.now(), complete=complete,
                       unjudged=list(unjudged), data=dict(data))


def scan(store: FindingStore, clock: FixedClock, found: Sequence[Finding], url: str = A,
         collectors: Sequence[str] = ("tls", "http"), complete: bool = True) -> tuple[str, PortalChanges]:
    """One finished run over one portal."""
    run = store.begin_run("inv", 1)
    changes = store.record_portal(run.id, url, [obs(clock, url, name, complete) for name in collectors], found)
    store.finish_run(run.id, True)
    return run.id, changes


def by_fp(store: FindingStore) -> dict[str, StoredFinding]:
    return {f.fingerprint: f for f in store.list_findings()}


def fps(items: Sequence[StoredFinding]) -> list[str]:
    return [f.fingerprint for f in items]


# --- runs ------------------------------------------------------------------------------------------------------


def test_begin_finish_get_and_list_runs(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    first = store.begin_run("inv", 3)
    assert store.get_run(first.id) == first
    assert (first.status, first.portal_count, first.portals_done, first.finished_at) == (RunStatus.RUNNING, 3, 0,
                                                                                         None)
    clock.advance(timedelta(minutes=1))
    ops = store.begin_run("ops", 1)
    clock.advance(timedelta(minutes=1))
    third = store.begin_run("inv", 1)
    clock.advance(timedelta(minutes=5))
    done = store.finish_run(first.id, True)
    assert (done.status, done.finished_at) == (RunStatus.COMPLETE, clock.now())
    broken = store.finish_run(third.id, False)
    assert broken.status is RunStatus.INCOMPLETE
    assert store.get_run(first.id) == done
    assert [r.id for r in store.list_runs()] == [third.id, ops.id, first.id]
    assert [r.id for r in store.list_runs(limit=2)] == [third.id, ops.id]
    assert [r.id for r in store.list_runs(exclude=["ops"])] == [third.id, first.id]
    assert store.get_run("unknown") is None
    with pytest.raises(KeyError, match="no scan run"):
        store.finish_run("unknown", True)


def test_portals_done_counts_recorded_portals(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    run = store.begin_run("inv", 2)
    store.record_portal(run.id, A, [obs(clock, A)], [])
    store.record_portal(run.id, B, [obs(clock, B)], [])
    assert store.finish_run(run.id, True).portals_done == 2
    stored = store.get_run(run.id)
    assert stored is not None and stored.portals_done == 2


def test_runs_by_prefix(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    runs = []
    for _ in range(24):  # ids are random hex: some share a first character
        runs.append(store.begin_run("inv", 1))
        clock.advance(timedelta(seconds=1))
    target = runs[5]
    assert store.runs_by_prefix(target.id) == [target]
    assert store.runs_by_prefix(target.id[:12]) == [target]
    if target.id != target.id.upper():  # the prefix is case-sensitive
        assert store.runs_by_prefix(target.id.upper()) == []
    first = target.id[0]
    sharing = sorted((r for r in runs if r.id.startswith(first)), key=lambda r: r.started_at, reverse=True)
    assert store.runs_by_prefix(first, limit=100) == sharing
    assert store.runs_by_prefix(first) == sharing[:2]
    assert store.runs_by_prefix("zz") == []


def test_heartbeat_and_running_runs(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    owner = RunOwner(host="scan-1", pid=4242, started="boot-1")
    owned = store.begin_run("inv", 1, owner=owner)
    clock.advance(timedelta(minutes=1))
    plain = store.begin_run("inv", 1)
    clock.advance(timedelta(minutes=1))
    finished = store.begin_run("inv", 1, owner=owner)
    store.finish_run(finished.id, True)
    running = store.running_runs()
    assert [r.run.id for r in running] == [owned.id, plain.id]
    assert (running[0].owner, running[0].heartbeat_at) == (owner, owned.started_at)
    assert (running[1].owner, running[1].heartbeat_at) == (None, None)
    clock.advance(timedelta(seconds=30))
    store.heartbeat(owned.id)
    assert store.running_runs()[0].heartbeat_at == clock.now()
    beat = clock.now()
    clock.advance(timedelta(seconds=30))
    store.heartbeat(finished.id)  # a run no longer running is left as it is
    store.heartbeat("unknown")
    assert store.running_runs()[0].heartbeat_at == beat
    assert store.get_run(finished.id) is not None and store.get_run(finished.id).status is RunStatus.COMPLETE  # type: ignore[union-attr]


def test_mark_abandoned_runs(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    stale = store.begin_run("inv", 1)
    finished = store.begin_run("inv", 1)
    store.finish_run(finished.id, True)
    clock.advance(timedelta(hours=2))
    fresh = store.begin_run("inv", 1)
    clock.advance(timedelta(minutes=30))
    abandoned = store.mark_abandoned_runs(clock.now() - timedelta(hours=1))
    assert [(r.id, r.status) for r in abandoned] == [(stale.id, RunStatus.INCOMPLETE)]
    assert {r.id: r.status for r in store.list_runs()} == {
        stale.id: RunStatus.INCOMPLETE, finished.id: RunStatus.COMPLETE, fresh.id: RunStatus.RUNNING}
    assert store.mark_abandoned_runs(clock.now() - timedelta(hours=1)) == []
    assert [r.run.id for r in store.running_runs()] == [fresh.id]


def test_abandon_runs_only_those_still_running(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    first = store.begin_run("inv", 1)
    clock.advance(timedelta(minutes=1))
    second = store.begin_run("inv", 1)
    done = store.begin_run("inv", 1)
    store.finish_run(done.id, True)
    untouched = store.begin_run("inv", 1)
    abandoned = store.abandon_runs([second.id, done.id, first.id, "unknown"])
    assert [(r.id, r.status) for r in abandoned] == [(first.id, RunStatus.INCOMPLETE),
                                                     (second.id, RunStatus.INCOMPLETE)]
    assert store.get_run(done.id).status is RunStatus.COMPLETE  # type: ignore[union-attr]
    assert [r.run.id for r in store.running_runs()] == [untouched.id]
    assert store.abandon_runs([first.id]) == []
    assert store.abandon_runs([]) == []


# --- the lifecycle ------------------------------------------------------------------------------------------------


def test_lifecycle_new_still_open_resolved_reopened(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    start = clock.now()
    fp = cert().fingerprint
    run1, changes = scan(store, clock, [cert()])
    assert (changes.new, changes.reopened, changes.still_open, changes.resolved) == ([fp], [], [], [])
    first = by_fp(store)[fp]
    assert (first.status, first.first_seen, first.last_seen, first.opened_at, first.last_run_id) == (
        FindingStatus.OPEN, start, start, start, run1)

    clock.advance(timedelta(days=1))
    worse = finding(A, "tls.cert.expired", Severity.CRITICAL, evidence="notAfter=2024-01-01")
    run2, changes = scan(store, clock, [worse])
    assert (changes.new, changes.reopened, changes.still_open, changes.resolved) == ([], [], [fp], [])
    second = by_fp(store)[fp]
    assert (second.first_seen, second.last_seen, second.last_run_id) == (start, clock.now(), run2)
    assert (second.severity, second.evidence) == (Severity.CRITICAL, "notAfter=2024-01-01")

    clock.advance(timedelta(days=1))
    run3, changes = scan(store, clock, [])
    assert (changes.new, changes.reopened, changes.still_open, changes.resolved) == ([], [], [], [fp])
    gone = by_fp(store)[fp]
    assert (gone.status, gone.resolved_at) == (FindingStatus.RESOLVED, clock.now())

    clock.advance(timedelta(days=1))
    run4, changes = scan(store, clock, [cert()])
    assert (changes.new, changes.reopened, changes.still_open, changes.resolved) == ([], [fp], [], [])
    back = by_fp(store)[fp]
    assert (back.status, back.resolved_at, back.first_seen, back.opened_at) == (FindingStatus.OPEN, None, start,
                                                                               clock.now())
    history = [(e.old_status, e.new_status, e.actor, e.run_id, e.note) for e in store.events(fp)]
    assert history == [
        (None, FindingStatus.OPEN, "scan", run1, "opened"),
        (FindingStatus.OPEN, FindingStatus.RESOLVED, "scan", run3, "not seen by a complete scan"),
        (FindingStatus.RESOLVED, FindingStatus.OPEN, "scan", run4, "reopened"),
    ]
    assert store.run_change_counts(run1) == {"new": 1, "reopened": 0, "resolved": 0}
    assert store.run_change_counts(run2) == {"new": 0, "reopened": 0, "resolved": 0}
    assert store.run_change_counts(run3) == {"new": 0, "reopened": 0, "resolved": 1}
    assert store.run_change_counts(run4) == {"new": 0, "reopened": 1, "resolved": 0}
    assert store.run_change_counts("unknown") == {"new": 0, "reopened": 0, "resolved": 0}


def test_reopened_by_a_scan_starts_a_new_open_period(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    fp = cert().fingerprint
    scan(store, clock, [cert()])
    assert store.set_deadlines({fp: (clock.now() + timedelta(days=5), clock.now() + timedelta(days=7))}) == 1
    clock.advance(timedelta(days=1))
    scan(store, clock, [])
    clock.advance(timedelta(days=1))
    scan(store, clock, [cert()])
    back = store.finding(fp)
    assert back is not None
    assert (back.opened_at, back.due_at, back.warn_at, back.status_note) == (clock.now(), None, None, "reopened")


def test_only_unseen_findings_are_resolved(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    old, new = cert(detail="sha256:old"), cert(detail="sha256:new")
    scan(store, clock, [old, hsts()])
    _, changes = scan(store, clock, [new, hsts()])
    assert (changes.new, changes.still_open, changes.resolved) == ([new.fingerprint], [hsts().fingerprint],
                                                                   [old.fingerprint])


def test_incomplete_observation_resolves_nothing_of_its_collector(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    scan(store, clock, [cert(), hsts()])
    run = store.begin_run("inv", 1)
    changes = store.record_portal(run.id, A, [obs(clock), obs(clock, collector="http", complete=False)], [])
    store.finish_run(run.id, True)
    assert changes.resolved == [cert().fingerprint]  # the complete TLS observation speaks for tls.* only
    assert {f.check_id: f.status for f in store.list_findings()} == {
        "tls.cert.expired": FindingStatus.RESOLVED, "http.hsts.missing": FindingStatus.OPEN}


def test_only_incomplete_or_no_observations_resolve_nothing(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    scan(store, clock, [cert(), hsts()])
    run = store.begin_run("inv", 1)
    assert store.record_portal(run.id, A, [obs(clock, complete=False),
                                           obs(clock, collector="http", complete=False)], []).resolved == []
    assert store.record_portal(run.id, A, [], []).resolved == []
    store.finish_run(run.id, True)
    assert {f.status for f in store.list_findings()} == {FindingStatus.OPEN}
    assert store.run_change_counts(run.id)["resolved"] == 0


def test_unjudged_checks_are_not_resolved(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    protocol = tls10()
    scan(store, clock, [cert(), protocol])
    run = store.begin_run("inv", 1)
    changes = store.record_portal(run.id, A, [obs(clock, unjudged=["tls.cert.expired"])], [])
    store.finish_run(run.id, True)
    assert changes.resolved == [protocol.fingerprint]
    assert {f.check_id: f.status for f in store.list_findings()} == {
        "tls.cert.expired": FindingStatus.OPEN, "tls.protocol.tls10": FindingStatus.RESOLVED}
    run = store.begin_run("inv", 1)
    assert store.record_portal(run.id, A, [obs(clock, unjudged=["tls."])], []).resolved == []  # a prefix


def test_false_positive_is_never_auto_resolved(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    scan(store, clock, [cert()])
    store.set_status(cert().fingerprint, FindingStatus.FALSE_POSITIVE, actor="lan", note="test portal")
    _, changes = scan(store, clock, [])
    assert changes.resolved == []
    assert by_fp(store)[cert().fingerprint].status is FindingStatus.FALSE_POSITIVE


@pytest.mark.parametrize("status", [FindingStatus.ACKNOWLEDGED, FindingStatus.RISK_ACCEPTED])
def test_triaged_findings_are_auto_resolved(backend: Backend, clock: FixedClock, status: FindingStatus) -> None:
    store = backend.findings
    scan(store, clock, [cert()])
    store.set_status(cert().fingerprint, status, actor="lan")
    _, changes = scan(store, clock, [])
    assert changes.resolved == [cert().fingerprint]
    assert store.events(cert().fingerprint)[-1].old_status is status


@pytest.mark.parametrize("status", [FindingStatus.ACKNOWLEDGED, FindingStatus.FALSE_POSITIVE,
                                    FindingStatus.RISK_ACCEPTED])
def test_triaged_findings_seen_again_keep_their_status(backend: Backend, clock: FixedClock,
                                                       status: FindingStatus) -> None:
    store = backend.findings
    scan(store, clock, [cert()])
    store.set_status(cert().fingerprint, status, actor="lan")
    _, changes = scan(store, clock, [cert()])
    assert (changes.new, changes.reopened, changes.still_open) == ([], [], [cert().fingerprint])
    assert by_fp(store)[cert().fingerprint].status is status


def test_resolution_leaves_other_portals_alone(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    run = store.begin_run("inv", 2)
    store.record_portal(run.id, A, [obs(clock, A)], [cert(A)])
    store.record_portal(run.id, B, [obs(clock, B)], [cert(B)])
    store.finish_run(run.id, True)
    _, changes = scan(store, clock, [], url=A)
    assert changes.resolved == [cert(A).fingerprint]
    assert {f.portal_url: f.status for f in store.list_findings()} == {A: FindingStatus.RESOLVED,
                                                                        B: FindingStatus.OPEN}


def test_same_finding_twice_in_one_run_is_linked_once(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    run = store.begin_run("inv", 1)
    first = store.record_portal(run.id, A, [obs(clock)], [cert(), cert()])
    again = store.record_portal(run.id, A, [obs(clock)], [cert()])
    store.finish_run(run.id, True)
    assert (first.new, again.still_open) == ([cert().fingerprint], [cert().fingerprint])
    assert fps(store.run_findings(run.id)) == [cert().fingerprint]
    assert len(store.events(cert().fingerprint)) == 1
    assert store.run_change_counts(run.id) == {"new": 1, "reopened": 0, "resolved": 0}


def _nothing_written(store: FindingStore, run_id: str) -> None:
    assert store.list_findings() == []
    assert store.observations(run_id) == []
    assert store.run_findings(run_id) == []
    assert store.portal_scans(run_id) == []
    assert store.get_run(run_id).portals_done == 0  # type: ignore[union-attr]


def test_record_portal_refuses_bad_input_before_writing(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    run = store.begin_run("inv", 1)
    scan_of_a = PortalScan(run_id=run.id, portal_url=A, recorded_at=clock.now(), collectors={"tls": True})
    with pytest.raises(ValueError, match="passed for portal"):
        store.record_portal(run.id, A, [obs(clock, A)], [cert(A), cert(B)], scan_of_a)
    with pytest.raises(ValueError, match="passed for portal"):
        store.record_portal(run.id, A, [obs(clock, B)], [cert(A)])
    naive = obs(clock).model_copy(update={"observed_at": datetime(2026, 1, 1)})
    with pytest.raises(ValueError, match="naive"):
        store.record_portal(run.id, A, [obs(clock), naive], [cert()], scan_of_a)
    with pytest.raises(ValueError, match="unknown collector"):
        store.record_portal(run.id, A, [obs(clock), obs(clock, collector="smtp")], [cert()])
    with pytest.raises(ValueError, match="unjudged"):
        store.record_portal(run.id, A, [obs(clock, unjudged=["http.hsts.missing"])], [cert()])
    with pytest.raises(KeyError, match="no scan run"):
        store.record_portal("unknown", A, [obs(clock)], [cert()])
    _nothing_written(store, run.id)


def test_an_observation_that_cannot_be_stored_writes_nothing(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    run = store.begin_run("inv", 1)
    with pytest.raises(Exception):  # noqa: B017  (each backend names it its own way; what matters is below)
        store.record_portal(run.id, A, [obs(clock), obs(clock, collector="http", blob=object())], [cert()])
    _nothing_written(store, run.id)


# --- reads ----------------------------------------------------------------------------------------------------


def test_list_findings_filters_and_orders_worst_first(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    run = store.begin_run("inv", 2)
    store.record_portal(run.id, B, [obs(clock, B)], [hsts(B), tls10(B)])
    store.record_portal(run.id, A, [obs(clock, A)], [hsts(A), cert(A)])
    store.finish_run(run.id, True)
    store.set_status(hsts(A).fingerprint, FindingStatus.ACKNOWLEDGED, actor="lan")
    assert [(f.severity, f.portal_url, f.check_id) for f in store.list_findings()] == [
        (Severity.CRITICAL, B, "tls.protocol.tls10"),
        (Severity.HIGH, A, "tls.cert.expired"),
        (Severity.MEDIUM, A, "http.hsts.missing"),
        (Severity.MEDIUM, B, "http.hsts.missing"),
    ]
    assert len(store.list_findings(statuses=[FindingStatus.OPEN])) == 3
    assert len(store.list_findings(statuses=[FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED])) == 4
    assert len(store.list_findings(severities=[Severity.MEDIUM, Severity.CRITICAL])) == 3
    assert len(store.list_findings(check_ids=["http.hsts.missing"])) == 2
    assert len(store.list_findings(portal_url=A)) == 2
    only = store.list_findings(statuses=[FindingStatus.OPEN], check_ids=["http.hsts.missing"], portal_url=B)
    assert fps(only) == [hsts(B).fingerprint]
    assert store.list_findings(portal_url=C) == []


def test_run_findings_are_those_seen_in_the_run_worst_first(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    run1, _ = scan(store, clock, [hsts(), cert(), tls10()])
    clock.advance(timedelta(hours=1))
    run2, _ = scan(store, clock, [hsts()])
    assert [f.check_id for f in store.run_findings(run1)] == ["tls.protocol.tls10", "tls.cert.expired",
                                                              "http.hsts.missing"]
    assert [(f.check_id, f.status) for f in store.run_findings(run1)][:2] == [
        ("tls.protocol.tls10", FindingStatus.RESOLVED), ("tls.cert.expired", FindingStatus.RESOLVED)]  # current
    assert [f.check_id for f in store.run_findings(run2)] == ["http.hsts.missing"]
    assert store.run_findings("unknown") == []


def test_finding_by_fingerprint(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    scan(store, clock, [cert()])
    stored = store.finding(cert().fingerprint)
    assert stored is not None and stored == store.list_findings()[0]
    assert (stored.title_vi, stored.remediation_vi, stored.detail) == ("Tiêu đề", "Khắc phục", "")
    assert store.finding(cert().fingerprint[:10]) is None
    assert store.finding("unknown") is None


def test_observations_round_trip_in_order(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    run = store.begin_run("inv", 2)
    tls = obs(clock, A, protocols=["TLSv1.2", "TLSv1.3"], chain={"depth": 2, "ok": True, "names": ["Đồng Nai"]},
              ratio=0.5, nothing=None, unjudged=["tls.cert.revoked"])
    clock.advance(timedelta(seconds=1))
    http = obs(clock, A, collector="http", complete=False, status=None, headers={"x-a": "1"})
    store.record_portal(run.id, A, [tls, http], [])
    other = obs(clock, B, collector="http")
    store.record_portal(run.id, B, [other, obs(clock, B)], [])
    store.finish_run(run.id, True)
    assert store.observations(run.id, A) == [tls, http]
    assert store.observations(run.id) == [tls, http, other, obs(clock, B)]
    assert store.observations(run.id, C) == []
    assert store.observations("unknown") == []


def _assessment(clock: FixedClock, url: str, collectors: dict[str, bool], label: bool | None = None,
                grade: str = "A") -> PortalScan:
    return PortalScan(run_id="ignored", portal_url=url, recorded_at=clock.now(), collectors=collectors,
                      tls_grade=grade, grade_without_trust=grade, score=90, category_scores={"tls": 95},
                      reasons=["lý do"], label_valid=label)


def _record_scan(store: FindingStore, clock: FixedClock, scans: Sequence[PortalScan]) -> str:
    run = store.begin_run("inv", len(scans))
    for item in scans:
        store.record_portal(run.id, item.portal_url, [obs(clock, item.portal_url)], [], item)
    store.finish_run(run.id, True)
    return run.id


def test_portal_scans_of_a_run(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    b = _assessment(clock, B, {"tls": True, "http": False}, grade="C")
    a = _assessment(clock, A, {"tls": True, "http": True}, label=True)
    run_id = _record_scan(store, clock, [b, a])
    kept = sorted(store.portal_scans(run_id), key=lambda s: s.portal_url)
    assert kept == [a.model_copy(update={"run_id": run_id}), b.model_copy(update={"run_id": run_id})]
    assert store.portal_scans("unknown") == []


def test_portal_history_and_latest_portal_scans(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    start = clock.now()
    complete, partial = {"tls": True, "http": True}, {"tls": True, "http": False}
    first = _record_scan(store, clock, [_assessment(clock, A, complete, grade="B"),
                                        _assessment(clock, B, complete, grade="A")])
    clock.advance(timedelta(days=1))
    second = _record_scan(store, clock, [_assessment(clock, A, partial, grade="F")])
    clock.advance(timedelta(days=1))
    third = _record_scan(store, clock, [_assessment(clock, B, partial, grade="C"),
                                        _assessment(clock, C, partial, grade="D")])
    assert [(s.run_id, s.tls_grade) for s in store.portal_history(A, start)] == [(first, "B"), (second, "F")]
    assert [s.run_id for s in store.portal_history(A, start + timedelta(hours=1))] == [second]
    assert store.portal_history(C, start + timedelta(days=3)) == []
    latest = {(s.portal_url, s.run_id) for s in store.latest_portal_scans(start)}
    assert latest == {(A, second), (A, first), (B, third), (B, first), (C, third)}
    latest = {(s.portal_url, s.run_id) for s in store.latest_portal_scans(start + timedelta(hours=1))}
    assert latest == {(A, second), (B, third), (C, third)}
    clock.advance(timedelta(hours=1))
    fourth = _record_scan(store, clock, [_assessment(clock, C, complete)])
    assert {(s.portal_url, s.run_id) for s in store.latest_portal_scans(start + timedelta(days=2))} == {
        (B, third), (C, fourth)}


def test_portal_verdicts(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    start = clock.now()
    complete, partial = {"tls": True, "http": True}, {"tls": True, "http": False}
    _record_scan(store, clock, [_assessment(clock, A, complete, label=True), _assessment(clock, B, partial, True),
                                _assessment(clock, C, partial, label=False)])
    clock.advance(timedelta(hours=1))
    _record_scan(store, clock, [_assessment(clock, A, partial, label=False), _assessment(clock, B, partial, None),
                                _assessment(clock, C, partial, label=True)])
    middle = clock.now()
    clock.advance(timedelta(hours=1))
    _record_scan(store, clock, [_assessment(clock, C, partial, label=False)])
    whole = store.portal_verdicts(start, clock.now())
    assert (whole.assessed, whole.labelled) == (frozenset({A}), frozenset({B}))
    early = store.portal_verdicts(start, middle)
    assert (early.assessed, early.labelled) == (frozenset({A}), frozenset({B, C}))
    late = store.portal_verdicts(middle, clock.now())
    assert (late.assessed, late.labelled) == (frozenset(), frozenset())
    assert store.portal_verdicts(start - timedelta(days=2), start - timedelta(days=1)).assessed == frozenset()


def test_portal_verdicts_of_the_same_instant_take_the_one_stored_last(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    _record_scan(store, clock, [_assessment(clock, A, {"tls": True}, label=False)])
    _record_scan(store, clock, [_assessment(clock, A, {"tls": True}, label=True)])
    _record_scan(store, clock, [_assessment(clock, B, {"tls": True}, label=True)])
    _record_scan(store, clock, [_assessment(clock, B, {"tls": True}, label=False)])
    assert store.portal_verdicts(clock.now(), clock.now()).labelled == {A}


def test_open_counts_by_subject(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    run = store.begin_run("inv", 3)
    store.record_portal(run.id, A, [obs(clock, A)], [cert(A), tls10(A), hsts(A)])
    store.record_portal(run.id, B, [obs(clock, B)], [cert(B), hsts(B)])
    store.record_portal(run.id, C, [obs(clock, C)], [cert(C)])
    store.finish_run(run.id, True)
    store.set_status(hsts(A).fingerprint, FindingStatus.ACKNOWLEDGED, "lan")
    store.set_status(cert(B).fingerprint, FindingStatus.FALSE_POSITIVE, "lan")
    store.set_status(hsts(B).fingerprint, FindingStatus.RISK_ACCEPTED, "lan")
    store.set_status(cert(C).fingerprint, FindingStatus.RESOLVED, "lan")
    assert store.open_counts_by_subject() == {A: {Severity.HIGH: 1, Severity.CRITICAL: 1, Severity.MEDIUM: 1}}


def test_events_are_kept_in_order_even_of_one_instant(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    fp = cert().fingerprint
    run_id, _ = scan(store, clock, [cert()])
    store.set_status(fp, FindingStatus.ACKNOWLEDGED, "lan", "xem")
    comment = store.add_comment(fp, "minh", "đã báo chủ quản")
    store.assign(fp, "stp", "lan")
    store.set_status(fp, FindingStatus.OPEN, "minh")
    store.assign(fp, None, "lan")
    history = [(e.actor, e.old_status, e.new_status, e.note, e.run_id, e.at) for e in store.events(fp)]
    now = clock.now()
    assert history == [
        ("scan", None, FindingStatus.OPEN, "opened", run_id, now),
        ("lan", FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED, "xem", None, now),
        ("minh", FindingStatus.ACKNOWLEDGED, FindingStatus.ACKNOWLEDGED, "đã báo chủ quản", None, now),
        ("lan", FindingStatus.ACKNOWLEDGED, FindingStatus.ACKNOWLEDGED, "assigned to stp", None, now),
        ("minh", FindingStatus.ACKNOWLEDGED, FindingStatus.OPEN, None, None, now),
        ("lan", FindingStatus.OPEN, FindingStatus.OPEN, "assignment cleared", None, now),
    ]
    assert store.events(fp)[2] == comment
    assert store.events("unknown") == []


# --- query_findings -------------------------------------------------------------------------------------------


@pytest.fixture
def world(backend: Backend, clock: FixedClock) -> dict[str, datetime]:
    """Findings on three portals seen at three moments, some triaged, assigned and resolved."""
    store = backend.findings
    t0 = clock.now()
    run = store.begin_run("inv", 2)
    store.record_portal(run.id, A, [obs(clock, A)], [cert(A), hsts(A)])
    store.record_portal(run.id, B, [obs(clock, B)], [tls10(B)])
    store.finish_run(run.id, True)
    clock.advance(timedelta(hours=1))
    t1 = clock.now()
    run = store.begin_run("inv", 2)
    store.record_portal(run.id, B, [obs(clock, B, "http")], [hsts(B), finding(B, "http.server.banner", Severity.LOW)])
    store.record_portal(run.id, C, [obs(clock, C)], [cert(C), finding(C, "tls.info", Severity.INFO)])
    store.finish_run(run.id, True)
    clock.advance(timedelta(hours=1))
    t2 = clock.now()
    run = store.begin_run("inv", 1)
    store.record_portal(run.id, A, [obs(clock, A, "http")], [hsts(A)])  # still open, seen again at t2
    store.finish_run(run.id, True)
    store.set_status(cert(A).fingerprint, FindingStatus.RESOLVED, "lan")
    store.set_status(tls10(B).fingerprint, FindingStatus.ACKNOWLEDGED, "lan")
    store.assign(hsts(B).fingerprint, "stp", "lan")
    store.assign(cert(C).fingerprint, "syt", "lan")
    clock.advance(timedelta(hours=1))
    return {"t0": t0, "t1": t1, "t2": t2, "t3": clock.now()}


def _query(store: FindingStore, **values: object) -> list[str]:
    return fps(store.query_findings(FindingQuery.model_validate(values)).items)


def test_query_findings_every_filter(backend: Backend, world: dict[str, datetime]) -> None:
    store = backend.findings
    t0, t1, t2 = world["t0"], world["t1"], world["t2"]
    everything = store.list_findings()
    assert len(everything) == 7
    assert _query(store) == fps(everything)

    def expect(**values: object) -> list[str]:
        return _query(store, **values)

    def where(keep: object) -> list[str]:
        return [f.fingerprint for f in everything if keep(f)]  # type: ignore[operator]

    assert expect(statuses=["resolved", "acknowledged"]) == where(
        lambda f: f.status in (FindingStatus.RESOLVED, FindingStatus.ACKNOWLEDGED))
    assert expect(severities=["low", "info"]) == where(lambda f: f.severity in (Severity.LOW, Severity.INFO))
    assert expect(check_ids=["tls.cert.expired", "nope"]) == where(lambda f: f.check_id == "tls.cert.expired")
    assert expect(portal_urls=[A, C]) == where(lambda f: f.portal_url in (A, C))
    prefix = cert(C).fingerprint[:6]
    assert expect(fingerprint_prefix=prefix) == where(lambda f: f.fingerprint.startswith(prefix))
    assert cert(C).fingerprint in expect(fingerprint_prefix=prefix)
    assert expect(fingerprint_prefix=prefix.upper()) == ([] if prefix != prefix.upper() else expect(
        fingerprint_prefix=prefix))
    assert expect(first_seen_after=t0) == where(lambda f: f.first_seen > t0)
    assert expect(first_seen_after=t0) and expect(first_seen_after=t1) == []
    assert expect(first_seen_before=t1) == where(lambda f: f.first_seen < t1)
    west = timezone(timedelta(hours=-5))  # a bound in any zone means the same instant
    assert expect(first_seen_after=t0.astimezone(west)) == expect(first_seen_after=t0)
    assert expect(first_seen_before=(t1 + timedelta(microseconds=1)).astimezone(west)) == where(
        lambda f: f.first_seen <= t1)
    assert expect(last_seen_after=t1) == [hsts(A).fingerprint]
    assert expect(last_seen_before=t1) == where(lambda f: f.last_seen < t1)
    assert expect(last_seen_before=t1) == [tls10(B).fingerprint, cert(A).fingerprint]
    assert expect(resolved_after=t1) == [cert(A).fingerprint]
    assert expect(resolved_after=t2) == []  # resolved at t2: the lower bound is exclusive
    assert expect(resolved_after=t1, resolved_before=t2 - timedelta(microseconds=1)) == []
    assert expect(resolved_before=t2) == [cert(A).fingerprint]  # resolved at t2: the bound is inclusive
    assert expect(resolved_before=t2 - timedelta(microseconds=1)) == []
    assert expect(assignees=["stp", "syt"]) == [cert(C).fingerprint, hsts(B).fingerprint]
    assert expect(assignees=["stp"], statuses=["open"], portal_urls=[B]) == [hsts(B).fingerprint]
    # owners: assigned to the agency, or unassigned on a subject it owns
    assert expect(owners=["stp"], owned_subjects=[A]) == where(
        lambda f: f.assignee == "stp" or (f.assignee is None and f.portal_url == A))
    assert set(expect(owners=["stp"], owned_subjects=[A])) == {cert(A).fingerprint, hsts(A).fingerprint,
                                                               hsts(B).fingerprint}
    assert expect(owners=["syt"], owned_subjects=[C]) == where(lambda f: f.portal_url == C)
    assert expect(owners=["stp"]) == [hsts(B).fingerprint]
    assert expect(owners=["nobody"], owned_subjects=[B]) == [tls10(B).fingerprint,
                                                             finding(B, "http.server.banner").fingerprint]


def test_query_findings_sorts(backend: Backend, world: dict[str, datetime]) -> None:
    store = backend.findings
    everything = store.list_findings()
    severity = sorted(everything, key=lambda f: (f.severity.rank, f.portal_url, f.check_id, f.fingerprint))
    assert _query(store, sort="severity") == fps(severity)
    first = sorted(everything, key=lambda f: (f.first_seen, f.fingerprint), reverse=True)
    assert _query(store, sort="first_seen") == fps(first)
    last = sorted(everything, key=lambda f: (f.last_seen, f.fingerprint), reverse=True)
    assert _query(store, sort="last_seen") == fps(last)
    assert _query(store, sort="last_seen")[0] == hsts(A).fingerprint
    assert [f.severity for f in severity][:2] == [Severity.CRITICAL, Severity.HIGH]


@pytest.mark.parametrize("sort", list(FindingSort))
def test_pages_walked_to_the_end_while_findings_are_added(backend: Backend, clock: FixedClock,
                                                          world: dict[str, datetime], sort: FindingSort) -> None:
    store = backend.findings
    before = _query(store, sort=sort.value)
    seen: list[str] = []
    cursor = None
    added = 0
    while True:
        page = store.query_findings(FindingQuery(sort=sort, limit=2, cursor=cursor))
        assert len(page.items) <= 2
        seen += fps(page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
        # between pages another scan adds findings, before and after the cursor in every order
        clock.advance(timedelta(minutes=1))
        added += 1
        run = store.begin_run("inv", 2)
        store.record_portal(run.id, A, [], [finding(A, f"http.new.{added}", Severity.CRITICAL)])
        store.record_portal(run.id, "https://z.dongnai.gov.vn/", [],
                            [finding("https://z.dongnai.gov.vn/", f"tls.new.{added}", Severity.INFO)])
        store.finish_run(run.id, True)
        assert added < 20
    assert len(seen) == len(set(seen))  # nothing twice
    assert set(before) <= set(seen)  # nothing of what was there is skipped
    after = _query(store, sort=sort.value)
    assert seen == [fp for fp in after if fp in set(seen)]  # and in the order


@pytest.mark.parametrize("sort", list(FindingSort))
def test_a_cursor_without_a_limit_reads_the_rest(backend: Backend, world: dict[str, datetime],
                                                 sort: FindingSort) -> None:
    store = backend.findings
    everything = _query(store, sort=sort.value)
    page = store.query_findings(FindingQuery(sort=sort, limit=3))
    assert fps(page.items) == everything[:3] and page.next_cursor is not None
    rest = store.query_findings(FindingQuery(sort=sort, cursor=page.next_cursor))
    assert (fps(rest.items), rest.next_cursor) == (everything[3:], None)
    last = store.query_findings(FindingQuery(sort=sort, limit=len(everything)))
    assert (fps(last.items), last.next_cursor) == (everything, None)
    filtered = store.query_findings(FindingQuery(sort=sort, limit=1, statuses=(FindingStatus.OPEN,)))
    following = store.query_findings(FindingQuery(sort=sort, limit=100, statuses=(FindingStatus.OPEN,),
                                                  cursor=filtered.next_cursor))
    assert fps(filtered.items) + fps(following.items) == _query(store, sort=sort.value, statuses=["open"])


FORGED = [
    (FindingSort.SEVERITY, "not a cursor!"), (FindingSort.SEVERITY, "eyJ4IjoxfQ"),
    (FindingSort.SEVERITY, encode_cursor(FindingSort.FIRST_SEEN, ["2026-01-01T00:00:00+00:00", "x"])),
    (FindingSort.SEVERITY, encode_cursor(FindingSort.SEVERITY, ["1", A, "c", "f"])),
    (FindingSort.SEVERITY, encode_cursor(FindingSort.SEVERITY, [True, A, "c", "f"])),
    (FindingSort.SEVERITY, encode_cursor(FindingSort.SEVERITY, [1, A, "c"])),
    (FindingSort.SEVERITY, encode_cursor(FindingSort.SEVERITY, [1, 2, "c", "f"])),
    (FindingSort.LAST_SEEN, encode_cursor(FindingSort.LAST_SEEN, ["yesterday", "f"])),
    (FindingSort.LAST_SEEN, encode_cursor(FindingSort.LAST_SEEN, ["2026-01-01T00:00:00", "f"])),  # naive
    (FindingSort.FIRST_SEEN, encode_cursor(FindingSort.FIRST_SEEN, [5, "f"])),
]


def test_a_forged_cursor_is_refused(backend: Backend, world: dict[str, datetime]) -> None:
    for sort, cursor in FORGED:
        for limit in (2, None):
            with pytest.raises(CursorError):
                backend.findings.query_findings(FindingQuery(sort=sort, limit=limit, cursor=cursor))


# --- triage ---------------------------------------------------------------------------------------------------


def test_set_status_history_resolved_at_and_note(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    fp = cert().fingerprint
    scan(store, clock, [cert()])
    clock.advance(timedelta(hours=1))
    resolved = store.set_status(fp, FindingStatus.RESOLVED, actor="minh", note="renewed")
    assert (resolved.status, resolved.resolved_at, resolved.status_note) == (FindingStatus.RESOLVED, clock.now(),
                                                                             "renewed")
    assert store.finding(fp) == resolved
    acked = store.set_status(fp, FindingStatus.ACKNOWLEDGED, actor="lan")
    assert (acked.resolved_at, acked.status_note) == (None, None)
    assert store.list_findings(statuses=[FindingStatus.ACKNOWLEDGED]) == [acked]  # read back at once
    manual = [(e.actor, e.old_status, e.new_status, e.run_id, e.note) for e in store.events(fp)][1:]
    assert manual == [("minh", FindingStatus.OPEN, FindingStatus.RESOLVED, None, "renewed"),
                      ("lan", FindingStatus.RESOLVED, FindingStatus.ACKNOWLEDGED, None, None)]
    with pytest.raises(KeyError, match="no finding with fingerprint 'deadbeef'"):
        store.set_status("deadbeef", FindingStatus.RESOLVED, actor="lan")


def test_set_status_keeps_a_risk_acceptance_and_clears_it_after(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    fp = cert().fingerprint
    scan(store, clock, [cert()])
    expires = clock.now() + timedelta(days=90)
    accepted = store.set_status(fp, FindingStatus.RISK_ACCEPTED, "lan", "legacy", risk_expires=expires,
                                risk_approver="giam-doc")
    assert (accepted.risk_expires, accepted.risk_approver, accepted.status_note) == (expires, "giam-doc", "legacy")
    assert store.finding(fp) == accepted
    acked = store.set_status(fp, FindingStatus.ACKNOWLEDGED, "lan", risk_expires=expires, risk_approver="x")
    assert (acked.risk_expires, acked.risk_approver) == (None, None)  # only a risk acceptance keeps them


@pytest.mark.parametrize("closed", [FindingStatus.RESOLVED, FindingStatus.FALSE_POSITIVE])
def test_reopening_by_hand_starts_a_new_open_period(backend: Backend, clock: FixedClock,
                                                    closed: FindingStatus) -> None:
    store = backend.findings
    fp = cert().fingerprint
    scan(store, clock, [cert()])
    opened = clock.now()
    store.set_deadlines({fp: (opened + timedelta(days=5), opened + timedelta(days=7))})
    clock.advance(timedelta(days=1))
    store.set_status(fp, closed, "lan")
    clock.advance(timedelta(days=1))
    reopened = store.set_status(fp, FindingStatus.OPEN, "lan", "seen again by hand")
    assert (reopened.opened_at, reopened.due_at, reopened.warn_at, reopened.resolved_at) == (clock.now(), None,
                                                                                          None, None)
    assert store.without_deadline([Severity.HIGH]) == [reopened]


def test_acknowledged_opened_again_keeps_its_period(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    fp = cert().fingerprint
    scan(store, clock, [cert()])
    opened = clock.now()
    store.set_deadlines({fp: (opened + timedelta(days=5), opened + timedelta(days=7))})
    clock.advance(timedelta(days=1))
    store.set_status(fp, FindingStatus.ACKNOWLEDGED, "lan")
    back = store.set_status(fp, FindingStatus.OPEN, "lan")
    assert (back.opened_at, back.due_at, back.warn_at) == (opened, opened + timedelta(days=7),
                                                           opened + timedelta(days=5))


def test_add_comment(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    fp = cert().fingerprint
    scan(store, clock, [cert()])
    store.set_status(fp, FindingStatus.ACKNOWLEDGED, "lan")
    before = store.finding(fp)
    clock.advance(timedelta(minutes=3))
    event = store.add_comment(fp, "minh", "Đã liên hệ / contacted")
    assert (event.fingerprint, event.at, event.actor, event.old_status, event.new_status, event.note,
            event.run_id) == (fp, clock.now(), "minh", FindingStatus.ACKNOWLEDGED, FindingStatus.ACKNOWLEDGED,
                              "Đã liên hệ / contacted", None)
    assert store.events(fp)[-1] == event
    assert store.finding(fp) == before
    with pytest.raises(KeyError):
        store.add_comment("unknown", "minh", "x")


def test_assign(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    fp = cert().fingerprint
    scan(store, clock, [cert()])
    assigned = store.assign(fp, "stp", "lan")
    assert (assigned.assignee, assigned.status) == ("stp", FindingStatus.OPEN)
    assert store.finding(fp) == assigned
    assert _query(store, assignees=["stp"]) == [fp]
    cleared = store.assign(fp, None, "lan")
    assert cleared.assignee is None and _query(store, assignees=["stp"]) == []
    assert [e.note for e in store.events(fp)][1:] == ["assigned to stp", "assignment cleared"]
    with pytest.raises(KeyError):
        store.assign("unknown", "stp", "lan")


def test_without_deadline_and_set_deadlines(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    info = finding(A, "tls.info", Severity.INFO)
    scan(store, clock, [cert(), tls10(), hsts(), info])
    store.set_status(hsts().fingerprint, FindingStatus.ACKNOWLEDGED, "lan")
    store.set_status(tls10().fingerprint, FindingStatus.FALSE_POSITIVE, "lan")
    graded = [Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM]
    assert sorted(fps(store.without_deadline(graded))) == sorted([cert().fingerprint, hsts().fingerprint])
    assert store.without_deadline([]) == []
    assert fps(store.without_deadline([Severity.INFO])) == [info.fingerprint]
    assert len(store.without_deadline(graded, limit=1)) == 1
    now = clock.now()
    first = (now + timedelta(days=5), now + timedelta(days=7))
    assert store.set_deadlines({cert().fingerprint: first, "unknown": first}) == 1
    stored = store.finding(cert().fingerprint)
    assert stored is not None and (stored.warn_at, stored.due_at) == first
    assert fps(store.without_deadline(graded)) == [hsts().fingerprint]
    later = (now + timedelta(days=50), now + timedelta(days=70))
    assert store.set_deadlines({cert().fingerprint: later, hsts().fingerprint: later}) == 1  # never moved
    assert (store.finding(cert().fingerprint).warn_at, store.finding(cert().fingerprint).due_at) == first  # type: ignore[union-attr]
    assert store.finding(hsts().fingerprint).due_at == later[1]  # type: ignore[union-attr]
    assert store.without_deadline(graded) == []
    assert store.set_deadlines({}) == 0


def test_expire_risk_acceptances(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    soon, later = cert(), hsts()
    scan(store, clock, [soon, later, tls10()])
    now = clock.now()
    store.set_status(soon.fingerprint, FindingStatus.RISK_ACCEPTED, "lan", risk_expires=now + timedelta(days=1),
                     risk_approver="giam-doc")
    store.set_status(later.fingerprint, FindingStatus.RISK_ACCEPTED, "lan", risk_expires=now + timedelta(days=9))
    store.set_status(tls10().fingerprint, FindingStatus.RISK_ACCEPTED, "lan")  # no expiry: kept for good
    assert store.expire_risk_acceptances(now, "sla") == []
    clock.advance(timedelta(days=1))
    expired = store.expire_risk_acceptances(clock.now(), "sla")  # at the expiry: expired
    assert fps(expired) == [soon.fingerprint]
    back = expired[0]
    assert (back.status, back.opened_at, back.due_at, back.warn_at) == (FindingStatus.OPEN, clock.now(), None, None)
    assert store.finding(soon.fingerprint) == back
    event = store.events(soon.fingerprint)[-1]
    assert (event.actor, event.old_status, event.new_status) == ("sla", FindingStatus.RISK_ACCEPTED,
                                                                 FindingStatus.OPEN)
    assert event.note is not None and "giam-doc" in event.note
    assert store.expire_risk_acceptances(clock.now(), "sla") == []
    clock.advance(timedelta(days=30))
    assert fps(store.expire_risk_acceptances(clock.now(), "sla")) == [later.fingerprint]
    assert store.finding(tls10().fingerprint).status is FindingStatus.RISK_ACCEPTED  # type: ignore[union-attr]


# --- the SLA ----------------------------------------------------------------------------------------------------


@pytest.fixture
def sla_world(backend: Backend, clock: FixedClock) -> datetime:
    """Findings in every SLA state around the returned `now`, deadlines exactly on it too."""
    store = backend.findings
    day = timedelta(days=1)
    start = clock.now()
    now = start + 10 * day
    cases: list[tuple[str, tuple[datetime, datetime] | None, FindingStatus | None, timedelta | None]] = [
        # (check, (warn, due), status set by hand, when it was resolved after start)
        ("within", (now + day, now + 2 * day), None, None),
        ("warn_on_now", (now, now + day), None, None),
        ("pre_breach", (now - day, now + day), None, None),
        ("due_on_now", (now - day, now), FindingStatus.ACKNOWLEDGED, None),
        ("breached", (now - 3 * day, now - day), None, None),
        ("breached_ack", (now - 3 * day, now - day), FindingStatus.ACKNOWLEDGED, None),
        ("met", (start + 2 * day, start + 3 * day), FindingStatus.RESOLVED, 2 * day),
        ("met_on_due", (start + 2 * day, start + 3 * day), FindingStatus.RESOLVED, 3 * day),
        ("missed", (start + day, start + 2 * day), FindingStatus.RESOLVED, 3 * day),
        ("resolved_later", (start + day, now + 2 * day), FindingStatus.RESOLVED, 12 * day),
        ("false_positive", (now - 3 * day, now - day), FindingStatus.FALSE_POSITIVE, None),
        ("risk_accepted", (now - 3 * day, now - day), FindingStatus.RISK_ACCEPTED, None),
        ("no_deadline", None, None, None),
        ("resolved_no_deadline", None, FindingStatus.RESOLVED, 2 * day),
    ]
    found = {name: finding(B if index % 2 else A, f"tls.sla.{name}") for index, (name, *_) in enumerate(cases)}
    run = store.begin_run("inv", 2)
    store.record_portal(run.id, A, [], [f for f in found.values() if f.portal_url == A])
    store.record_portal(run.id, B, [], [f for f in found.values() if f.portal_url == B])
    store.finish_run(run.id, True)
    store.set_deadlines({found[name].fingerprint: pair for name, pair, _, _ in cases if pair is not None})
    for name, _, status, resolved_after in sorted(cases, key=lambda c: c[3] or timedelta(0)):
        if status is FindingStatus.RESOLVED:
            assert resolved_after is not None
            clock.advance(start + resolved_after - clock.now())
        if status is not None:
            store.set_status(found[name].fingerprint, status, "lan")
    store.assign(found["missed"].fingerprint, "stp", "lan")
    store.assign(found["breached"].fingerprint, "stp", "lan")
    return now


def test_sla_query_agrees_with_sla_state(backend: Backend, sla_world: datetime) -> None:
    store = backend.findings
    everything = store.list_findings()
    day = timedelta(days=1)
    for now in (sla_world, sla_world - day, sla_world + day, sla_world + timedelta(microseconds=1),
                sla_world - 20 * day):
        states = {f.fingerprint: sla_state(f, now) for f in everything}
        if now == sla_world:  # the world holds every state at its `now`
            assert set(states.values()) == set(SlaState)
        for state in SlaState:
            expected = [fp for fp in fps(everything) if states[fp] is state]
            assert _query(store, sla_states=[state.value], now=now) == expected, (state, now)
        pair = [SlaState.BREACHED, SlaState.PRE_BREACH]
        assert _query(store, sla_states=[s.value for s in pair], now=now) == [
            fp for fp in fps(everything) if states[fp] in pair]
    with pytest.raises(ValueError, match="needs `now`"):
        store.query_findings(FindingQuery(sla_states=("breached",)))


def test_sla_tally(backend: Backend, clock: FixedClock, sla_world: datetime) -> None:
    store = backend.findings
    start = sla_world - timedelta(days=10)
    tally = {(t.subject, t.assignee): (t.met, t.missed, t.breached)
             for t in store.sla_tally(start, sla_world, sla_world)}
    everything = store.list_findings()
    expected: dict[tuple[str, str | None], list[int]] = {}
    for f in everything:
        state = sla_state(f, sla_world)
        closed = f.resolved_at is not None and start < f.resolved_at <= sla_world
        column = {SlaState.MET: 0, SlaState.MISSED: 1}.get(state) if closed else (
            2 if state is SlaState.BREACHED else None)
        if column is not None:
            expected.setdefault((f.portal_url, f.assignee), [0, 0, 0])[column] += 1
    assert tally == {key: tuple(value) for key, value in expected.items()}
    assert sum(met for met, _, _ in tally.values()) == 2
    assert sum(missed for _, missed, _ in tally.values()) == 1
    assert sum(breached for _, _, breached in tally.values()) == 2
    assert any(assignee == "stp" for _, assignee in tally)
    # the window is (after, before]: a resolution on `after` is out, one on `before` in
    resolved = sorted(f.resolved_at for f in everything if f.resolved_at is not None and f.due_at is not None)
    assert resolved[0] < resolved[1] == resolved[2] < resolved[3]
    narrow = store.sla_tally(resolved[0], resolved[1], sla_world - timedelta(days=30))
    assert sum(t.met + t.missed for t in narrow) == 2 and sum(t.breached for t in narrow) == 0
    assert store.sla_tally(sla_world + timedelta(days=50), sla_world + timedelta(days=60), start) == []
