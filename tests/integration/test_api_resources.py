"""The API's resources beyond findings: portals, runs and their diff, the register, KPIs, coverage, jobs (with
"run now") and the CSV/XLSX exports — on a real SQLite store, through the real app and its HTTP handling."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl  # type: ignore[import-untyped]
import pytest
from fastapi.testclient import TestClient

from checks.catalogue import make_finding
from soc.api import create_app
from soc.api.routes import exports
from soc.core.clock import LOCAL_ZONE, FixedClock
from soc.core.models import Finding, FindingStatus, JobOutcome, JobRun, Observation, PortalScan, Role, Severity
from soc.core.settings import Settings
from soc.inventory import load_inventory
from soc.services.context import ServiceContext, open_context
from soc.services.findings import triage
from soc.services.jobs import JOBS
from soc.services.register import import_coverage, import_systems
from soc.services.users import add_user, create_token
from tests.conftest import NOW
from tests.integration.api_world import StoreScheduler

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "examples" / "dongnai.yaml"
STP = "https://stp.dongnai.gov.vn/"
SYT = "https://syt.dongnai.gov.vn/"
PASSWORD = "mật-khẩu-thử-nghiệm-2026"
HYPERLINK = '=HYPERLINK("https://evil.example/","bấm vào đây")'
CLEAR_SCREEN = "\x1b[2J\x1b]0;pwned\x07 xoá màn hình"
BOM = "\ufeff"


@dataclass
class World:
    """A store with two runs on two portals of the example inventory, and tokens of an operator and a viewer."""

    context: ServiceContext
    clock: FixedClock
    settings: Settings
    operator: dict[str, str]
    viewer: dict[str, str]
    run1: str = ""
    run2: str = ""
    first: datetime = NOW
    second: datetime = NOW
    expired: Finding | None = None
    tls10: Finding | None = None
    disclosed: Finding | None = None
    escape: Finding | None = None

    def client(self, *, inventory: bool = True, scheduler: object | None = None) -> TestClient:
        """The app on this store (without an inventory configured: `inventory=False`)."""
        settings = self.settings if inventory else self.settings.model_copy(update={"inventory": None})
        return TestClient(create_app(settings, self.context.backend, self.clock, scheduler=scheduler))


def _record(context: ServiceContext, portal: str, findings: list[Finding], collectors: dict[str, bool],
            grade: str | None, score: int | None, run_id: str, data: dict[str, Any] | None = None) -> None:
    now = context.clock.now()
    observations = [Observation(collector=name, portal_url=portal, observed_at=now, complete=complete,
                                data=data or {}) for name, complete in collectors.items()]
    assessment = PortalScan(run_id=run_id, portal_url=portal, recorded_at=now, collectors=collectors,
                            tls_grade=grade, score=score, reasons=["TLS 1.0"] if grade else [],
                            label_valid=None)
    context.backend.findings.record_portal(run_id, portal, observations, findings, assessment)


def build(tmp_path: Path, *, register: bool = False) -> World:
    """Run 1 (yesterday): stp graded C with four findings (two with hostile evidence), syt graded A.
    Run 2 (now): stp graded B, TLS 1.0 gone (resolved); syt unreachable (incomplete, no grade). Then the
    server-version finding is acknowledged and the CSP one marked a false positive."""
    clock = FixedClock(NOW - timedelta(days=1))
    settings = Settings(db=tmp_path / "soc.db", inventory=INVENTORY)
    context = open_context(settings, clock, "tester")
    add_user(context, "binh.operator", Role.OPERATOR, PASSWORD)
    add_user(context, "dung.viewer", Role.VIEWER, PASSWORD)
    operator = {"Authorization": f"Bearer {create_token(context, 'binh.operator')[1]}"}
    viewer = {"Authorization": f"Bearer {create_token(context, 'dung.viewer')[1]}"}
    world = World(context, clock, settings, operator, viewer)
    world.expired = make_finding(STP, "tls.cert.expired", "notAfter 2026-11-01", severity=Severity.HIGH)
    world.tls10 = make_finding(STP, "tls.protocol.tls10", "TLS 1.0 accepted")
    world.disclosed = make_finding(STP, "http.server_version_disclosed", HYPERLINK, detail="@SUM(1+1)")
    world.escape = make_finding(STP, "http.header.csp_missing", CLEAR_SCREEN)
    store = context.backend.findings
    world.first = clock.now()
    run = store.begin_run(INVENTORY.name, 2)
    _record(context, STP, [world.expired, world.tls10, world.disclosed, world.escape], {"tls": True, "http": True},
            "C", 55, run.id, {"server": HYPERLINK, "title": CLEAR_SCREEN})
    _record(context, SYT, [], {"tls": True}, "A", 95, run.id)
    world.run1 = store.finish_run(run.id, complete=True).id
    clock.advance(timedelta(days=1))
    world.second = clock.now()
    run = store.begin_run(INVENTORY.name, 2)
    _record(context, STP, [world.expired], {"tls": True}, "B", 80, run.id)
    _record(context, SYT, [make_finding(SYT, "tls.unreachable", "timed out")], {"tls": False}, None, None, run.id)
    world.run2 = store.finish_run(run.id, complete=True).id
    triage(context, world.disclosed.fingerprint, FindingStatus.ACKNOWLEDGED)  # still counted as open
    triage(context, world.escape.fingerprint, FindingStatus.FALSE_POSITIVE, "trang thử nghiệm / test page")
    if register:
        inventory = load_inventory(INVENTORY)
        import_systems(context, REPO / "examples" / "he-thong-thong-tin.csv", inventory)
        import_coverage(context, REPO / "examples" / "phong-chong-ma-doc.csv", inventory)
    return world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One world for the tests that only read."""
    built = build(tmp_path_factory.mktemp("api-resources"), register=True)
    yield built
    built.context.close()


@pytest.fixture(scope="module")
def api(world: World) -> TestClient:
    """The app with the example inventory and no scheduler."""
    return world.client()


def _portal_id(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def _problem(response: Any, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    for word in words:
        assert word in body["detail"], body["detail"]


# --- portals ---------------------------------------------------------------------------------------------------


def test_portals_list_the_inventory_with_latest_assessment_and_open_counts(world: World, api: TestClient) -> None:
    response = api.get("/api/v1/portals", headers=world.viewer)
    assert response.status_code == 200, response.text
    items = {item["url"]: item for item in response.json()["items"]}
    assert len(items) == len(load_inventory(INVENTORY).portals)
    stp = items[STP]
    assert stp["id"] == _portal_id(STP) and stp["agency"] == "stp"
    assert (stp["grade"], stp["score"], stp["grade_reasons"]) == ("B", 80, ["TLS 1.0"])
    assert stp["last_run_id"] == world.run2
    assert datetime.fromisoformat(stp["last_scan"]) == world.second
    assert datetime.fromisoformat(stp["last_complete_scan"]) == world.second
    assert world.expired and world.disclosed and world.escape
    expected = {severity.value: 0 for severity in Severity}
    for finding in (world.expired, world.disclosed):  # TLS 1.0 resolved by run 2, CSP a false positive
        expected[finding.severity.value] += 1
    assert stp["open_findings"] == expected
    # syt could not be reached in run 2: its grade is the last complete scan's, its last scan run 2's
    syt = items[SYT]
    assert (syt["grade"], syt["score"], syt["last_run_id"]) == ("A", 95, world.run2)
    assert datetime.fromisoformat(syt["last_scan"]) == world.second
    assert datetime.fromisoformat(syt["last_complete_scan"]) == world.first
    unreachable = make_finding(SYT, "tls.unreachable", "timed out").severity
    assert syt["open_findings"] == {severity.value: int(severity is unreachable) for severity in Severity}
    never = items["https://congan.dongnai.gov.vn/"]
    assert never["grade"] is None and never["last_scan"] is None and sum(never["open_findings"].values()) == 0


def test_portals_filter_by_agency_and_refuse_an_unknown_one(world: World, api: TestClient) -> None:
    response = api.get("/api/v1/portals", params={"agency": "stp"}, headers=world.viewer)
    assert [item["url"] for item in response.json()["items"]] == [STP]
    _problem(api.get("/api/v1/portals", params={"agency": "nope"}, headers=world.viewer), 422, "nope", "agency")
    _problem(api.get("/api/v1/portals", params={"agency": "x" * 65}, headers=world.viewer), 422, "agency")
    _problem(api.get("/api/v1/portals", params={"agancy": "stp"}, headers=world.viewer), 400, "agancy")
    _problem(api.get("/api/v1/portals"), 401)


def test_one_portal_has_all_its_findings_and_the_observations_of_its_latest_run(world: World,
                                                                                 api: TestClient) -> None:
    response = api.get(f"/api/v1/portals/{_portal_id(STP)}", headers=world.viewer)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["portal"]["url"] == STP and body["portal"]["grade"] == "B"
    statuses = {finding["check_id"]: finding["status"] for finding in body["findings"]}
    assert statuses == {"tls.cert.expired": "open", "tls.protocol.tls10": "resolved",
                        "http.server_version_disclosed": "acknowledged", "http.header.csp_missing": "false_positive"}
    assert {finding["agency"] for finding in body["findings"]} == {"stp"}
    assert [(o["collector"], o["complete"]) for o in body["observations"]] == [("tls", True)]  # run 2's only
    run1_view = api.get(f"/api/v1/portals/{_portal_id(SYT)}", headers=world.viewer).json()
    assert [o["complete"] for o in run1_view["observations"]] == [False]
    _problem(api.get("/api/v1/portals/0123456789abcdef", headers=world.viewer), 404, "0123456789abcdef")
    _problem(api.get(f"/api/v1/portals/{'f' * 65}", headers=world.viewer), 422)


def test_without_an_inventory_portals_are_an_empty_list_and_an_id_is_not_found(world: World) -> None:
    bare = world.client(inventory=False)
    assert bare.get("/api/v1/portals", headers=world.viewer).json() == {"items": []}
    _problem(bare.get(f"/api/v1/portals/{_portal_id(STP)}", headers=world.viewer), 404)
    _problem(bare.get("/api/v1/kpis", headers=world.viewer), 422, "inventory", "SOC_INVENTORY")
    rows = list(csv.reader(io.StringIO(bare.get("/api/v1/exports/portals.csv", headers=world.viewer).text)))
    assert len(rows) == 1  # the header alone


# --- runs ------------------------------------------------------------------------------------------------------


def test_runs_list_newest_first_and_one_run_by_prefix(world: World, api: TestClient) -> None:
    items = api.get("/api/v1/runs", headers=world.viewer).json()["items"]
    ids = [item["id"] for item in items]
    assert ids.index(world.run2) < ids.index(world.run1)
    assert len(api.get("/api/v1/runs", params={"limit": 1}, headers=world.viewer).json()["items"]) == 1
    _problem(api.get("/api/v1/runs", params={"limit": 0}, headers=world.viewer), 422, "limit")
    _problem(api.get("/api/v1/runs", params={"limit": 1001}, headers=world.viewer), 422, "limit")
    run = api.get(f"/api/v1/runs/{world.run1[:10]}", headers=world.viewer).json()
    assert (run["id"], run["status"], run["portal_count"]) == (world.run1, "complete", 2)
    _problem(api.get("/api/v1/runs/zzzz", headers=world.viewer), 404, "no run")


def test_the_diff_of_two_runs(world: World, api: TestClient) -> None:
    response = api.get(f"/api/v1/runs/{world.run1[:10]}/diff/{world.run2}", headers=world.viewer)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["schema"] == "soc.diff/1" and (body["run_a"], body["run_b"]) == (world.run1, world.run2)
    assert world.expired and world.tls10 and world.disclosed and world.escape
    assert [f["fingerprint"] for f in body["still_open"]] == [world.expired.fingerprint]
    assert [f["check_id"] for f in body["new"]] == ["tls.unreachable"]
    # run 2 scanned stp again and no longer saw these (the http ones because it ran TLS only: still open in the
    # store, but absent from run 2)
    assert {f["fingerprint"] for f in body["resolved"]} == {world.tls10.fingerprint, world.disclosed.fingerprint,
                                                            world.escape.fingerprint}
    assert body["counts"] == {"new": 1, "still_open": 1, "resolved": 3}
    _problem(api.get(f"/api/v1/runs/{world.run1}/diff/nope", headers=world.viewer), 404, "nope")


# --- register, KPIs, coverage -----------------------------------------------------------------------------------


def test_systems_as_of_a_date_and_by_agency(world: World, api: TestClient) -> None:
    body = api.get("/api/v1/systems", headers=world.viewer).json()
    assert body["as_of"] == "2026-11-27"
    ids = {item["id"] for item in body["items"]}
    assert {"QLVB", "DVC", "CTTDT", "HSSK"} <= ids
    keys = [(item["agency"], item["id"]) for item in body["items"]]
    assert keys == sorted(keys)
    one = api.get("/api/v1/systems", params={"agency": "vpubnd"}, headers=world.viewer).json()["items"]
    assert {item["id"] for item in one} >= {"QLVB", "DVC"} and {item["agency"] for item in one} == {"vpubnd"}
    # the register is bitemporal: QLVB's approval of 15/03/2024 dates it back, the other rows start with the file
    def on(day: str) -> list[tuple[str, str]]:
        body = api.get("/api/v1/systems", params={"as_of": day}, headers=world.viewer).json()
        assert body["as_of"] == day
        return [(item["id"], item["status"]) for item in body["items"]]

    assert on("2024-03-14") == []
    assert on("2024-03-15") == [("QLVB", "approved")]
    _problem(api.get("/api/v1/systems", params={"as_of": "0001-01-01"}, headers=world.viewer), 422, "as_of")
    _problem(api.get("/api/v1/systems", params={"as_of": "27/11/2026"}, headers=world.viewer), 422, "as_of")
    _problem(api.get("/api/v1/systems", params={"agency": "nope"}, headers=world.viewer), 422, "nope")


def test_coverage_as_of_a_date(world: World, api: TestClient) -> None:
    body = api.get("/api/v1/coverage", headers=world.viewer).json()
    by_agency = {item["agency"]: item for item in body["items"]}
    assert by_agency["syt"]["total_computers"] == 420 and by_agency["syt"]["protected"] == 398
    only = api.get("/api/v1/coverage", params={"agency": "stp"}, headers=world.viewer).json()["items"]
    assert [item["agency"] for item in only] == ["stp"]
    assert api.get("/api/v1/coverage", params={"as_of": "2026-10-30"}, headers=world.viewer).json()["items"] == []
    _problem(api.get("/api/v1/coverage", params={"as_of": "9999-12-31"}, headers=world.viewer), 422, "as_of")


def test_kpis_as_of_a_date_for_the_province_or_one_agency(world: World, api: TestClient) -> None:
    response = api.get("/api/v1/kpis", headers=world.viewer)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["schema"] == "soc.compliance/1" and body["as_of"] == "2026-11-27" and body["known_at"] is None
    assert body["province"]["kpis"] and len(body["agencies"]) > 1
    one = api.get("/api/v1/kpis", params={"agency": "stp"}, headers=world.viewer).json()
    assert [scope["id"] for scope in one["agencies"]] == ["stp"]
    then = api.get("/api/v1/kpis", params={"known_at": "2026-11-26T09:00:00+07:00"}, headers=world.viewer)
    assert then.status_code == 200, then.text
    assert datetime.fromisoformat(then.json()["known_at"]) == datetime(2026, 11, 26, 9, tzinfo=LOCAL_ZONE)
    _problem(api.get("/api/v1/kpis", params={"agency": "nope"}, headers=world.viewer), 422, "agency", "nope")
    _problem(api.get("/api/v1/kpis", params={"known_at": "2027-01-01T00:00:00+07:00"}, headers=world.viewer), 422,
             "known_at", "future")
    _problem(api.get("/api/v1/kpis", params={"known_at": "0001-01-01T00:00:00"}, headers=world.viewer), 422,
             "known_at")


# --- jobs ------------------------------------------------------------------------------------------------------


def _job_run(context: ServiceContext, name: str, hours_ago: int, outcome: JobOutcome) -> JobRun:
    at = context.clock.now() - timedelta(hours=hours_ago)
    run = context.backend.jobs.start(JobRun(job=name, slot=at, started_at=at))
    assert run.id is not None
    return context.backend.jobs.finish(run.id, outcome, at + timedelta(minutes=5))


def test_jobs_without_a_scheduler_come_from_their_history(tmp_path: Path) -> None:
    world = build(tmp_path)
    _job_run(world.context, "portal_scan", 30, JobOutcome.SUCCESS)
    failed = _job_run(world.context, "portal_scan", 6, JobOutcome.FAILED)
    _job_run(world.context, "freshness", 1, JobOutcome.SUCCESS)
    api = world.client()
    body = api.get("/api/v1/jobs", headers=world.viewer).json()
    assert body["scheduler_running"] is False
    jobs = {job["name"]: job for job in body["items"]}
    assert list(jobs) == list(JOBS)  # the job table, whatever ran
    scan = jobs["portal_scan"]
    assert scan["schedule"] == world.settings.schedule.portal_scan and scan["next_run"] is None
    assert scan["description"] == JOBS["portal_scan"].description.vi
    assert jobs["compliance"]["last_run"] is None and jobs["freshness"]["last_run"]["outcome"] == "success"
    assert scan["last_run"]["id"] == failed.id and scan["last_run"]["outcome"] == "failed"
    assert datetime.fromisoformat(scan["last_success"]) == world.clock.now() - timedelta(hours=30, minutes=-5)
    runs = api.get("/api/v1/jobs/portal_scan/runs", headers=world.viewer).json()["items"]
    assert [run["outcome"] for run in runs] == ["failed", "success"]
    assert len(api.get("/api/v1/jobs/portal_scan/runs", params={"limit": 1}, headers=world.viewer).json()["items"]) == 1
    every = api.get("/api/v1/jobs/runs", headers=world.viewer).json()["items"]
    assert [run["job"] for run in every] == ["freshness", "portal_scan", "portal_scan"]
    assert api.get("/api/v1/jobs/never/runs", headers=world.viewer).json() == {"items": []}
    _problem(api.get("/api/v1/jobs/runs", params={"limit": 5000}, headers=world.viewer), 422, "limit")
    _problem(api.post("/api/v1/jobs/portal_scan/run", headers=world.operator), 503, "no scheduler")
    world.context.close()


def test_run_now_starts_a_job_once_and_refuses_it_while_it_runs(tmp_path: Path) -> None:
    world = build(tmp_path)
    scheduler = StoreScheduler(world.context)
    api = world.client(scheduler=scheduler)
    body = api.get("/api/v1/jobs", headers=world.viewer).json()
    assert body["scheduler_running"] is True and [job["name"] for job in body["items"]] == list(scheduler.names)
    _problem(api.post("/api/v1/jobs/portal_scan/run", headers=world.viewer), 403)  # a viewer may not scan
    response = api.post("/api/v1/jobs/portal_scan/run", headers=world.operator)
    assert response.status_code == 202, response.text
    started = response.json()
    assert response.headers["location"] == "/api/v1/jobs/portal_scan/runs" == started["runs"]
    assert started["job"] == "portal_scan" and started["run"]["id"] == started["id"]
    assert started["run"]["trigger"] == "manual" and started["run"]["outcome"] == "running"
    assert scheduler.asked == [("portal_scan", "binh.operator")]
    listed = api.get(response.headers["location"], headers=world.viewer).json()["items"]
    assert [run["id"] for run in listed] == [started["id"]]
    _problem(api.post("/api/v1/jobs/portal_scan/run", headers=world.operator), 409, "already running")
    _problem(api.post("/api/v1/jobs/nope/run", headers=world.operator), 404, "nope")
    assert scheduler.asked == [("portal_scan", "binh.operator")]
    world.context.close()


# --- exports ---------------------------------------------------------------------------------------------------


def _csv_rows(response: Any) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content.startswith(BOM.encode())
    return list(csv.reader(io.StringIO(response.content.decode("utf-8").removeprefix(BOM))))


def _xlsx_rows(response: Any) -> list[list[Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == exports.XLSX_TYPE
    workbook = openpyxl.load_workbook(io.BytesIO(response.content))
    return [list(row) for row in workbook.active.iter_rows(values_only=True)]


def _by_check(header: list[Any], rows: list[list[Any]]) -> dict[str, dict[str, Any]]:
    return {row[header.index("Mã kiểm tra / Check")]: dict(zip(header, row, strict=True)) for row in rows}


def test_findings_csv_neutralises_formulas_and_control_characters(world: World, api: TestClient) -> None:
    response = api.get("/api/v1/exports/findings.csv", params={"portal": STP}, headers=world.viewer)
    header, *rows = _csv_rows(response)
    assert response.headers["content-disposition"] == 'attachment; filename="soc-findings-2026-11-27.csv"'
    assert "Mức độ / Severity" in header and "Bằng chứng / Evidence" in header
    found = _by_check(header, rows)
    assert set(found) == {"tls.cert.expired", "tls.protocol.tls10", "http.server_version_disclosed",
                          "http.header.csp_missing"}
    disclosed = found["http.server_version_disclosed"]
    assert disclosed["Bằng chứng / Evidence"] == "'" + HYPERLINK
    assert disclosed["Chi tiết / Detail"] == "'@SUM(1+1)"
    assert disclosed["Cơ quan / Agency"] == "stp"
    escaped = found["http.header.csp_missing"]["Bằng chứng / Evidence"]
    assert escaped == "\\x1b[2J\\x1b]0;pwned\\x07 xoá màn hình"
    assert "\x1b" not in response.content.decode("utf-8") and "\x07" not in response.content.decode("utf-8")
    assert found["tls.cert.expired"]["Thấy lần đầu / First seen"] == "26/11/2026 09:00"  # Asia/Ho_Chi_Minh


def test_findings_export_takes_the_filters_of_the_findings_list(world: World, api: TestClient) -> None:
    def rows(**params: Any) -> dict[str, dict[str, Any]]:
        header, *rows = _csv_rows(api.get("/api/v1/exports/findings.csv", params=params, headers=world.viewer))
        return _by_check(header, rows)

    assert set(rows(portal=STP, status="resolved")) == {"tls.protocol.tls10"}
    assert set(rows(portal=STP, severity="high")) == {"tls.cert.expired"}
    syt = rows(agency="syt")  # its portal's findings and the register's (compliance) findings of the agency
    assert "tls.unreachable" in syt and {row["Cơ quan / Agency"] for row in syt.values()} == {"syt"}
    assert "tls.unreachable" not in rows(agency="stp")
    _problem(api.get("/api/v1/exports/findings.csv", params={"agency": "nope"}, headers=world.viewer), 422, "nope")
    _problem(api.get("/api/v1/exports/findings.csv", params={"limit": 5}, headers=world.viewer), 400, "limit")
    _problem(api.get("/api/v1/exports/findings.csv", params={"severity": "bad"}, headers=world.viewer), 422)
    _problem(api.get("/api/v1/exports/findings.csv", params={"first_seen_after": "0001-01-01T00:00:00+01:00"},
                     headers=world.viewer), 422, "first_seen_after")


def test_findings_export_over_the_row_cap_is_refused(world: World, api: TestClient,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exports, "MAX_ROWS", 2)
    _problem(api.get("/api/v1/exports/findings.xlsx", headers=world.viewer), 422, "more than 2 findings")
    assert len(_csv_rows(api.get("/api/v1/exports/findings.csv", params={"portal": STP, "severity": "high"},
                                 headers=world.viewer))) == 2  # header and the one match


def test_findings_xlsx_reads_back_with_the_same_safe_cells(world: World, api: TestClient) -> None:
    response = api.get("/api/v1/exports/findings.xlsx", params={"portal": STP}, headers=world.viewer)
    header, *rows = _xlsx_rows(response)
    assert response.headers["content-disposition"] == 'attachment; filename="soc-findings-2026-11-27.xlsx"'
    found = _by_check(header, rows)
    assert found["http.server_version_disclosed"]["Bằng chứng / Evidence"] == "'" + HYPERLINK
    assert found["http.header.csp_missing"]["Bằng chứng / Evidence"] == "\\x1b[2J\\x1b]0;pwned\\x07 xoá màn hình"
    assert found["tls.cert.expired"]["Thấy lần đầu / First seen"] == datetime(2026, 11, 26, 9)  # local time
    assert found["tls.protocol.tls10"]["Trạng thái / Status"] == "resolved"


def test_portal_results_export_as_csv_and_xlsx(world: World, api: TestClient) -> None:
    header, *rows = _csv_rows(api.get("/api/v1/exports/portals.csv", headers=world.viewer))
    assert len(rows) == len(load_inventory(INVENTORY).portals)
    by_url = {row[header.index("Cổng / Portal")]: dict(zip(header, row, strict=True)) for row in rows}
    assert by_url[STP]["Hạng TLS / TLS grade"] == "B" and by_url[STP]["Mã / ID"] == _portal_id(STP)
    assert by_url[STP]["Đang mở: cao / Open: high"] == "1"
    assert by_url[SYT]["Lần quét đầy đủ cuối / Last complete scan"] == "26/11/2026 09:00"
    xlsx_header, *xlsx_rows = _xlsx_rows(api.get("/api/v1/exports/portals.xlsx", params={"agency": "stp"},
                                                  headers=world.viewer))
    assert xlsx_header == header
    [stp] = xlsx_rows
    assert dict(zip(header, stp, strict=True))["Điểm / Score"] == 80
    _problem(api.get("/api/v1/exports/portals.xlsx", params={"agency": "nope"}, headers=world.viewer), 422, "nope")


def test_the_openapi_document_describes_every_resource_with_bounds(api: TestClient) -> None:
    document = api.get("/openapi.json").json()
    paths = document["paths"]
    for path in ("/api/v1/portals", "/api/v1/portals/{portal}", "/api/v1/runs", "/api/v1/runs/{run}",
                 "/api/v1/runs/{run_a}/diff/{run_b}", "/api/v1/systems", "/api/v1/kpis", "/api/v1/coverage",
                 "/api/v1/jobs", "/api/v1/jobs/runs", "/api/v1/jobs/{name}/runs", "/api/v1/jobs/{name}/run",
                 "/api/v1/exports/findings.csv", "/api/v1/exports/findings.xlsx", "/api/v1/exports/portals.csv",
                 "/api/v1/exports/portals.xlsx"):
        assert path in paths, path
        for operation in paths[path].values():
            assert " / " in operation["summary"]  # Vietnamese / English
    limit = next(p for p in paths["/api/v1/runs"]["get"]["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 1000)
    export = paths["/api/v1/exports/findings.csv"]["get"]
    assert "text/csv" in export["responses"]["200"]["content"]
    names = {p["name"] for p in export["parameters"]}
    listing = {p["name"] for p in paths["/api/v1/findings"]["get"]["parameters"]}
    assert names == listing - {"limit", "cursor"}
