"""The permission matrix of the REST API: every route × every role and every credential that must be refused.

ROUTES is the one table of what each route needs (and what to send it so the handler really runs). The app's
own routes are enumerated, so a new route without an entry fails here until its protection is written down,
and a route whose protection changes (its `needs_*` dependency) fails until the table agrees.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import fastapi.routing
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.testclient import TestClient

from soc.api.auth import CSRF_HEADER, principal
from soc.core.models import Role
from soc.services.users import PERMISSIONS, Permission
from tests.integration.api_world import (
    PASSWORD,
    PORTAL,
    ROLE_USERS,
    TARGET_USER,
    Credential,
    Seed,
    World,
    loopback_only,
    open_world,
    seed_store,
)

PUBLIC = "public"
"""No credentials needed."""
SIGNED_IN = "signed in"
"""Any valid caller, whatever the role (who am I, sign out)."""
Access = Permission | str


@dataclass(frozen=True)
class Rule:
    """What a route needs, the body a permitted caller sends, and the status the first permitted call (by the
    admin, on the seeded store) gets: proof that the handler ran, not just the guard."""

    access: Access
    status: int = 200
    body: dict[str, Any] | None = None


ROUTES: dict[tuple[str, str], Rule] = {
    ("GET", "/healthz"): Rule(PUBLIC),
    ("GET", "/openapi.json"): Rule(PUBLIC),
    ("GET", "/docs"): Rule(PUBLIC),
    ("GET", "/docs/oauth2-redirect"): Rule(PUBLIC),
    ("GET", "/redoc"): Rule(PUBLIC),
    ("POST", "/api/v1/session"): Rule(PUBLIC, body={"username": ROLE_USERS[Role.VIEWER], "password": PASSWORD}),
    ("GET", "/api/v1/session"): Rule(SIGNED_IN),
    ("DELETE", "/api/v1/session"): Rule(SIGNED_IN, 204),
    ("GET", "/api/v1/findings"): Rule(Permission.READ),
    ("GET", "/api/v1/findings/{fingerprint}"): Rule(Permission.READ),
    ("POST", "/api/v1/findings/{fingerprint}/transitions"): Rule(Permission.TRIAGE, body={"status": "acknowledged"}),
    ("POST", "/api/v1/findings/{fingerprint}/comments"): Rule(Permission.TRIAGE, body={"comment": "x"}),
    ("POST", "/api/v1/findings/{fingerprint}/assignment"): Rule(Permission.TRIAGE, body={"agency": "stp"}),
    ("GET", "/api/v1/portals"): Rule(Permission.READ),
    ("GET", "/api/v1/portals/{portal}"): Rule(Permission.READ),
    ("GET", "/api/v1/runs"): Rule(Permission.READ),
    ("GET", "/api/v1/runs/{run}"): Rule(Permission.READ),
    ("GET", "/api/v1/runs/{run_a}/diff/{run_b}"): Rule(Permission.READ),
    ("GET", "/api/v1/systems"): Rule(Permission.READ),
    ("GET", "/api/v1/coverage"): Rule(Permission.READ),
    ("GET", "/api/v1/kpis"): Rule(Permission.READ),
    ("GET", "/api/v1/exports/findings.csv"): Rule(Permission.READ),
    ("GET", "/api/v1/exports/findings.xlsx"): Rule(Permission.READ),
    ("GET", "/api/v1/exports/portals.csv"): Rule(Permission.READ),
    ("GET", "/api/v1/exports/portals.xlsx"): Rule(Permission.READ),
    ("GET", "/api/v1/jobs"): Rule(Permission.READ),
    ("GET", "/api/v1/jobs/runs"): Rule(Permission.READ),
    ("GET", "/api/v1/jobs/{name}/runs"): Rule(Permission.READ),
    # The test scheduler has no job, so the handler's own 404 (a real job would start a real scan).
    ("POST", "/api/v1/jobs/{name}/run"): Rule(Permission.SCAN, 404),
    ("GET", "/api/v1/users"): Rule(Permission.ADMIN),
    ("POST", "/api/v1/users"): Rule(Permission.ADMIN, 201,
                                    {"name": "giang.new", "role": "viewer", "password": PASSWORD}),
    ("POST", "/api/v1/users/{name}/disable"): Rule(Permission.ADMIN),
    ("POST", "/api/v1/users/{name}/enable"): Rule(Permission.ADMIN),
    ("POST", "/api/v1/users/{name}/password"): Rule(Permission.ADMIN, body={"password": PASSWORD + "!"}),
    ("GET", "/api/v1/tokens"): Rule(Permission.ADMIN),
    ("POST", "/api/v1/tokens"): Rule(Permission.ADMIN, 201, {"user": ROLE_USERS[Role.VIEWER]}),
    ("DELETE", "/api/v1/tokens/{token_id}"): Rule(Permission.ADMIN),
    ("GET", "/api/v1/audit"): Rule(Permission.ADMIN),
    ("GET", "/api/v1/drills/scenarios"): Rule(Permission.READ),
    ("POST", "/api/v1/drills/sessions"): Rule(Permission.DRILLS, 201, {"scenario": "qlvb-ransomware"}),
    ("GET", "/api/v1/drills/sessions"): Rule(Permission.READ),
    # No session or corrective action in the seeded store: the handlers' own 404 for the ids of path_values().
    ("GET", "/api/v1/drills/sessions/{session_id}"): Rule(Permission.READ, 404),
    ("GET", "/api/v1/drills/sessions/{session_id}/participant"): Rule(Permission.READ, 404),
    ("POST", "/api/v1/drills/sessions/{session_id}/commands"): Rule(Permission.DRILLS, 404, {"command": "start"}),
    ("GET", "/api/v1/drills/sessions/{session_id}/scorecard"): Rule(Permission.READ, 404),
    ("GET", "/api/v1/drills/sessions/{session_id}/report"): Rule(Permission.READ, 404),
    ("GET", "/api/v1/drills/actions"): Rule(Permission.READ),
    ("POST", "/api/v1/drills/actions/{action_id}/done"): Rule(Permission.DRILLS, 404, {}),
    ("GET", "/api/v1/reports"): Rule(Permission.READ),
    # A month not begun: the handler's own 409 (a real month would build a whole report for every permitted caller).
    ("POST", "/api/v1/reports"): Rule(Permission.SCAN, 409, {"kind": "monthly", "period": "2099-01", "lang": "vi"}),
    # No report in the seeded store: the handlers' own 404 for the id of path_values().
    ("GET", "/api/v1/reports/{report_id}.pdf"): Rule(Permission.READ, 404),
    ("GET", "/api/v1/reports/{report_id}.html"): Rule(Permission.READ, 404),
}


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    return seed_store(tmp_path_factory.mktemp("seed"))


@pytest.fixture
def world(seed: Seed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    loopback_only(monkeypatch)
    opened = open_world(seed, tmp_path)
    try:
        yield opened
    finally:
        opened.context.close()


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(world.app) as test_client:
        yield test_client


@dataclass(frozen=True)
class Endpoint:
    """One method of one route as the app serves it: its full path template and its dependency tree (None for
    Starlette's own routes: the OpenAPI document and the docs pages)."""

    method: str
    path: str
    dependant: Dependant | None


def endpoints(app: FastAPI) -> list[Endpoint]:
    """Every endpoint the app serves (HEAD is GET's twin: left out)."""
    # Recent FastAPI keeps included routers nested in app.routes; this walks them with their prefixes and
    # router-level dependencies (older versions list every route flat, with both already applied).
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    routes: list[Any] = list(flatten(app.routes)) if flatten is not None else list(app.routes)
    found = []
    for route in routes:
        methods: set[str] = getattr(route, "methods", None) or set()
        dependant = getattr(route, "dependant", None)
        found += [Endpoint(method, route.path, dependant if isinstance(dependant, Dependant) else None)
                  for method in sorted(methods) if method != "HEAD"]
    return found


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def derived_access(endpoint: Endpoint) -> Access:
    """What the endpoint's dependencies demand: a `needs_<permission>` guard, else `principal` (signed in),
    else nothing (public)."""
    if endpoint.dependant is None:
        return PUBLIC
    calls = list(_calls(endpoint.dependant))
    needed = {Permission(name.removeprefix("needs_")) for call in calls
              if (name := getattr(call, "__name__", "")).startswith("needs_")}
    assert len(needed) <= 1, f"{endpoint.path}: several permission guards {sorted(needed)}"
    if needed:
        return needed.pop()
    return SIGNED_IN if principal in calls else PUBLIC


def may(credential: Credential, access: Access) -> bool:
    """The credential should pass the guard of `access`."""
    if access == PUBLIC:
        return True
    if credential.role is None:
        return False
    return access == SIGNED_IN or access in PERMISSIONS[credential.role]


def path_values(world: World, client: TestClient) -> dict[str, str]:
    """A real id for every path parameter, so permitted calls reach the handler rather than a 404."""
    admin = world.credential(Role.ADMIN.value).headers()
    seed = world.seed
    values = {"fingerprint": seed.fingerprints[0], "name": TARGET_USER, "token_id": seed.spare_token_id,
              "run": seed.run_id, "run_a": seed.run_id, "run_b": seed.run_id, "session_id": "0123456789ab",
              "action_id": "no-such-action", "report_id": "0123456789ab"}
    portals = client.get("/api/v1/portals", headers=admin)
    if portals.status_code == 200:
        values["portal"] = next(item["id"] for item in portals.json()["items"] if item["url"] == PORTAL)
    return values


PARAMETER = re.compile(r"(\{([^}:]+)(?::[^}]*)?\})")
"""A path parameter of a route template, `{name}` or `{name:converter}`."""


def fill(template: str, values: dict[str, str]) -> str:
    """The path with its parameters filled in (a parameter without a value fails with what to add)."""
    path = template
    for part, name in PARAMETER.findall(template):  # a parameter may share its segment: /reports/{report_id}.pdf
        assert name in values, f"{template}: no value for the path parameter {name!r}: add one in path_values()"
        path = path.replace(part, values[name])
    return path


def test_every_route_is_in_the_table_with_the_protection_it_has(world: World) -> None:
    served = {(endpoint.method, endpoint.path): endpoint for endpoint in endpoints(world.app)}
    assert len(served) == len(endpoints(world.app)), "two endpoints with the same method and path"
    unknown = sorted(set(served) - set(ROUTES))
    assert not unknown, (f"routes without an entry in ROUTES of {__name__}: {unknown}; add each with the "
                         "permission it must need (and a body and status that exercise its handler)")
    gone = sorted(set(ROUTES) - set(served))
    assert not gone, f"ROUTES names routes the app no longer serves: {gone}"
    changed = {key: (ROUTES[key].access, derived_access(endpoint)) for key, endpoint in served.items()
               if derived_access(endpoint) != ROUTES[key].access}
    assert not changed, f"routes whose guard differs from ROUTES (table, actual): {changed}"


def test_every_route_for_every_credential(world: World, client: TestClient) -> None:
    values = path_values(world, client)
    wrong: list[str] = []
    count = 0
    for endpoint in endpoints(world.app):
        method, template = endpoint.method, endpoint.path
        rule = ROUTES.get((method, template))
        if rule is None:
            continue  # reported by the test above
        path = fill(template, values)
        first = True
        for credential in world.credentials:
            client.cookies.clear()  # a sign-in earlier in the loop must not lend its session to this caller
            response = client.request(method, path, headers=credential.headers(), json=rule.body)
            count += 1
            got = response.status_code
            where = f"{method} {path} as {credential.kind}: {got} {response.text[:200]}"
            if got >= 500:
                wrong.append(f"server error: {where}")
            elif not may(credential, rule.access):
                if credential.role is None:
                    if got != 401 or response.headers.get("www-authenticate") != 'Bearer realm="soc"':
                        wrong.append(f"expected 401 with WWW-Authenticate: {where}")
                elif got != 403:
                    wrong.append(f"expected 403: {where}")
            elif got in (401, 403):
                wrong.append(f"expected to pass the guard: {where}")
            elif first and got != rule.status:
                wrong.append(f"expected {rule.status} for the first permitted caller: {where}")
            if may(credential, rule.access):
                first = False
    assert count == len(ROUTES) * len(world.credentials)
    assert not wrong, "\n".join(wrong)


def _state(world: World) -> dict[str, Any]:
    """Everything a state-changing route could touch."""
    backend = world.backend
    findings = backend.findings.list_findings()
    return {
        "audit": [entry.model_dump() for entry in backend.audit.entries(limit=1_000_000)],
        "findings": [finding.model_dump() for finding in findings],
        "history": {f.fingerprint: [event.model_dump() for event in backend.findings.events(f.fingerprint)]
                    for f in findings},
        "runs": [run.model_dump() for run in backend.findings.list_runs(1000)],
        "users": [(user.name, user.role, user.disabled) for user in backend.users.users()],
        "tokens": [(token.id, token.role, token.expires_at, token.revoked_at) for token in backend.users.tokens()],
        "jobs": [run.model_dump() for run in backend.jobs.runs()],
    }


def test_a_viewer_changes_nothing(world: World, client: TestClient) -> None:
    values = path_values(world, client)
    viewer = world.credential(Role.VIEWER.value)
    before = _state(world)
    tried = []
    for endpoint in endpoints(world.app):
        method, template = endpoint.method, endpoint.path
        if method == "GET":
            continue
        rule = ROUTES[(method, template)]
        client.cookies.clear()
        response = client.request(method, fill(template, values), headers=viewer.headers(), json=rule.body)
        tried.append(method + " " + template)
        where = f"{method} {template} as a viewer: {response.status_code} {response.text[:300]}"
        if may(viewer, rule.access):  # signing in and out, which change no data
            assert response.status_code not in (401, 403) and response.status_code < 500, where
        else:
            assert response.status_code == 403, where
    assert len(tried) >= 10
    assert _state(world) == before


def test_a_session_needs_the_csrf_token_on_state_changes(world: World, client: TestClient) -> None:
    operator = ROLE_USERS[Role.OPERATOR]
    signed = client.post("/api/v1/session", json={"username": operator, "password": PASSWORD})
    assert signed.status_code == 200, signed.text
    csrf = signed.json()["csrf_token"]
    assert client.get("/api/v1/findings").status_code == 200  # reading needs no CSRF token
    comments = f"/api/v1/findings/{world.seed.fingerprints[1]}/comments"
    missing = client.post(comments, json={"comment": "không có CSRF / no CSRF"})
    assert missing.status_code == 403 and "CSRF" in missing.json()["detail"]
    forged = csrf[:-1] + ("y" if csrf.endswith("x") else "x")  # one character off, never the token itself
    wrong = client.post(comments, json={"comment": "sai CSRF / wrong CSRF"}, headers={CSRF_HEADER: forged})
    assert wrong.status_code == 403
    assert world.backend.audit.entries(action_prefix="finding.comment") == []  # nothing was written
    passed = client.post(comments, json={"comment": "có CSRF / with CSRF"}, headers={CSRF_HEADER: csrf})
    assert passed.status_code == 200, passed.text
    assert passed.json()["history"][-1]["note"] == "có CSRF / with CSRF"
    [entry] = world.backend.audit.entries(action_prefix="finding.comment")
    assert entry.actor == operator


def test_a_session_of_a_disabled_user_stops_at_once(world: World, client: TestClient) -> None:
    signed = client.post("/api/v1/session", json={"username": TARGET_USER, "password": PASSWORD})
    assert signed.status_code == 200, signed.text
    assert client.get("/api/v1/findings").status_code == 200
    admin = world.credential(Role.ADMIN.value).headers()
    assert client.post(f"/api/v1/users/{TARGET_USER}/disable", headers=admin).status_code == 200
    refused = client.get("/api/v1/findings")
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == 'Bearer realm="soc"'


REFUSED_BECAUSE = {
    "no credentials": "no credentials",
    "expired token": "expired",
    "revoked token": "revoked",
    "token of a disabled user": "is disabled",
    "garbage token": "unknown",
    "not one of our tokens": "not one of ours",
    "malformed header (Basic)": "not `Bearer <token>`",
    "malformed header (Bearer, no token)": "not `Bearer <token>`",
}


def test_each_refused_credential_is_refused_for_its_own_reason(world: World, client: TestClient,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    refused = [credential for credential in world.credentials if credential.role is None]
    assert sorted(credential.kind for credential in refused) == sorted(REFUSED_BECAUSE)
    for credential in refused:
        caplog.clear()
        with caplog.at_level("INFO", logger="soc.api"):
            response = client.get("/api/v1/findings", headers=credential.headers())
        assert response.status_code == 401
        assert REFUSED_BECAUSE[credential.kind] not in response.json()["detail"], "only the log says why"
        [reason] = [record.getMessage() for record in caplog.records if "authentication refused" in record.getMessage()]
        assert REFUSED_BECAUSE[credential.kind] in reason, (credential.kind, reason)
    world.clock.advance(-timedelta(days=1))  # back on the day the expiring token was made for: it works
    assert client.get("/api/v1/findings", headers=world.credential("expired token").headers()).status_code == 200


def test_the_findings_list_scripts_rely_on(world: World, client: TestClient) -> None:
    viewer = world.credential(Role.VIEWER.value).headers()
    whole = client.get("/api/v1/findings", headers=viewer).json()
    assert set(whole) == {"items", "next"} and whole["next"] is None
    assert sorted(item["fingerprint"] for item in whole["items"]) == sorted(world.seed.fingerprints)
    seen, cursor = [], None
    for _ in range(len(world.seed.fingerprints) + 1):  # one page per finding, then no cursor
        page = client.get("/api/v1/findings", headers=viewer,
                          params={"limit": 1} | ({"cursor": cursor} if cursor else {})).json()
        seen += [item["fingerprint"] for item in page["items"]]
        if (cursor := page["next"]) is None:
            break
    assert cursor is None and seen == [item["fingerprint"] for item in whole["items"]]
