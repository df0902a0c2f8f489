"""Parity of the two backends: the CLI, the API, the KPIs and the monthly report give identical answers on SQLite
and on the search backend for the same data.

The same story is built twice through the services (and a scan's own recording calls), once per backend, on
two FixedClocks making the same moves: the example register and coverage, two portal scans with findings of
every severity on several portals, triage (acknowledge, assign, comment, false positive, risk acceptance), SLA
deadlines, compliance evaluations, two scripted drills (one perfect, one partial with corrective actions).
Then the answers are compared end to end.

Only genuinely random ids are normalised: scan run ids (uuid4 in both stores) become `run@<start>/<source>`;
drill session ids (`secrets.token_hex`) are made the same on both builds by numbering them (`_new_id`
patched while building), so the fingerprints, subjects and corrective-action ids derived from them agree
and orders that depend on them can be compared as they are. API cursors are each store's own tokens:
only the pages they lead to are compared.
"""

from __future__ import annotations

import difflib
import itertools
import json
import os
import re
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from checks.catalogue import make_finding
from drills.responses import read_responses
from soc.api.app import create_app
from soc.cli import app as cli_app
from soc.cli.common import CliState
from soc.core.clock import LOCAL_ZONE, FixedClock
from soc.core.models import Finding, FindingStatus, Observation, PortalScan, Role, Severity
from soc.core.settings import AuthSettings, Settings, StoreSettings
from soc.inventory import load_inventory
from soc.services import compliance as compliance_service
from soc.services import drills as drills_service
from soc.services import findings as findings_service
from soc.services import register as register_service
from soc.services import reports
from soc.services.context import ServiceContext, open_context
from soc.services.sla import apply_deadlines
from soc.services.users import add_user, create_token
from soc.store.search import open_indices
from soc.web import install_dashboard
from tests.search_fixtures import REAL_URL

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"
INVENTORY = EXAMPLES / "dongnai.yaml"
PLAYBOOKS = REPO / "playbooks"
WWW, STP, DVC = "https://www.dongnai.gov.vn/", "https://stp.dongnai.gov.vn/", "https://dichvucong.dongnai.gov.vn/"
SYT, SCT = "https://syt.dongnai.gov.vn/", "https://sct.dongnai.gov.vn/"
PASSWORD = "mật-khẩu-đối-chiếu-2026"
ADMIN = "an.admin"
END = datetime(2026, 12, 2, 9, 0, tzinfo=LOCAL_ZONE)
"""Where both clocks stand once the story is built."""


def _at(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=LOCAL_ZONE)


@dataclass
class Built:
    """One backend with the story in it: the open context (the API's), its clock, the settings, an admin token,
    and the random ids to normalise (run id → stable name)."""

    name: str
    settings: Settings
    context: ServiceContext
    clock: FixedClock
    token: str
    env: dict[str, str | None]
    """The environment the CLI runs with to reach this store."""

    def run_names(self) -> dict[str, str]:
        """Each scan run's id → `run@<start>/<source>` (the clock moves between runs, so the names are unique)."""
        runs = self.context.backend.findings.list_runs(limit=1000)
        names = {run.id: f"run@{run.started_at.isoformat()}/{run.inventory}" for run in runs}
        assert len(set(names.values())) == len(names), f"{self.name}: two runs share a start: {sorted(names.values())}"
        return names


def normalised(built: Built, value: Any) -> Any:
    """`value` (JSON-able) with the run ids replaced by their stable names."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    for run_id, name in built.run_names().items():
        text = text.replace(run_id, name)
    return json.loads(text)


def _scan(context: ServiceContext, clock: FixedClock, source: str,
          portals: dict[str, tuple[str, int, list[Finding]]]) -> None:
    """One complete run over `portals` (grade, score, findings), a few minutes between portals."""
    store = context.backend.findings
    run = store.begin_run(source, len(portals))
    for url, (grade, score, findings) in portals.items():
        now = context.clock.now()
        observations = [Observation(collector="tls", portal_url=url, observed_at=now, complete=True,
                                    data={"protocols": ["TLSv1.2", "TLSv1.3"]}),
                        Observation(collector="http", portal_url=url, observed_at=now, complete=True)]
        assessment = PortalScan(run_id=run.id, portal_url=url, recorded_at=now,
                                collectors={"tls": True, "http": True}, tls_grade=grade, score=score,
                                label_valid=grade.startswith("A"), reasons=[f"grade {grade}"])
        store.record_portal(run.id, url, observations, findings, assessment)
        clock.advance(timedelta(minutes=7))
    store.finish_run(run.id, complete=True)


def _fingerprint(context: ServiceContext, url: str, check: str) -> str:
    return next(f.fingerprint for f in context.backend.findings.list_findings(portal_url=url) if f.check_id == check)


def build_story(context: ServiceContext, clock: FixedClock, scratch: Path) -> None:
    """The same story on whichever backend `context` is on (see the module's docstring)."""
    inventory = load_inventory(INVENTORY)
    register_service.import_systems(context, EXAMPLES / "he-thong-thong-tin.csv", inventory, _at(date(2026, 10, 1)))
    clock.advance(_at(date(2026, 10, 20)) - clock.now())
    _scan(context, clock, INVENTORY.name, {
        WWW: ("B", 70, [make_finding(WWW, "tls.protocol.tls10", "TLS 1.0 accepted"),
                        make_finding(WWW, "http.hsts.missing", "no Strict-Transport-Security header"),
                        make_finding(WWW, "http.server_version_disclosed", "server: nginx/1.18.0")]),
        STP: ("T", 40, [make_finding(STP, "tls.cert.expired", "notAfter 2026-10-01"),
                        make_finding(STP, "tls.protocol.tls10", "TLS 1.0 accepted"),
                        make_finding(STP, "http.security_txt_missing", "/.well-known/security.txt: 404")]),
        SYT: ("A", 92, [make_finding(SYT, "http.header.csp_missing", "no Content-Security-Policy")]),
        DVC: ("C", 55, [make_finding(DVC, "tls.cipher.weak", "RC4-SHA"),
                        make_finding(DVC, "tls.vuln.heartbleed", "heartbeat leaks 64 KiB"),
                        make_finding(DVC, "http.no_https_redirect", "http:// answers 200")]),
        SCT: ("A+", 100, []),
    })
    apply_deadlines(context, inventory)
    clock.advance(timedelta(days=1))  # 21/10: the first triage
    findings_service.triage(context, _fingerprint(context, DVC, "tls.vuln.heartbleed"), FindingStatus.ACKNOWLEDGED,
                            inventory=inventory)
    findings_service.comment(context, _fingerprint(context, STP, "tls.cert.expired"), "Đã báo Sở Tư pháp gia hạn")
    findings_service.assign(context, _fingerprint(context, SYT, "http.header.csp_missing"), "skhcn", inventory)
    clock.advance(_at(date(2026, 11, 10)) - clock.now())
    text = (EXAMPLES / "he-thong-thong-tin.csv").read_text(encoding="utf-8")
    approved = text.replace("vpubnd,3,,Đã trình,,,Có,Có,,", "vpubnd,3,3,Đã phê duyệt,(ví dụ) 9/QĐ-UBND,05/11/2026,"
                                                             "Có,Có,,")
    assert approved != text
    november = scratch / "he-thong-thong-tin-11.csv"
    november.write_text(approved, encoding="utf-8")
    register_service.import_systems(context, november, inventory, _at(date(2026, 11, 10)))
    clock.advance(timedelta(minutes=5))  # each import evaluates the register: its run starts at its own moment
    register_service.import_coverage(context, EXAMPLES / "phong-chong-ma-doc.csv", inventory, None)
    clock.advance(timedelta(hours=1))
    compliance_service.evaluate(context)
    clock.advance(_at(date(2026, 11, 20)) - clock.now())
    _scan(context, clock, INVENTORY.name, {
        WWW: ("A", 90, [make_finding(WWW, "http.hsts.missing", "no Strict-Transport-Security header"),
                        make_finding(WWW, "http.server_version_disclosed", "server: nginx/1.18.0")]),
        STP: ("F", 20, [make_finding(STP, "tls.cert.expired", "notAfter 2026-10-01"),
                        make_finding(STP, "tls.protocol.tls10", "TLS 1.0 accepted"),
                        make_finding(STP, "tls.cert.self_signed", "CN=stp.local", severity=Severity.CRITICAL),
                        make_finding(STP, "http.security_txt_missing", "/.well-known/security.txt: 404")]),
        DVC: ("B", 75, [make_finding(DVC, "tls.cipher.weak", "RC4-SHA", severity=Severity.MEDIUM),
                        make_finding(DVC, "http.no_https_redirect", "http:// answers 200"),
                        make_finding(DVC, "http.mixed_content", "http://cdn.example/a.js")]),
    })
    apply_deadlines(context, inventory)
    clock.advance(timedelta(hours=2))
    findings_service.triage(context, _fingerprint(context, DVC, "tls.cipher.weak"), FindingStatus.RISK_ACCEPTED,
                            "Chờ nâng cấp máy chủ", expires=date(2027, 3, 1), approver="Giám đốc Sở",
                            inventory=inventory)
    findings_service.triage(context, _fingerprint(context, STP, "http.security_txt_missing"),
                            FindingStatus.FALSE_POSITIVE, "Cổng không công bố security.txt theo quy định",
                            inventory=inventory)
    findings_service.triage(context, _fingerprint(context, STP, "tls.cert.self_signed"), FindingStatus.ACKNOWLEDGED,
                            inventory=inventory)
    clock.advance(timedelta(hours=1))
    drills_service.run_scripted(context, PLAYBOOKS / "qlvb-ransomware.yaml",
                                read_responses(PLAYBOOKS / "responses" / "qlvb-ransomware.perfect.json"),
                                drill_date=date(2026, 11, 20))
    clock.advance(_at(date(2026, 11, 25)) - clock.now())
    drills_service.run_scripted(context, PLAYBOOKS / "communication-check.yaml",
                                read_responses(PLAYBOOKS / "responses" / "communication-check.partial.json"),
                                drill_date=date(2026, 11, 25))
    clock.advance(_at(date(2026, 11, 30)) - clock.now())
    compliance_service.evaluate(context)
    compliance_service.record_kpis(context, inventory)
    clock.advance(END - clock.now())


def _search_store(request: pytest.FixtureRequest) -> Generator[StoreSettings]:
    """A search store for the whole module, its templates loaded: a clone of the session's osmem-server, or
    indices under a prefix of the module's own on the cluster SOC_TEST_SEARCH_URL names (dropped after)."""
    if REAL_URL:
        settings = StoreSettings(
            backend="search", url=REAL_URL, flavour=os.environ.get("SOC_TEST_SEARCH_FLAVOUR", "elasticsearch"),  # type: ignore[arg-type]
            username=os.environ.get("SOC_TEST_SEARCH_USER"),
            password=SecretStr(os.environ["SOC_TEST_SEARCH_PASSWORD"]) if "SOC_TEST_SEARCH_PASSWORD" in os.environ
            else None,
            ca_certs=Path(os.environ["SOC_TEST_SEARCH_CA"]) if "SOC_TEST_SEARCH_CA" in os.environ else None,
            index_prefix=f"soctest-{uuid.uuid4().hex[:10]}")
        indices = open_indices(settings)
        indices.setup()
        try:
            yield settings
        finally:
            indices.drop()
            indices.client.close()
        return
    server: Any = request.getfixturevalue("osmem_server")
    clone = server.clone()
    try:
        settings = StoreSettings(backend="search", url=clone.url, flavour="opensearch", index_prefix="soc")
        indices = open_indices(settings)
        indices.setup()
        indices.client.close()
        yield settings
    finally:
        clone.close()


def _env(settings: Settings) -> dict[str, str | None]:
    store = settings.store
    env: dict[str, str | None] = {key: None for key in os.environ if key.startswith("SOC_")}
    env |= {"SOC_DB": str(settings.db), "SOC_INVENTORY": str(INVENTORY), "SOC_STORE__BACKEND": store.backend}
    if store.backend == "search":
        env |= {"SOC_STORE__URL": store.url, "SOC_STORE__FLAVOUR": store.flavour,
                "SOC_STORE__INDEX_PREFIX": store.index_prefix, "SOC_STORE__USERNAME": store.username,
                "SOC_STORE__PASSWORD": store.password.get_secret_value() if store.password else None,
                "SOC_STORE__CA_CERTS": str(store.ca_certs) if store.ca_certs else None}
    return env


@pytest.fixture(scope="module")
def worlds(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Built]]:
    """The story built on SQLite and on the search backend (drill session ids numbered alike on both)."""
    search = _search_store(request)
    stores = {"sqlite": StoreSettings(), "search": next(search)}
    built: dict[str, Built] = {}
    try:
        for name, store in stores.items():
            scratch = tmp_path_factory.mktemp(f"parity-{name}")
            settings = Settings(db=scratch / "soc.db", inventory=INVENTORY, store=store,
                                auth=AuthSettings(login_rate_per_minute=1000))
            clock = FixedClock(_at(date(2026, 10, 1)))
            numbers = itertools.count(1)
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(drills_service, "_new_id", lambda numbers=numbers: f"drill{next(numbers):07d}")
                with open_context(settings, clock, "tester") as context:
                    add_user(context, ADMIN, Role.ADMIN, PASSWORD)
                    _, token = create_token(context, ADMIN)
                    build_story(context, clock, scratch)
            built[name] = Built(name, settings, open_context(settings, clock, "tester"), clock, token, _env(settings))
        yield built
    finally:
        for world in built.values():
            world.context.close()
        search.close()


def _both(worlds: dict[str, Built], answer: Any) -> tuple[Any, Any]:
    """`answer(world)` on each backend, normalised."""
    sqlite, search = worlds["sqlite"], worlds["search"]
    return normalised(sqlite, answer(sqlite)), normalised(search, answer(search))


def _cli(world: Built, *args: str) -> Any:
    result = CliRunner().invoke(cli_app, list(args), obj=CliState(world.clock), env=world.env)
    assert result.exit_code == 0, f"{world.name}: soc {' '.join(args)}: {result.output}"
    return json.loads(result.stdout)


def test_the_story_is_not_empty(worlds: dict[str, Built]) -> None:
    """The comparisons below compare something: findings of every status and severity, drills, actions."""
    sqlite = worlds["sqlite"].context.backend
    found = sqlite.findings.list_findings()
    assert {f.status for f in found} == {FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED, FindingStatus.RESOLVED,
                                         FindingStatus.RISK_ACCEPTED, FindingStatus.FALSE_POSITIVE}
    assert {f.severity for f in found} == set(Severity)
    assert any(f.portal_url.startswith("system:") for f in found)
    assert len(sqlite.drills.sessions()) == 2 and sqlite.drills.actions()
    assert len(worlds["search"].context.backend.findings.list_findings()) == len(found)


@pytest.mark.parametrize("args", [
    ("findings", "--json"),
    ("findings", "--json", "--status", "open", "--status", "acknowledged", "--severity", "high",
     "--severity", "critical"),
    ("findings", "--json", "--portal", STP),
    ("findings", "--json", "--check", "tls.protocol.tls10", "--check", "drill.corrective_action"),
    ("compliance", "--json", "--as-of", "2026-11-30"),
    ("compliance", "--json", "--as-of", "2026-10-31"),
    ("compliance", "--json", "--as-of", "2026-11-30", "--agency", "vpubnd"),
    ("compliance", "--json", "--as-of", "2026-11-09", "--as-known-at", "2026-11-09T12:00"),
], ids=lambda args: " ".join(args).replace("https://", ""))
def test_cli_json_is_the_same(worlds: dict[str, Built], args: tuple[str, ...]) -> None:
    """`soc findings --json` and `soc compliance --json` print the same document on both backends."""
    sqlite, search = _both(worlds, lambda world: _cli(world, *args))
    assert search == sqlite
    assert sqlite.get("findings") or sqlite.get("province"), "nothing was compared"


def _walk(client: TestClient, world: Built, params: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    """Every page of GET /api/v1/findings with these filters, following `next` to the end."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(200):
        query = {**params, "limit": limit} | ({"cursor": cursor} if cursor else {})
        response = client.get("/api/v1/findings", params=query, headers={"Authorization": f"Bearer {world.token}"})
        assert response.status_code == 200, f"{world.name}: {query}: {response.text}"
        page = response.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next"]
        if cursor is None:
            return items
    raise AssertionError(f"{world.name}: {params}: the pages never end")


def _client(world: Built) -> TestClient:
    return TestClient(create_app(world.settings, world.context.backend, world.clock), base_url="http://127.0.0.1")


FINDING_QUERIES: list[dict[str, Any]] = [
    {},
    {"sort": "first_seen"},
    {"sort": "last_seen"},
    {"status": ["open", "acknowledged"], "sort": "severity"},
    {"severity": ["critical", "high"], "sort": "last_seen"},
    {"agency": ["stp", "skhcn"]},
    {"agency": ["vpubnd"], "sort": "first_seen"},
    {"portal": [DVC, STP], "status": ["resolved", "risk_accepted", "false_positive"]},
    {"check": ["drill.corrective_action"]},
    {"assignee": ["skhcn"]},
    {"sla": ["breached"]},
    {"sla": ["within", "pre_breach"], "sort": "first_seen"},
    {"sla": ["met", "missed", "none"], "sort": "last_seen"},
    {"first_seen_after": "2026-11-01T00:00:00+07:00", "sort": "first_seen"},
    {"last_seen_before": "2026-11-15T00:00:00+07:00", "sort": "last_seen"},
]


def test_api_findings_pages_are_the_same(worlds: dict[str, Built]) -> None:
    """GET /api/v1/findings: every filter and sort order, walked page by page (pages of 3 and of 1000), gives the
    same findings in the same order on both backends."""
    clients = {name: _client(world) for name, world in worlds.items()}
    differences = []
    compared = 0
    for params in FINDING_QUERIES:
        for limit in (3, 1000):
            sqlite, search = _both(worlds, lambda world, params=params, limit=limit: _walk(
                clients[world.name], world, params, limit))
            compared += len(sqlite)
            if search != sqlite:
                differences.append(_difference(params | {"limit": limit}, sqlite, search))
    assert not differences, "\n".join(differences)
    assert compared > 100


def _difference(what: Any, sqlite: Any, search: Any) -> str:
    """A short account of how two answers differ (first differing item, or the lengths)."""
    if isinstance(sqlite, list) and isinstance(search, list):
        for index, (left, right) in enumerate(zip(sqlite, search, strict=False)):
            if left != right:
                if isinstance(left, dict) and isinstance(right, dict):
                    keys = sorted(k for k in left.keys() | right.keys() if left.get(k) != right.get(k))
                    left, right = {k: left.get(k) for k in keys}, {k: right.get(k) for k in keys}
                return f"{what}: item {index}: sqlite {left} != search {right}"
        return f"{what}: sqlite {len(sqlite)} items, search {len(search)}"
    return f"{what}: sqlite {sqlite} != search {search}"


GETS = [
    "/api/v1/kpis?as_of=2026-11-30",
    "/api/v1/kpis?as_of=2026-10-31&agency=stp",
    "/api/v1/kpis?as_of=2026-11-09&known_at=2026-11-09T12:00:00%2B07:00",
    "/api/v1/systems?as_of=2026-11-30",
    "/api/v1/coverage?as_of=2026-11-30",
    "/api/v1/portals",
    "/api/v1/runs",
    "/api/v1/drills/sessions",
    "/api/v1/drills/sessions?status=ended",
    "/api/v1/drills/actions",
    "/api/v1/drills/sessions/drill0000001",
    "/api/v1/drills/sessions/drill0000002/scorecard",
    "/api/v1/drills/sessions/drill0000002/participant",
]


@pytest.mark.parametrize("path", GETS)
def test_api_answers_are_the_same(worlds: dict[str, Built], path: str) -> None:
    """The KPI, register, portal, run and drill endpoints answer the same on both backends."""
    def get(world: Built) -> Any:
        response = _client(world).get(path, headers={"Authorization": f"Bearer {world.token}"})
        assert response.status_code == 200, f"{world.name}: {path}: {response.text}"
        return response.json()

    sqlite, search = _both(worlds, get)
    assert sqlite, "nothing was compared"
    assert search == sqlite, _difference(path, sqlite, search)


def test_api_finding_details_are_the_same(worlds: dict[str, Built]) -> None:
    """GET /api/v1/findings/{fingerprint}: each finding with its whole history, the same on both backends."""
    fingerprints = [f.fingerprint for f in worlds["sqlite"].context.backend.findings.list_findings()]
    clients = {name: _client(world) for name, world in worlds.items()}

    def details(world: Built) -> list[Any]:
        answers = []
        for fingerprint in fingerprints:
            response = clients[world.name].get(f"/api/v1/findings/{fingerprint}",
                                               headers={"Authorization": f"Bearer {world.token}"})
            assert response.status_code == 200, f"{world.name}: {fingerprint}: {response.text}"
            answers.append(response.json())
        return answers

    sqlite, search = _both(worlds, details)
    assert sum(len(answer["history"]) for answer in sqlite) > len(fingerprints)
    assert search == sqlite, _difference("finding details", sqlite, search)


@pytest.mark.parametrize("month", [date(2026, 10, 1), date(2026, 11, 1)])
def test_monthly_report_figures_are_the_same(worlds: dict[str, Built], month: date) -> None:
    """The monthly report's figures (what the archive keeps beside the document) are the same on both backends."""
    inventory = load_inventory(INVENTORY)
    sqlite, search = _both(worlds, lambda world: reports.figures(reports.monthly_data(world.context, inventory,
                                                                                       month)))
    assert sqlite
    differing = sorted(key for key in sqlite.keys() | search.keys() if sqlite.get(key) != search.get(key))
    assert not differing, "\n".join(_difference(key, sqlite.get(key), search.get(key)) for key in differing)


def test_kpi_history_is_the_same(worlds: dict[str, Built]) -> None:
    """The KPIs kept on 30/11 (what dashboards over time read) are the same on both backends."""
    sqlite, search = _both(worlds, lambda world: [s.model_dump(mode="json")
                                                  for s in world.context.backend.kpis.history()])
    assert sqlite
    assert search == sqlite, _difference("kpi history", sqlite, search)


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PAGES = ["/", "/findings", "/findings?severity=high&sort=first_seen", "/findings?agency=stp", "/compliance",
         "/compliance?as_of=2026-10-31", "/portals", "/runs", "/drills", "/drills/sessions/drill0000002",
         "/agencies/stp", "/agencies/vpubnd"]


def _pages(world: Built) -> dict[str, str]:
    """The dashboard's pages (lists, KPIs, portals, agencies, drills, every finding), signed in as the admin
    through the login form; each run id in them named, and the per-session tokens (CSRF) and nonces blanked."""
    app = create_app(world.settings, world.context.backend, world.clock)
    install_dashboard(app)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        token = CSRF.search(client.get("/login").text)
        assert token is not None
        answer = client.post("/login", data={"username": ADMIN, "password": PASSWORD, "csrf_token": token[1],
                                             "next": "/"}, follow_redirects=False)
        assert answer.status_code == 303, answer.text
        portals = sorted(set(re.findall(r'href="(/portals/[0-9a-f]{8,64})"', client.get("/portals").text)))
        assert len(portals) >= 3, "the portal pages' links were not found"
        details = sorted(f"/findings/{f.fingerprint}" for f in world.context.backend.findings.list_findings())
        pages = {}
        for path in PAGES + portals + details:
            response = client.get(path)
            assert response.status_code == 200, f"{world.name}: {path}: {response.status_code}"
            text = CSRF.sub('name="csrf_token" value="-"', response.text)
            pages[path] = re.sub(r'nonce="[^"]+"', 'nonce="-"', text)
    names = world.run_names()
    for path, text in pages.items():
        for run_id, name in names.items():
            text = text.replace(run_id, name).replace(run_id[:12], name).replace(run_id[:8], name)
        pages[path] = text
    return pages


def test_dashboard_pages_are_the_same(worlds: dict[str, Built]) -> None:
    """The dashboard's pages show the same on both backends (the first differing lines of each page that does not)."""
    sqlite, search = _pages(worlds["sqlite"]), _pages(worlds["search"])
    assert sqlite.keys() == search.keys()
    differing = []
    for path in sqlite:
        if sqlite[path] != search[path]:
            diff = list(difflib.unified_diff(sqlite[path].splitlines(), search[path].splitlines(), "sqlite", "search",
                                             n=1, lineterm=""))
            differing.append(f"{path}:\n" + "\n".join(diff[:30]))
    assert not differing, "\n\n".join(differing)
