"""Register history, compliance findings and KPIs — library and `soc` commands, on a temporary store."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import openpyxl  # type: ignore[import-untyped]
import pytest
from typer.testing import CliRunner, Result

from checks.compliance import evaluate_coverage, evaluate_system
from soc.cli import app
from soc.cli.common import CliState
from soc.compliance.kpi import ComplianceReport, Kpi, PortalVerdicts, Sources, TargetSpec, month_before, plan_for
from soc.compliance.models import ApprovalStatus, CoverageRecord, RequirementStatus, SystemRecord
from soc.compliance.rules import ruleset_for
from soc.core.clock import LOCAL_ZONE, FixedClock, end_of_day
from soc.core.models import FindingStatus, Observation, PortalScan
from soc.inventory import load_inventory
from soc.services.compliance import evaluate, kpis
from soc.services.context import ServiceContext
from soc.store import open_backend
from tests.conftest import NOW

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=LOCAL_ZONE)


def system(i: int, agency: str = "stp", **changes: object) -> SystemRecord:
    base: dict[str, object] = dict(id=f"HT{i}", name=f"Hệ thống {i}", agency=agency, proposed_level=2)
    base.update(changes)
    return SystemRecord.model_validate(base)


def approved(i: int, agency: str = "stp", **changes: object) -> SystemRecord:
    fields: dict[str, object] = dict(approved_level=2, status=ApprovalStatus.APPROVED, decision_date=date(2026, 1, 10),
                                     decision_number=f"{i}/QĐ")
    return system(i, agency, **(fields | changes))


# --- the register keeps every version --------------------------------------------------------------------------


def test_register_versions_history_and_as_of(context: ServiceContext) -> None:
    register = context.backend.register
    first = register.apply_systems([system(1), system(2)], actor="lan", source="jan.xlsx", at=T0)
    assert (first.added, first.changed) == (["HT1", "HT2"], [])
    later = T0 + timedelta(days=40)
    second = register.apply_systems([approved(1), system(2)], actor="minh", source="feb.xlsx", at=later)
    assert (second.changed, second.unchanged) == (["HT1"], ["HT2"])
    assert {(c.field, c.old, c.new) for c in second.fields} >= {("status", "not_started", "approved"),
                                                                 ("approved_level", None, 2)}
    assert [r.status for r in register.systems_as_of(T0 + timedelta(days=1)) if r.id == "HT1"] == [
        ApprovalStatus.NOT_STARTED]
    assert [r.status for r in register.systems_as_of(later) if r.id == "HT1"] == [ApprovalStatus.APPROVED]
    assert register.systems_as_of(T0 - timedelta(seconds=1)) == []
    history = register.system_history("HT1")
    assert [(h.actor, h.source) for h in history] == [("lan", "jan.xlsx"), ("minh", "feb.xlsx")]
    assert history[0].valid_to == history[1].valid_from


def test_an_earlier_dated_file_is_placed_before_what_is_known(context: ServiceContext) -> None:
    register = context.backend.register
    register.apply_systems([system(1)], actor="a", source="x", at=T0)
    register.apply_systems([system(1, name="Tên cũ")], actor="a", source="y", at=T0 - timedelta(days=10))
    assert [r.name for r in register.systems_as_of(T0 - timedelta(days=5))] == ["Tên cũ"]
    assert [r.name for r in register.systems_as_of(T0)] == ["Hệ thống 1"]


# --- compliance findings ---------------------------------------------------------------------------------------

DAY = date(2026, 11, 27)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (approved(1, requirements=RequirementStatus.MET, requirements_assessed=date(2026, 1, 10)), set()),
        (system(1, in_operation=True), {"approval.missing_in_operation"}),
        (system(1, in_operation=True, environment="test_real_data"), {"approval.missing_in_operation"}),
        (approved(1, requirements=RequirementStatus.PARTLY), {"approval.requirements_unmet"}),
        (approved(1, requirements=RequirementStatus.MET, proposed_level=3, approved_level=2),
         {"approval.level_mismatch"}),
        (approved(1, requirements=RequirementStatus.MET, handles_admin_procedures=True),
         {"approval.level_mismatch"}),  # 2026 rules: administrative procedures need level 3+
        (approved(1, requirements=RequirementStatus.MET, requirements_assessed=date(2025, 10, 1),
                  proposed_level=3, approved_level=3), {"approval.reassessment_due"}),
    ],
)
def test_system_findings(record: SystemRecord, expected: set[str]) -> None:
    findings = evaluate_system(record, ruleset_for(DAY), DAY)
    assert {f.check_id for f in findings} == expected


def test_missing_approval_is_critical_from_level_3() -> None:
    rules = ruleset_for(DAY)
    assert evaluate_system(system(1, in_operation=True, proposed_level=3), rules, DAY)[0].severity.value == "critical"
    assert evaluate_system(system(1, in_operation=True, proposed_level=2), rules, DAY)[0].severity.value == "high"


def test_admin_procedure_minimum_applies_only_under_the_2026_rules() -> None:
    record = approved(1, requirements=RequirementStatus.MET, handles_admin_procedures=True)
    before = date(2026, 6, 30)
    assert ruleset_for(before).id == "nd85-2016" and evaluate_system(record, ruleset_for(before), before) == []


def test_transition_deadlines_after_they_pass() -> None:
    after = date(2027, 7, 2)
    rules = ruleset_for(after)
    not_started = system(1)  # under investment, not in operation, never approved
    found = {(f.check_id, f.detail) for f in evaluate_system(not_started, rules, after)}
    assert ("approval.deadline_missed", "approval_old_procedure") in found
    assert ("approval.deadline_missed", "new_requirements") in found


def test_coverage_gap() -> None:
    assert evaluate_coverage(CoverageRecord(agency="stp", total_computers=10, protected=10, reporting_to_ncsc=10)) == []
    gap = evaluate_coverage(CoverageRecord(agency="stp", total_computers=10, protected=9, reporting_to_ncsc=7))
    assert [(f.check_id, f.portal_url) for f in gap] == [("malware.coverage_gap", "agency:stp")]
    assert "3 of 10" in gap[0].evidence


def test_compliance_findings_open_and_resolve_in_the_store(context: ServiceContext) -> None:
    store, register = context.backend.findings, context.backend.register
    register.apply_systems([system(1, in_operation=True)], actor="a", source="x", at=T0)
    evaluate(context, DAY)
    assert [(f.check_id, f.status) for f in store.list_findings()] == [
        ("approval.missing_in_operation", FindingStatus.OPEN)]
    register.apply_systems([approved(1, in_operation=True, requirements=RequirementStatus.MET)], actor="a",
                           source="y", at=T0 + timedelta(days=1))
    evaluate(context, DAY)
    assert [(f.check_id, f.status) for f in store.list_findings()] == [
        ("approval.missing_in_operation", FindingStatus.RESOLVED)]


# --- KPIs --------------------------------------------------------------------------------------------------------


def kpi(result: ComplianceReport, scope: str, target: str) -> Kpi:
    scopes = [result.province, *result.agencies]
    chosen = next(s for s in scopes if s.id == scope)
    return next(k for k in chosen.kpis if k.id == target)


def test_more_than_80_percent_means_strictly_more(context: ServiceContext, inventory_path: Path) -> None:
    register = context.backend.register
    register.apply_systems([approved(1), approved(2), approved(3), approved(4), system(5)], actor="a", source="x",
                           at=T0)
    inventory = load_inventory(inventory_path)
    exactly_80 = kpi(kpis(context, inventory, DAY), "province", "systems_approved")
    assert (exactly_80.numerator, exactly_80.denominator, exactly_80.percent) == (4, 5, 80.0)
    assert exactly_80.status == "not_met"
    assert exactly_80.included == ["HT1", "HT2", "HT3", "HT4"] and exactly_80.excluded == ["HT5"]
    register.apply_systems([approved(6)], actor="a", source="y", at=T0 + timedelta(hours=1))
    above = kpi(kpis(context, inventory, DAY), "province", "systems_approved")
    assert (above.numerator, above.denominator, above.status) == (5, 6, "met")


def test_exact_comparison_has_no_rounding() -> None:
    target = TargetSpec(id="x", kind="rate", op=">", percent=45, title={"vi": "x", "en": "x"})  # type: ignore[arg-type]
    assert target.met(9, 20) is False  # 45.000 %
    assert target.met(450001, 1000000) is True  # 45.0001 %
    assert target.met(0, 0) is None


def test_past_dates_use_the_register_as_it_stood(context: ServiceContext, inventory_path: Path) -> None:
    register = context.backend.register
    register.apply_systems([system(1), system(2)], actor="a", source="jan", at=datetime(2026, 1, 5, tzinfo=UTC))
    register.apply_systems([approved(1), system(2)], actor="a", source="mar", at=datetime(2026, 3, 5, tzinfo=UTC))
    inventory = load_inventory(inventory_path)
    feb = kpi(kpis(context, inventory, date(2026, 2, 20)), "province", "systems_approved")
    apr = kpi(kpis(context, inventory, date(2026, 4, 2)), "province", "systems_approved")
    assert (feb.numerator, apr.numerator) == (0, 1)
    assert (apr.previous_percent, apr.change) == (0.0, 50.0)  # 2 March: before the approval was recorded
    may = kpi(kpis(context, inventory, date(2026, 5, 10)), "province", "systems_approved")
    assert (may.previous_percent, may.percent, may.change) == (50.0, 50.0, 0.0)
    assert kpis(context, inventory, date(2026, 2, 20)).ruleset.id == "nd85-2016"
    assert kpis(context, inventory, date(2026, 7, 1)).ruleset.id == "luat116-2025"


def test_agency_scopes_and_coverage(context: ServiceContext, inventory_path: Path) -> None:
    register = context.backend.register
    register.apply_systems([approved(1, "stp"), system(2, "syt")], actor="a", source="x", at=T0)
    register.apply_coverage([CoverageRecord(agency="stp", total_computers=100, protected=100, reporting_to_ncsc=100),
                             CoverageRecord(agency="syt", total_computers=50, protected=40, reporting_to_ncsc=30)],
                            actor="a", source="c", at=T0)
    result = kpis(context, load_inventory(inventory_path), DAY)
    assert kpi(result, "stp", "systems_approved").status == "met"
    assert kpi(result, "syt", "systems_approved").status == "not_met"
    computers = kpi(result, "province", "computers_antimalware")
    assert (computers.numerator, computers.denominator, computers.excluded) == (130, 150, ["syt"])
    drills = kpi(result, "province", "drills_held")
    assert (drills.numerator, drills.status) == (0, "not_met")


def test_portal_kpis_come_from_complete_scans_of_the_last_30_days(
    context: ServiceContext, inventory_path: Path
) -> None:
    store = context.backend.findings
    stp, syt = "https://stp.dongnai.gov.vn/", "https://syt.dongnai.gov.vn/"
    recorded = end_of_day(DAY) - timedelta(days=3)
    old = end_of_day(DAY) - timedelta(days=45)

    def scan(url: str, at: datetime, complete: bool, label: bool | None) -> None:
        run = store.begin_run("x", 1)
        observations = [Observation(collector=c, portal_url=url, observed_at=at, complete=complete)
                        for c in ("tls", "http", "label")]
        assessment = PortalScan(run_id=run.id, portal_url=url, recorded_at=at,
                                collectors={"tls": complete, "http": complete, "label": True}, label_valid=label)
        store.record_portal(run.id, url, observations, [], assessment)

    scan(stp, recorded, True, True)
    scan(syt, old, True, True)  # too old to count
    result = kpis(context, load_inventory(inventory_path), DAY)
    assessed, labelled = kpi(result, "province", "portals_assessed"), kpi(result, "province", "portals_labelled")
    assert (assessed.included, assessed.excluded) == ([stp], [syt])
    assert (labelled.numerator, labelled.denominator, labelled.status) == (1, 2, "not_met")


def test_month_before_clamps_to_the_month_end() -> None:
    assert month_before(date(2026, 3, 31)) == date(2026, 2, 28)
    assert month_before(date(2026, 1, 15)) == date(2025, 12, 15)
    assert plan_for(DAY).targets[0].label == "> 80%"


def test_sources_split_by_agency() -> None:
    sources = Sources([system(1, "stp"), system(2, "syt")], [], PortalVerdicts(), [])
    assert {a: [r.id for r in s.systems] for a, s in sources.by_agency().items()} == {"stp": ["HT1"], "syt": ["HT2"]}


# --- the commands ------------------------------------------------------------------------------------------------


def write_register(path: Path, rows: list[list[object]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "HTTT"
    sheet.append(["DANH MỤC HỆ THỐNG THÔNG TIN"])
    sheet.merge_cells("A1:F1")
    sheet.append(["Mã hệ thống", "Tên hệ thống", "Cơ quan chủ quản", "Cấp độ đề xuất", "Cấp độ được phê duyệt",
                  "Trạng thái", "Ngày phê duyệt", "Đang vận hành"])
    for row in rows:
        sheet.append(row)
    book.create_sheet("Trống")  # an empty trailing sheet is normal
    book.save(path)
    return path


def run(*args: str) -> Result:
    """`soc …` in-process, on the suite's fixed clock."""
    return CliRunner().invoke(app, list(args), obj=CliState(FixedClock(NOW)))


def test_cli_import_rejects_a_broken_file_whole(tmp_path: Path, inventory_path: Path) -> None:
    db = tmp_path / "cli.db"
    good = write_register(tmp_path / "good.xlsx", [["HT1", "Quản lý văn bản", "Sở Tư pháp", 3, 3, "Đã phê duyệt",
                                                     "15/03/2024", "Có"]])
    assert run("systems", "import", str(good), "-i", str(inventory_path), "--db", str(db)).exit_code == 0
    broken = write_register(tmp_path / "broken.xlsx", [
        ["HT2", "Một cửa", "Sở Không Có", 2, None, "Đã trình", None, "Có"],
        ["HT3", "Y tế", "syt", 7, None, "Đã trình", "31/02/2024", "Không"],
        ["HT2", "Trùng", "stp", 2, None, "Đã trình", None, "Không"],
    ])
    result = run("systems", "import", str(broken), "-i", str(inventory_path), "--db", str(db))
    assert result.exit_code == 2
    output = result.output
    for expected in ("row 3", "Sở Không Có", "row 4", "7", "31/02/2024", "row 5", "HT2"):
        assert expected in output, expected
    backend = open_backend(db)
    try:
        assert [r.id for r in backend.register.systems_as_of(NOW)] == ["HT1"]
    finally:
        backend.close()


def test_cli_compliance_json_list_history_export(tmp_path: Path, inventory_path: Path) -> None:
    db = tmp_path / "cli.db"
    register = write_register(tmp_path / "r.xlsx", [
        ["HT1", "Quản lý văn bản", "stp", 3, 3, "Đã phê duyệt", "15/03/2024", "Có"],
        ["HT2", "Dịch vụ công", "syt", 3, None, "Đã trình", None, "Có"],
    ])
    assert run("systems", "import", str(register), "-i", str(inventory_path), "--db", str(db)).exit_code == 0
    result = run("compliance", "--json", "-i", str(inventory_path), "--db", str(db))
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["schema"] == "soc.compliance/1" and data["ruleset"]["id"] == "luat116-2025"
    approved_kpi = next(k for k in data["province"]["kpis"] if k["id"] == "systems_approved")
    assert (approved_kpi["numerator"], approved_kpi["denominator"], approved_kpi["status"]) == (1, 2, "not_met")
    assert {s["id"] for s in data["agencies"]} == {"stp", "syt"}
    listing = run("systems", "list", "--db", str(db))
    assert "HT2" in listing.output and "submitted" in listing.output
    history = run("systems", "history", "HT1", "--db", str(db))
    assert history.exit_code == 0 and "r.xlsx" in history.output
    exported = tmp_path / "export.xlsx"
    assert run("systems", "export", str(exported), "-i", str(inventory_path), "--db", str(db)).exit_code == 0
    assert run("systems", "import", str(exported), "-i", str(inventory_path), "--db", str(db)).exit_code == 0
    backend = open_backend(db)
    try:
        assert len(backend.register.system_history("HT1")) == 1  # the round trip changed nothing
    finally:
        backend.close()
    findings = run("findings", "--json", "--db", str(db))
    checks = {f["check_id"] for f in json.loads(findings.output)["findings"]}
    assert "approval.missing_in_operation" in checks


def test_cli_compliance_needs_an_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOC_INVENTORY", raising=False)
    result = run("compliance", "--db", str(tmp_path / "x.db"))
    assert result.exit_code == 2 and "no inventory" in result.output


def test_cli_unknown_agency_filter(tmp_path: Path, inventory_path: Path) -> None:
    result = run("compliance", "--agency", "nope", "-i", str(inventory_path), "--db", str(tmp_path / "x.db"))
    assert result.exit_code == 2 and "not an agency" in result.output


def test_approved_records_keep_the_legal_basis_of_their_decision() -> None:
    from soc.services.register import with_legal_basis

    assert with_legal_basis(approved(1, decision_date=date(2024, 3, 15))).legal_basis == "nd85-2016"
    assert with_legal_basis(approved(1, decision_date=date(2026, 9, 1))).legal_basis == "luat116-2025"
    assert with_legal_basis(approved(1, legal_basis="custom")).legal_basis == "custom"
    assert with_legal_basis(system(1)).legal_basis is None


def test_csv_export_neutralises_formulas_and_reads_them_back(tmp_path: Path) -> None:
    from soc.compliance.sheets import read_systems, write_systems

    record = system(1, name="=HYPERLINK(\"http://x\")")
    path = tmp_path / "out.csv"
    write_systems(path, [record], {"stp": "Sở Tư pháp"})
    assert "'=HYPERLINK" in path.read_text(encoding="utf-8-sig")
    assert read_systems(path, {"stp": "Sở Tư pháp"}).records == [record]


def test_example_register_and_coverage_import(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    inventory = str(repo / "examples" / "dongnai.yaml")
    db = str(tmp_path / "examples.db")
    for command, name in (("systems", "he-thong-thong-tin.csv"), ("coverage", "phong-chong-ma-doc.csv")):
        result = run(command, "import", str(repo / "examples" / name), "-i", inventory, "--db", db)
        assert result.exit_code == 0, result.output
    data = json.loads(run("compliance", "--json", "--as-of", "2026-11-27", "-i", inventory, "--db", db).output)
    kpis = {k["id"]: k for k in data["province"]["kpis"]}
    assert (kpis["systems_approved"]["numerator"], kpis["systems_approved"]["denominator"]) == (2, 4)
    assert (kpis["computers_antimalware"]["numerator"], kpis["computers_antimalware"]["denominator"]) == (621, 695)


def test_portal_kpis_ignore_failed_ports_and_tls_only_scans(context: ServiceContext, inventory_path: Path) -> None:
    store = context.backend.findings
    stp = "https://stp.dongnai.gov.vn/"

    def scan(at: datetime, collectors: dict[str, bool], label: bool | None) -> None:
        run = store.begin_run("x", 1)
        assessment = PortalScan(run_id=run.id, portal_url=stp, recorded_at=at, collectors=collectors,
                                label_valid=label)
        store.record_portal(run.id, stp, [], [], assessment)

    day_end = end_of_day(DAY)
    scan(day_end - timedelta(days=5), {"tls": True, "http": True, "label": True, "ports": False}, True)
    scan(day_end - timedelta(days=1), {"tls": True}, None)  # a TLS-only scan says nothing about the label
    result = kpis(context, load_inventory(inventory_path), DAY)
    assert kpi(result, "stp", "portals_assessed").status == "met"
    assert kpi(result, "stp", "portals_labelled").status == "met"
    # A month earlier nothing was scanned: the change is measured against that, not against today's scans.
    assert kpi(result, "stp", "portals_assessed").previous_percent == 0.0


def test_label_expiry_is_judged_on_the_vietnamese_calendar() -> None:
    from checks.trustlabel import evaluate_label
    from soc.core.observations import LabelObservation, TrustBadge, TrustLabelStatus

    badge = TrustBadge(how="link+img", image_host="stp.dongnai.gov.vn", slug="stpdongnaigovvn-1",
                       slug_domain="stpdongnaigovvn")
    status = TrustLabelStatus(domain="stp.dongnai.gov.vn", source="snapshot", found=True, status="valid",
                              expires=date(2026, 11, 26))
    # 27/11 01:00 in Hà Nội is still 26/11 in UTC: the label expired yesterday, locally.
    observed = datetime(2026, 11, 26, 18, 0, tzinfo=UTC)
    obs = LabelObservation(portal_url="https://stp.dongnai.gov.vn/", host="stp.dongnai.gov.vn",
                           observed_at=observed, page_read=True, badges=[badge], registry=status)
    assert [f.check_id for f in evaluate_label(obs)] == ["trustlabel.expired"]


def test_the_compliance_job_keeps_the_days_kpis(context: ServiceContext, inventory_path: Path) -> None:
    """The daily job stores the same figures `kpis` gives (what dashboards over time read), once per day."""
    from soc.services.jobs import run_job

    context.backend.register.apply_systems([approved(1), approved(2), system(3, agency="syt")], actor="a",
                                           source="x", at=T0)
    settings = context.settings.model_copy(update={"inventory": inventory_path})
    job_context = ServiceContext(settings, context.backend, context.clock, actor="scheduler")
    for _ in range(2):  # the day evaluated twice: its figures replaced, not doubled
        run = run_job(job_context, "compliance", context.clock.now(), "manual")
        assert run.outcome.value == "success", run.error
    report = kpis(context, load_inventory(inventory_path), NOW.date())
    rows = context.backend.kpis.history()
    expected = {(scope.id if scope is not report.province else "province", k.id): (k.numerator, k.denominator,
                                                                                      k.percent, k.status)
                for scope in [report.province, *report.agencies] for k in scope.kpis}
    assert {(r.scope, r.kpi_id): (r.numerator, r.denominator, r.percent, r.status) for r in rows} == expected
    assert {r.as_of for r in rows} == {NOW.date()} and run.detail["kpi_rows"] == len(expected)
    approved_row = next(r for r in rows if (r.scope, r.kpi_id) == ("province", "systems_approved"))
    assert approved_row.target_percent == 80.0
