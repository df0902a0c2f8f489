"""The dashboard's runs-and-jobs and admin pages: scan runs and their diff, the jobs with their history and "run
now", users, tokens (the secret shown once) and the audit log — through the real app on a real SQLite store,
signed in with the login form. The scheduler is a stand-in keeping real job runs in the store (never the real
one: it would scan the example inventory's hosts)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from checks.catalogue import make_finding
from soc.api import create_app
from soc.core.clock import FixedClock, today
from soc.core.models import Finding, JobOutcome, JobRun, Observation, PortalScan, Role, Severity
from soc.core.settings import Settings
from soc.services.context import ServiceContext, open_context
from soc.services.jobs import JOBS
from soc.services.users import add_user, create_token, login
from soc.web import install_dashboard
from tests.conftest import NOW
from tests.integration.api_world import StoreScheduler

STP = "https://stp.dongnai.gov.vn/"
SYT = "https://syt.dongnai.gov.vn/"
PASSWORD = "mật-khẩu-thử-nghiệm-2026"
ADMIN, OPERATOR, VIEWER = "an.admin", "binh.operator", "dung.viewer"
HOSTILE = '<script>alert("x")</script>\x1b[2J xoá màn hình'
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class World:
    """Three scans of two portals a day apart (and a health check), job runs (one failed with hostile text), and
    an admin, an operator and a viewer."""

    context: ServiceContext
    clock: FixedClock
    settings: Settings
    runs: tuple[str, str, str]
    health: str
    expired: Finding
    tls10: Finding
    tls11: Finding
    unreachable: Finding

    def app(self, scheduler: object | None = None) -> FastAPI:
        """The app as `soc serve` builds it, on this store."""
        app = create_app(self.settings, self.context.backend, self.clock, scheduler=scheduler)
        install_dashboard(app)
        return app


def _record(context: ServiceContext, run_id: str, portal: str, findings: list[Finding], complete: bool,
            grade: str | None, score: int | None) -> None:
    now = context.clock.now()
    observation = Observation(collector="tls", portal_url=portal, observed_at=now, complete=complete)
    scan = PortalScan(run_id=run_id, portal_url=portal, recorded_at=now, collectors={"tls": complete},
                      tls_grade=grade, score=score, reasons=["TLS 1.0"] if grade == "C" else [])
    context.backend.findings.record_portal(run_id, portal, [observation], findings, scan)


def _job_run(context: ServiceContext, name: str, hours_ago: int, outcome: JobOutcome,
             error: str | None = None) -> JobRun:
    at = context.clock.now() - timedelta(hours=hours_ago)
    run = context.backend.jobs.start(JobRun(job=name, slot=at, started_at=at))
    assert run.id is not None
    return context.backend.jobs.finish(run.id, outcome, at + timedelta(minutes=5), error=error)


def build(directory: Path) -> World:
    """The world, seeded in `directory` (seconds: every password is an argon2 hash)."""
    clock = FixedClock(NOW - timedelta(days=2, hours=1))
    settings = Settings(db=directory / "soc.db")
    context = open_context(settings, clock, "tester")
    for name, role in ((ADMIN, Role.ADMIN), (OPERATOR, Role.OPERATOR), (VIEWER, Role.VIEWER)):
        add_user(context, name, role, PASSWORD)
    expired = make_finding(STP, "tls.cert.expired", "notAfter 2026-11-01", severity=Severity.HIGH)
    tls10 = make_finding(STP, "tls.protocol.tls10", "TLS 1.0 accepted")
    tls11 = make_finding(STP, "tls.protocol.tls11", "TLS 1.1 accepted")
    unreachable = make_finding(SYT, "tls.unreachable", "timed out")
    store, ids = context.backend.findings, []
    for day, (stp, syt) in enumerate((([expired, tls10], []), ([expired], [unreachable]), ([expired, tls11], []))):
        if day:
            clock.advance(timedelta(days=1))
        run = store.begin_run("dongnai.yaml", 2)
        _record(context, run.id, STP, stp, True, "C" if tls10 in stp else "B", 55 if tls10 in stp else 80)
        _record(context, run.id, SYT, syt, not syt, None if syt else "A", None if syt else 95)
        ids.append(store.finish_run(run.id, complete=True).id)
    clock.advance(timedelta(minutes=30))
    health = store.begin_run("ops", 0)
    store.finish_run(health.id, complete=True)
    clock.advance(timedelta(minutes=30))
    _job_run(context, "portal_scan", 30, JobOutcome.SUCCESS)
    _job_run(context, "portal_scan", 6, JobOutcome.FAILED, error=f"ValueError: {HOSTILE}")
    _job_run(context, "compliance", 3, JobOutcome.SUCCESS)
    return World(context, clock, settings, (ids[0], ids[1], ids[2]), health.id, expired, tls10, tls11, unreachable)


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The world seeded once; each test gets its own copy."""
    built = build(tmp_path_factory.mktemp("web-runs-admin"))
    built.context.close()
    yield built


@pytest.fixture
def world(seed: World, tmp_path: Path) -> Iterator[World]:
    """A copy of the seeded store, opened on its own clock (at NOW)."""
    for path in seed.settings.db.parent.glob("soc.db*"):
        shutil.copy(path, tmp_path / path.name)
    settings = seed.settings.model_copy(update={"db": tmp_path / "soc.db"})
    clock = FixedClock(NOW)
    context = open_context(settings, clock, "tester")
    yield replace(seed, context=context, clock=clock, settings=settings)
    context.close()


def sign_in(app: FastAPI, name: str, language: str = "en") -> tuple[TestClient, str]:
    """A browser signed in as `name` through the login form, and its session's CSRF token."""
    client = TestClient(app, follow_redirects=False)
    form = client.get("/login", params={"lang": language})
    match = CSRF.search(form.text)
    assert match is not None, form.text
    response = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": match.group(1),
                                           "next": "/runs"})
    assert response.status_code == 303 and response.headers["location"] == "/runs", response.text
    match = CSRF.search(client.get("/runs").text)
    assert match is not None
    return client, match.group(1)


def between(html: str, start: str, end: str | None = None) -> str:
    """The part of a page from `start` to `end` (or its end)."""
    assert start in html, start
    rest = html.split(start, 1)[1]
    return rest if end is None else rest.split(end, 1)[0]


def assert_escaped(html: str) -> None:
    """The hostile text is on the page as text: markup escaped, the terminal escape written out."""
    assert "<script>alert" not in html and "\x1b" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html and "\\x1b[2J xoá màn hình" in html


# --- runs ------------------------------------------------------------------------------------------------------


def test_the_runs_list_leaves_the_health_checks_out_unless_asked(world: World) -> None:
    client, _ = sign_in(world.app(), VIEWER, "vi")
    page = client.get("/runs")
    assert page.status_code == 200
    assert "Các lượt quét" in page.text and 'lang="vi"' in page.text  # Vietnamese first
    shown = re.findall(r'<a href="/runs/([0-9a-f]{32})">', page.text)
    assert shown == [world.runs[2], world.runs[1], world.runs[0]]  # newest first
    with_health = re.findall(r'<a href="/runs/([0-9a-f]{32})">', client.get("/runs?health=1").text)
    assert with_health[0] == world.health and with_health[1:] == shown
    assert re.search(r'id="health" name="health" value="1"\s+checked', client.get("/runs?health=1").text)


def test_a_run_shows_its_grades_and_what_changed_since_the_previous_run(world: World) -> None:
    client, _ = sign_in(world.app(), VIEWER)
    first, second, third = world.runs
    page = client.get(f"/runs/{second[:10]}")  # a prefix, as `soc runs` shows them
    assert page.status_code == 200, page.text
    grades = between(page.text, "Portals assessed in this run", "What changed")
    assert re.search(rf"{re.escape(STP)}</a></th>\s*<td><strong>B</strong>", grades)
    assert re.search(rf"{re.escape(SYT)}</a></th>\s*<td>—</td>", grades) and "tls: incomplete" in grades
    diff = between(page.text, "What changed")
    assert f'From the run <a href="/runs/{first}">' in diff and f'to the run <a href="/runs/{second}">' in diff
    assert re.search(r'<option value="' + first + r'" selected>', diff)  # the previous run of the inventory
    new, resolved = between(diff, "New findings", "Resolved findings"), between(diff, "Resolved findings", "Still open")
    still = between(diff, "<summary>Still open")
    assert "tls.unreachable" in new and "tls.protocol.tls10" not in new
    assert "tls.protocol.tls10" in resolved and "tls.unreachable" not in resolved
    assert "tls.cert.expired" in still and "tls.cert.expired" not in new + resolved
    assert f'href="/findings/{world.unreachable.fingerprint}"' in new
    assert re.search(r"new: <strong>1</strong>.*resolved: <strong>1</strong>.*still open: <strong>1</strong>",
                     diff, re.S)

    chosen = between(client.get(f"/runs/{third}", params={"against": first}).text, "What changed")
    assert f'From the run <a href="/runs/{first}">' in chosen and f'to the run <a href="/runs/{third}">' in chosen
    assert "tls.protocol.tls11" in between(chosen, "New findings", "Resolved findings")
    assert "tls.protocol.tls10" in between(chosen, "Resolved findings", "Still open")
    default = between(client.get(f"/runs/{third}").text, "What changed")  # against the run just before it
    assert f'From the run <a href="/runs/{second}">' in default
    assert "tls.unreachable" in between(default, "Resolved findings", "Still open")

    earliest = client.get(f"/runs/{first}").text
    assert "No earlier run of the same inventory to compare with." in earliest
    assert world.health not in earliest  # a health check is not a scan of the inventory to compare with
    refused = client.get(f"/runs/{third}", params={"against": "<b>nope</b>"})
    assert refused.status_code == 400
    assert re.search(r'role="alert">Compare with: run &#39;&lt;b&gt;nope&lt;/b&gt;&#39;: no run', refused.text)
    missing = client.get("/runs/ffffffffffff")
    assert missing.status_code == 404 and "No run has this id" in missing.text


# --- jobs ------------------------------------------------------------------------------------------------------


def test_jobs_show_schedule_history_and_run_now_for_an_operator_only(world: World) -> None:
    scheduler = StoreScheduler(world.context)
    app = world.app(scheduler)
    viewer, viewer_csrf = sign_in(app, VIEWER)
    page = viewer.get("/runs").text
    jobs = between(page, 'id="jobs"')
    scan = between(jobs, 'id="job-portal_scan"', "</tr>")
    assert "0 1 * * *" in scan and "portal_scan (en)" in scan
    assert "28/11/2026 01:00" in scan  # next run, Asia/Ho_Chi_Minh
    assert 'class="outcome failed"' in scan and "27/11/2026 03:00" in scan  # the latest run, and its error
    assert_escaped(page)
    history = between(jobs, "<code>portal_scan</code> · recent runs: 2", "</details>")
    assert history.count('class="outcome failed"') == 1 and history.count('class="outcome success"') == 1
    assert "/jobs/portal_scan/run" not in page and "Run now" not in page  # a viewer is not offered it
    forged = viewer.post("/jobs/portal_scan/run", data={"csrf_token": viewer_csrf})
    assert forged.status_code == 403 and scheduler.asked == []

    operator, csrf = sign_in(app, OPERATOR)
    assert 'action="/jobs/portal_scan/run"' in operator.get("/runs").text
    assert operator.post("/jobs/portal_scan/run", data={}).status_code == 403  # no CSRF token
    assert operator.post("/jobs/portal_scan/run", data={"csrf_token": "forged"}).status_code == 403
    assert scheduler.asked == []
    started = operator.post("/jobs/portal_scan/run", data={"csrf_token": csrf})
    assert started.status_code == 303, started.text
    assert scheduler.asked == [("portal_scan", OPERATOR)]
    [manual] = [run for run in world.context.backend.jobs.runs(job="portal_scan") if run.trigger == "manual"]
    assert started.headers["location"] == f"/runs?started=portal_scan&run={manual.id}#jobs"
    after = operator.get(started.headers["location"]).text
    assert f"Job portal_scan started (run #{manual.id})" in after and 'role="status"' in after
    assert 'action="/jobs/portal_scan/run"' not in after and 'action="/jobs/compliance/run"' in after
    assert "<td>manual</td>" in between(after, "<code>portal_scan</code> · recent runs: 3", "</details>")

    again = operator.post("/jobs/portal_scan/run", data={"csrf_token": csrf})
    assert again.status_code == 409
    assert f"Job portal_scan is already running (run #{manual.id}" in again.text and 'role="alert"' in again.text
    unknown = operator.post("/jobs/nope/run", data={"csrf_token": csrf})
    assert unknown.status_code == 404 and "There is no job &#39;nope&#39;." in unknown.text
    assert scheduler.asked == [("portal_scan", OPERATOR)]
    assert operator.get("/runs?started=<i>x</i>&run=1").text.count('role="status"') == 0  # no made-up notice


def test_without_a_scheduler_jobs_come_from_the_history_and_run_now_says_why_not(world: World) -> None:
    operator, csrf = sign_in(world.app(), OPERATOR)
    page = operator.get("/runs").text
    assert re.findall(r'<tr id="job-([a-z_]+)">', page) == list(JOBS)
    assert "No scheduler runs in this process" in page and "/jobs/portal_scan/run" not in page
    compliance = between(page, 'id="job-compliance"', "</tr>")
    assert 'class="outcome success"' in compliance and compliance.count("27/11/2026 06:05") == 1  # last success
    refused = operator.post("/jobs/portal_scan/run", data={"csrf_token": csrf})
    assert refused.status_code == 503
    assert re.search(r'class="problem" role="alert">No scheduler runs in this process \(the jobs run in', refused.text)
    assert world.context.backend.jobs.runs(job="portal_scan", outcome=JobOutcome.RUNNING) == []


# --- admin -----------------------------------------------------------------------------------------------------


def test_admin_pages_are_refused_to_an_operator_and_a_viewer(world: World) -> None:
    app = world.app()
    for name in (OPERATOR, VIEWER):
        client, csrf = sign_in(app, name)
        assert 'href="/admin"' not in client.get("/runs").text  # not offered
        for path in ("/admin", "/admin/audit", "/admin/audit?action=user."):
            assert client.get(path).status_code == 403, path
        posts = {"/admin/users": {"name": "mallory", "role": "admin", "password": PASSWORD, "repeat": PASSWORD},
                 "/admin/tokens": {"user": name, "role": ""}, f"/admin/users/{ADMIN}/disable": {},
                 "/admin/password": {"user": ADMIN, "password": PASSWORD + "x", "repeat": PASSWORD + "x"}}
        for path, data in posts.items():
            assert client.post(path, data={**data, "csrf_token": csrf}).status_code == 403, path
    users = {user.name: user for user in world.context.backend.users.users()}
    assert "mallory" not in users and not users[ADMIN].disabled
    assert world.context.backend.users.tokens() == []
    login(world.context, ADMIN, PASSWORD)  # the password did not change


def test_an_admin_adds_disables_enables_a_user_and_resets_a_password(world: World) -> None:
    admin, csrf = sign_in(world.app(), ADMIN)
    page = admin.get("/admin")
    assert page.status_code == 200 and 'href="/admin/audit"' in page.text
    for name in (ADMIN, OPERATOR, VIEWER):
        assert f'<th scope="row">{name}</th>' in page.text
    form = {"name": "lan.soc", "role": "operator", "password": PASSWORD, "repeat": PASSWORD, "csrf_token": csrf}
    assert admin.post("/admin/users", data={**form, "csrf_token": ""}).status_code == 403
    differ = admin.post("/admin/users", data={**form, "repeat": PASSWORD + "!"})
    assert differ.status_code == 400 and "Not done: password: the two entries differ" in differ.text
    assert 'value="lan.soc"' in differ.text and PASSWORD not in differ.text  # the name kept, never the password
    short = admin.post("/admin/users", data={**form, "password": "short", "repeat": "short"})
    assert short.status_code == 400 and "password: at least 12 characters" in short.text
    bad = admin.post("/admin/users", data={**form, "name": "Lan Soc"})
    assert bad.status_code == 400 and "user name &#39;Lan Soc&#39;: 2–64 characters" in bad.text
    role = admin.post("/admin/users", data={**form, "role": "root"})
    assert role.status_code == 400 and "role: choose one of admin, operator, incident, viewer" in role.text
    assert world.context.backend.users.user("lan.soc") is None

    added = admin.post("/admin/users", data=form)
    assert added.status_code == 303 and added.headers["location"] == "/admin?done=user_added&subject=lan.soc#users"
    shown = admin.get(added.headers["location"]).text
    assert "User lan.soc added." in shown and '<th scope="row">lan.soc</th>' in shown
    assert admin.get("/admin?done=user_added&subject=nobody").text.count('role="status"') == 0
    user = world.context.backend.users.user("lan.soc")
    assert user is not None and user.role is Role.OPERATOR
    twice = admin.post("/admin/users", data=form)
    assert twice.status_code == 400 and 'role="alert"' in twice.text

    assert admin.post("/admin/users/lan.soc/disable", data={"csrf_token": csrf}).status_code == 303
    disabled = world.context.backend.users.user("lan.soc")
    assert disabled is not None and disabled.disabled
    assert 'action="/admin/users/lan.soc/enable"' in admin.get("/admin").text
    assert admin.post("/admin/users/lan.soc/enable", data={"csrf_token": csrf}).status_code == 303
    enabled = world.context.backend.users.user("lan.soc")
    assert enabled is not None and not enabled.disabled
    unknown = admin.post("/admin/users/nobody/disable", data={"csrf_token": csrf})
    assert unknown.status_code == 400 and "no user &#39;nobody&#39;" in unknown.text
    assert 'action="/admin/users/an.admin/disable"' not in admin.get("/admin").text  # not yourself

    new = "một-mật-khẩu-mới-dài-hơn"
    reset = admin.post("/admin/password", data={"user": "lan.soc", "password": new, "repeat": new, "csrf_token": csrf})
    assert reset.status_code == 303 and "done=password_reset" in reset.headers["location"]
    login(world.context, "lan.soc", new)
    actions = [entry.action for entry in world.context.backend.audit.entries(subject="lan.soc")]
    assert actions == ["user.password_reset", "user.enable", "user.disable", "user.add"]
    assert {entry.actor for entry in world.context.backend.audit.entries(subject="lan.soc")} == {ADMIN}


SECRET = re.compile(r"soc_[0-9a-f]{12}_[A-Za-z0-9_-]{40,}")


def test_a_token_secret_is_shown_once_and_a_revoked_token_stops_working(world: World) -> None:
    app = world.app()
    admin, csrf = sign_in(app, ADMIN)
    until = today(world.clock) + timedelta(days=30)
    form = {"user": OPERATOR, "role": "viewer", "expires": until.isoformat(), "note": HOSTILE, "csrf_token": csrf}
    created = admin.post("/admin/tokens", data=form)
    assert created.status_code == 201, created.text
    [secret] = set(SECRET.findall(created.text))
    assert "shown this once and can never be shown again" in created.text
    token_id = secret.split("_")[1]
    [token] = world.context.backend.users.tokens(OPERATOR)
    assert token.id == token_id and token.role is Role.VIEWER and token.note == HOSTILE
    assert_escaped(created.text)
    bearer = TestClient(app)  # a script with the token, no session
    assert bearer.get("/api/v1/runs", headers={"Authorization": f"Bearer {secret}"}).status_code == 200

    listing = admin.get("/admin").text
    assert secret not in listing and secret.split("_", 2)[2] not in listing and SECRET.search(listing) is None
    assert f"<code>{token_id}</code>" in listing and f'action="/admin/tokens/{token_id}/revoke"' in listing
    assert_escaped(listing)

    higher = admin.post("/admin/tokens", data={**form, "user": VIEWER, "role": "operator"})
    assert higher.status_code == 400 and "cannot have the role operator" in higher.text
    assert SECRET.search(higher.text) is None
    past = admin.post("/admin/tokens", data={**form, "expires": (today(world.clock) - timedelta(days=1)).isoformat()})
    assert past.status_code == 400 and "in the past" in past.text
    garbled = admin.post("/admin/tokens", data={**form, "expires": "27/11/2026"})
    assert garbled.status_code == 400 and "expires &#39;27/11/2026&#39;: give a date as YYYY-MM-DD" in garbled.text
    long = admin.post("/admin/tokens", data={**form, "note": "x" * 201})
    assert long.status_code == 400 and "note: at most 200 characters" in long.text
    assert len(world.context.backend.users.tokens()) == 1

    assert admin.post(f"/admin/tokens/{token_id}/revoke", data={}).status_code == 403
    revoked = admin.post(f"/admin/tokens/{token_id}/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 303 and f"Token {token_id} revoked." in admin.get(revoked.headers["location"]).text
    row = between(admin.get("/admin").text, f"<code>{token_id}</code>", "</tr>")
    assert 'class="state off">revoked' in row and "/revoke" not in row
    assert bearer.get("/api/v1/runs", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def _audit_actions(html: str) -> list[str]:
    return re.findall(r'<th scope="row"><a href="/admin/audit\?action=[^"]*"><code>([^<]*)</code>', html)


def test_the_audit_log_filters_by_action_subject_actor_and_day(world: World) -> None:
    as_admin = ServiceContext(world.settings, world.context.backend, world.clock, ADMIN)
    token, _secret = create_token(as_admin, VIEWER, note=HOSTILE)
    admin, _ = sign_in(world.app(), ADMIN)
    page = admin.get("/admin/audit")
    assert page.status_code == 200
    every = _audit_actions(page.text)
    assert every[0] == "token.create" and every[-3:] == ["user.add"] * 3  # newest first
    assert "job.run" not in every  # the job runs above were recorded without the service: no entry
    assert_escaped(page.text)
    row = between(page.text, "<code>token.create</code>", "</tr>")
    assert f"user: {VIEWER}; role: viewer; expires: " in row and ADMIN in between(page.text, "<tbody>", "token.create")

    assert _audit_actions(admin.get("/admin/audit", params={"action": "token."}).text) == ["token.create"]
    assert _audit_actions(admin.get("/admin/audit", params={"action": "user."}).text) == ["user.add"] * 3
    assert _audit_actions(admin.get("/admin/audit", params={"actor": ADMIN}).text) == ["token.create"]
    assert _audit_actions(admin.get("/admin/audit", params={"actor": "tester"}).text) == ["user.add"] * 3
    assert _audit_actions(admin.get("/admin/audit", params={"subject": OPERATOR}).text) == ["user.add"]
    assert _audit_actions(admin.get("/admin/audit", params={"subject": token.id}).text) == ["token.create"]
    since = admin.get("/admin/audit", params={"since": today(world.clock).isoformat()})
    assert _audit_actions(since.text) == ["token.create"] and 'value="2026-11-27"' in since.text  # kept in the form
    day_before = (today(world.clock) - timedelta(days=2)).isoformat()
    assert len(_audit_actions(admin.get("/admin/audit", params={"since": day_before}).text)) == 4
    none = admin.get("/admin/audit", params={"action": "finding."}).text
    assert _audit_actions(none) == [] and "No entry matches these filters." in none
    bad = admin.get("/admin/audit", params={"since": "hôm qua"})
    assert bad.status_code == 400 and "since &#39;hôm qua&#39;: give a date as YYYY-MM-DD" in bad.text
