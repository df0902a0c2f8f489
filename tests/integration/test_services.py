"""The services every front end calls: lookups, triage, imports, the --fail-on rule — and the audit log,
which records every state change (who, when, what, before → after)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from soc.cli import app
from soc.cli.common import CliState
from soc.core.clock import FixedClock
from soc.core.models import Finding, FindingStatus, Observation, PortalScan, RunStatus, Severity
from soc.core.settings import Settings
from soc.inventory import load_inventory
from soc.services.context import ServiceContext, ServiceError, open_context
from soc.services.findings import find_finding, history, triage
from soc.services.register import import_coverage, import_systems
from soc.services.runs import diff_runs, find_run
from soc.services.scans import fails_on
from soc.store import open_backend

REPO = Path(__file__).resolve().parents[2]
PORTAL = "https://stp.dongnai.gov.vn/"


def finding(check_id: str = "tls.cert.expired", detail: str = "", severity: Severity = Severity.HIGH) -> Finding:
    return Finding(portal_url=PORTAL, check_id=check_id, severity=severity, title_vi="t", title_en="t",
                   evidence="e", detail=detail)


def record(context: ServiceContext, findings: list[Finding]) -> str:
    store = context.backend.findings
    run = store.begin_run("inv", 1)
    observation = Observation(collector="tls", portal_url=PORTAL, observed_at=context.clock.now(), complete=True)
    assessment = PortalScan(run_id=run.id, portal_url=PORTAL, recorded_at=context.clock.now(), collectors={"tls": True})
    store.record_portal(run.id, PORTAL, [observation], findings, assessment)
    store.finish_run(run.id, complete=True)
    return run.id


def test_triage_by_prefix_is_audited_with_before_and_after(context: ServiceContext, clock: FixedClock) -> None:
    expired = finding()
    record(context, [expired])
    clock.advance(timedelta(hours=1))
    updated = triage(context, expired.fingerprint[:6], FindingStatus.RISK_ACCEPTED, "chờ gia hạn / renewal ordered",
                     expires=date(2026, 12, 31), approver="Phó Giám đốc Sở")
    assert updated.status is FindingStatus.RISK_ACCEPTED
    [entry] = context.backend.audit.entries(action_prefix="finding.")
    assert (entry.actor, entry.action, entry.subject, entry.at) == ("tester", "finding.triage", expired.fingerprint,
                                                                    clock.now())
    assert entry.before == {"status": "open", "note": None}
    assert entry.after == {"status": "risk_accepted", "note": "chờ gia hạn / renewal ordered",
                           "expires": "2026-12-30T17:00:00+00:00", "approver": "Phó Giám đốc Sở"}
    assert [e.new_status for e in history(context, expired.fingerprint)] == [FindingStatus.OPEN,
                                                                             FindingStatus.RISK_ACCEPTED]


def test_finding_lookup_names_missing_and_ambiguous_ids(context: ServiceContext) -> None:
    findings = [finding(detail=str(i)) for i in range(40)]  # 40 fingerprints: some share a first hex digit
    record(context, findings)
    first = findings[0].fingerprint
    assert find_finding(context, first).fingerprint == first
    with pytest.raises(ServiceError, match="no finding"):
        find_finding(context, "zz")
    shared = next(f.fingerprint[0] for f in findings[1:] if f.fingerprint[0] == first[0])
    with pytest.raises(ServiceError, match="several findings"):
        find_finding(context, shared)
    assert context.backend.audit.entries() == []  # lookups change nothing


def test_fail_on_ignores_triaged_findings(context: ServiceContext) -> None:
    high, low = finding(), finding("tls.protocol.tls10", severity=Severity.LOW)
    run_id = record(context, [high, low])
    assert fails_on(context, run_id, Severity.HIGH) and fails_on(context, run_id, Severity.LOW)
    triage(context, high.fingerprint, FindingStatus.FALSE_POSITIVE, "CA nội bộ")
    assert not fails_on(context, run_id, Severity.HIGH) and fails_on(context, run_id, Severity.LOW)


def test_run_lookup_and_diff(context: ServiceContext, clock: FixedClock) -> None:
    first = record(context, [finding(), finding("tls.protocol.tls10")])
    clock.advance(timedelta(days=1))
    second = record(context, [finding()])
    assert find_run(context, second[:8]).id == second
    changes = diff_runs(context, first[:8], second)
    assert (changes.counts.new, changes.counts.still_open, changes.counts.resolved) == (0, 1, 1)
    with pytest.raises(ServiceError, match="no run"):
        find_run(context, "nope")


def test_imports_are_audited_with_their_compliance_evaluation(context: ServiceContext, clock: FixedClock) -> None:
    inventory = load_inventory(REPO / "examples" / "dongnai.yaml")
    systems = import_systems(context, REPO / "examples" / "he-thong-thong-tin.csv", inventory)
    coverage = import_coverage(context, REPO / "examples" / "phong-chong-ma-doc.csv", inventory)
    assert systems.evaluation is not None and coverage.evaluation is not None
    actions = [(e.action, e.subject) for e in reversed(context.backend.audit.entries())]
    assert actions == [("register.systems.import", "he-thong-thong-tin.csv"),
                       ("compliance.evaluate", systems.evaluation.id),
                       ("register.coverage.import", "phong-chong-ma-doc.csv"),
                       ("compliance.evaluate", coverage.evaluation.id)]
    entry = context.backend.audit.entries(action_prefix="register.systems")[0]
    assert entry.after is not None and entry.after["added"] == len(systems.changes.added) > 0
    evaluation = context.backend.audit.entries(subject=systems.evaluation.id)[0]
    assert evaluation.after is not None and evaluation.after["as_of"] == "2026-11-27"


def test_an_effective_date_in_the_future_is_refused(context: ServiceContext, clock: FixedClock) -> None:
    inventory = load_inventory(REPO / "examples" / "dongnai.yaml")
    with pytest.raises(ServiceError, match="in the future"):
        import_systems(context, REPO / "examples" / "he-thong-thong-tin.csv", inventory,
                       effective=clock.now() + timedelta(days=1))
    assert context.backend.register.systems_as_of(clock.now() + timedelta(days=2)) == []
    assert context.backend.audit.entries() == []


def test_abandoned_runs_are_marked_when_a_context_opens_and_audited(db_path: Path, clock: FixedClock) -> None:
    backend = open_backend(db_path, clock)
    run = backend.findings.begin_run("inv", 3)
    backend.close()
    clock.advance(timedelta(hours=7))
    with open_context(Settings(db=db_path), clock, "lan") as context:
        stored = context.backend.findings.get_run(run.id)
        assert stored is not None and stored.status is RunStatus.INCOMPLETE
        [entry] = context.backend.audit.entries(action_prefix="scan.run.abandoned")
        assert (entry.subject, entry.after) == (run.id, {"status": "incomplete"})


def test_every_state_changing_command_writes_the_audit_log(tmp_path: Path, clock: FixedClock) -> None:
    db, inventory = tmp_path / "cli.db", str(REPO / "examples" / "dongnai.yaml")
    csv = tmp_path / "portals.csv"
    csv.write_text("url,agency,agency_name\nhttps://moi.dongnai.gov.vn/,moi,Sở Mới\n", encoding="utf-8")

    def soc(*args: str) -> None:
        result = CliRunner().invoke(app, [*args, "--db", str(db)], obj=CliState(clock))
        assert result.exit_code == 0, result.output

    soc("systems", "import", str(REPO / "examples" / "he-thong-thong-tin.csv"), "-i", inventory, "--actor", "lan")
    soc("coverage", "import", str(REPO / "examples" / "phong-chong-ma-doc.csv"), "-i", inventory, "--actor", "lan")
    soc("inventory", "import", str(csv), "--into", str(tmp_path / "inv.yaml"))
    backend = open_backend(db, clock)
    try:
        some = backend.findings.list_findings()[0]
    finally:
        backend.close()
    soc("triage", some.fingerprint[:8], "--status", "acknowledged", "--note", "đã tiếp nhận", "--actor", "minh")
    backend = open_backend(db, clock)
    try:
        entries = list(reversed(backend.audit.entries()))
    finally:
        backend.close()
    assert [e.action for e in entries] == ["register.systems.import", "compliance.evaluate",
                                           "register.coverage.import", "compliance.evaluate", "inventory.import",
                                           "finding.triage"]
    assert [e.actor for e in entries if e.action != "inventory.import"] == ["lan"] * 4 + ["minh"]
    assert all(e.at == clock.now() for e in entries)


def test_audit_command_shows_the_log(tmp_path: Path, clock: FixedClock) -> None:
    db = tmp_path / "cli.db"
    args = ["systems", "import", str(REPO / "examples" / "he-thong-thong-tin.csv"), "-i",
            str(REPO / "examples" / "dongnai.yaml"), "--actor", "lan", "--db", str(db)]
    assert CliRunner().invoke(app, args, obj=CliState(clock)).exit_code == 0
    shown = CliRunner().invoke(app, ["audit", "--action", "register.", "--json", "--db", str(db)], obj=CliState(clock))
    assert shown.exit_code == 0, shown.output
    [entry] = json.loads(shown.output)["entries"]
    assert (entry["action"], entry["actor"], entry["subject"]) == ("register.systems.import", "lan",
                                                                   "he-thong-thong-tin.csv")
    table = CliRunner().invoke(app, ["audit", "--db", str(db)], obj=CliState(clock))
    assert "compliance.evaluate" in table.output and "27/11/2026 09:00" in table.output


def test_id_prefixes_are_case_sensitive(context: ServiceContext) -> None:
    findings = [finding(detail=str(i)) for i in range(10)]
    record(context, findings)
    with_letter = next(f.fingerprint for f in findings if any(c.isalpha() for c in f.fingerprint[:6]))
    assert find_finding(context, with_letter[:6]).fingerprint == with_letter
    with pytest.raises(ServiceError, match="no finding"):
        find_finding(context, with_letter[:6].upper())
