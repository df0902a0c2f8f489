"""Drills through the API as a facilitator runs one: a session from the library, the exercise clock started,
advanced and running on its own, a decision that branches the story, actions recorded against expectations,
an inject released early, the end and its scorecard, corrective actions marked done, the after-action report.

Real parts: the seeded SQLite store of `api_world` (a user and token of each role), the real engine and
scoring, a scenario library on disk holding the shipped ransomware scenario and a broken one.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from soc.core.models import Role
from soc.services.drills import PLAYBOOKS
from tests.integration.api_world import Seed, World, loopback_only, open_world, seed_store

SCENARIO = "qlvb-ransomware"
BAD = """id: broken-drill
version: 1
title: {vi: "Kịch bản hỏng", en: "Broken scenario"}
summary: {vi: "x", en: "x"}
target: {system: {vi: "Hệ thống", en: "System"}, level: 2}
duration: 2h
detection: inj-missing
objectives:
  - id: o-1
    title: {vi: "Mục tiêu", en: "Objective"}
roles: [soc_analyst]
injects:
  - id: inj-1
    phase: detection
    title: {vi: "Cảnh báo", en: "Alert"}
    at: +3h
    read_aloud: {vi: "Đọc", en: "Read"}
expectations:
  - id: e-1
    phase: detection
    objective: o-1
    role: nobody
    action: {vi: "Làm", en: "Do"}
    deadline: {after: inj-1, within: +30m}
"""
PEOPLE = [{"name": "Nguyễn Văn An", "role": "incident_commander"}, {"name": "Trần Thị Bình", "role": "soc_analyst"},
          {"name": "Lê Văn Cường", "role": "system_owner"}, {"name": "Phạm Thu Dung", "role": "communications"},
          {"name": "Hoàng Minh Em", "role": "leadership"}, {"name": "Vũ Thị Giang", "role": "authority_liaison"}]


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    return seed_store(tmp_path_factory.mktemp("seed"))


@pytest.fixture
def world(seed: Seed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    loopback_only(monkeypatch)
    (tmp_path / "store").mkdir()
    opened = open_world(seed, tmp_path / "store")
    folder = tmp_path / "library"
    folder.mkdir()
    shutil.copy(PLAYBOOKS / f"{SCENARIO}.yaml", folder / f"{SCENARIO}.yaml")
    (folder / "broken.yaml").write_text(BAD, encoding="utf-8")
    opened.app.state.drill_library = folder
    try:
        yield opened
    finally:
        opened.context.close()


class Api:
    """Calls as one role or another (Bearer tokens of the seeded users)."""

    def __init__(self, world: World, client: TestClient) -> None:
        self.world, self.client = world, client

    def call(self, method: str, path: str, role: Role = Role.INCIDENT, **kwargs: Any) -> Any:
        return self.client.request(method, f"/api/v1/drills{path}", headers=self.world.credential(role.value).headers(),
                                   **kwargs)

    def do(self, session: str, command: str, role: Role = Role.INCIDENT, **arguments: Any) -> Any:
        return self.call("POST", f"/sessions/{session}/commands", role, json={"command": command, **arguments})

    def ok(self, session: str, command: str, **arguments: Any) -> dict[str, Any]:
        response = self.do(session, command, **arguments)
        assert response.status_code == 200, response.text
        state: dict[str, Any] = response.json()
        return state

    def create(self, **body: Any) -> dict[str, Any]:
        response = self.call("POST", "/sessions", json={"scenario": SCENARIO, "participants": PEOPLE} | body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created


@pytest.fixture
def api(world: World) -> Iterator[Api]:
    with TestClient(world.app) as client:
        yield Api(world, client)


def released(state: dict[str, Any]) -> list[str]:
    return [inject["id"] for inject in state["released"]]


def expectation(state: dict[str, Any], expectation_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(e for e in state["expectations"] if e["id"] == expectation_id)
    return found


def test_a_drill_from_its_creation_to_its_scorecard_and_corrective_actions(api: Api, world: World) -> None:
    created = api.create(drill_date="2026-11-27")
    session = created["id"]
    assert created["status"] == "planned" and created["clock"] == "+0m" and created["released"] == []
    assert created["ruleset"] and [p["name"] for p in created["participants"]] == [p["name"] for p in PEOPLE]
    assert api.call("GET", f"/sessions/{session}", Role.VIEWER).json()["id"] == session
    [listed] = api.call("GET", "/sessions", Role.VIEWER).json()["items"]
    assert listed["id"] == session and listed["score"] is None and listed["participants"] == len(PEOPLE)

    state = api.ok(session, "start")
    assert state["status"] == "running" and released(state) == ["inj-alert"]
    assert state["released"][0]["read_aloud"]["vi"].startswith("08:15 thứ Hai")
    assert state["released"][0]["artefacts"][0]["kind"] == "log" and state["released"][0]["hint"] is not None
    assert state["upcoming"][0]["id"] == "inj-webshell" and state["upcoming"][0]["due"] == "+45m"
    assert expectation(state, "e-triage")["deadline"] == "+30m"
    assert expectation(state, "e-classify")["deadline"] is None  # its inject is not out yet

    state = api.ok(session, "advance", by="+10m")
    assert state["clock"] == "+10m"
    state = api.ok(session, "act", expectation="e-triage", participant="Trần Thị Bình", note="Phiếu SC-01")
    triage = expectation(state, "e-triage")
    assert triage["done"] and triage["actions"] == [{"role": "soc_analyst", "participant": "Trần Thị Bình",
                                                     "quality": "full", "at": "+10m", "at_seconds": 600.0,
                                                     "note": "Phiếu SC-01"}]

    world.clock.advance(timedelta(minutes=40))  # the exercise clock runs with real time: +50m now
    state = api.call("GET", f"/sessions/{session}", Role.VIEWER).json()
    assert state["clock"] == "+50m" and released(state) == ["inj-alert", "inj-webshell"]
    assert state["released"][1]["released_at"] == "+45m" and state["released"][1]["released_by"] == "clock"
    assert expectation(state, "e-escalate")["overdue"] is False

    state = api.ok(session, "advance", next=True)
    assert state["clock"] == "+2h" and released(state)[-1] == "inj-lateral"
    [decision] = state["open_decisions"]
    assert decision["id"] == "d-isolate" and [o["id"] for o in decision["options"]] == ["isolate-now", "monitor"]
    assert expectation(state, "e-escalate")["overdue"] is True  # due +1h, never done

    state = api.ok(session, "decide", decision="d-isolate", option="isolate-now")
    assert state["open_decisions"] == [] and state["decisions"][0]["option"] == "isolate-now"
    upcoming = {inject["id"]: inject for inject in state["upcoming"]}
    assert upcoming["inj-isolated"]["due"] == "+3h" and upcoming["inj-isolated"]["releasable"]
    assert "inj-ransom" not in upcoming  # the branch not taken is gone
    state = api.ok(session, "release", inject="inj-isolated")
    assert released(state)[-1] == "inj-isolated" and state["released"][-1]["released_by"] == "facilitator"
    assert state["released"][-1]["released_at"] == "+2h"

    state = api.ok(session, "act", expectation="e-contain", quality="partial")
    assert expectation(state, "e-contain")["actions"][0]["role"] == "incident_commander"
    state = api.ok(session, "note", text="Đội quyết định cô lập sau 5 phút thảo luận")
    assert state["notes"] == [{"at": "+2h", "by": "chi.incident", "text": "Đội quyết định cô lập sau 5 phút thảo luận"}]
    state = api.ok(session, "pause")
    world.clock.advance(timedelta(hours=1))
    assert api.call("GET", f"/sessions/{session}").json()["clock"] == "+2h"  # paused: the clock stands
    api.ok(session, "resume")

    state = api.ok(session, "end")
    assert state["status"] == "ended" and state["score"] is not None and state["scorecard"] is not None
    card = api.call("GET", f"/sessions/{session}/scorecard", Role.VIEWER).json()
    verdicts = {e["id"]: e["verdict"] for e in card["expectations"]}
    assert verdicts["e-triage"] == "met" and verdicts["e-contain"] == "partly" and verdicts["e-escalate"] == "missed"
    assert "e-no-ransom" not in verdicts  # it belongs to the branch not taken
    assert card["decisions"] == {"d-isolate": "isolate-now"} and card["score"]["value"] == state["score"]
    assert card["phases"][0]["id"] == "detection"
    [listed] = api.call("GET", "/sessions?status=ended").json()["items"]
    assert listed["score"] == state["score"]

    actions = api.call("GET", f"/actions?session={session}").json()["items"]
    assert {a["expectation_id"] for a in actions} >= {"e-escalate", "e-contain"}
    assert all(a["status"] == "open" and a["owner_agency"] == "vpubnd" for a in actions)
    escalate = next(a for a in actions if a["expectation_id"] == "e-escalate")
    done = api.call("POST", f"/actions/{escalate['id']}/done", json={"note": "Đã ban hành quy trình báo cáo"})
    assert done.status_code == 200 and done.json()["status"] == "done" and done.json()["done_by"] == "chi.incident"
    again = api.call("POST", f"/actions/{escalate['id']}/done", json={})
    assert again.status_code == 409 and "already done" in again.json()["detail"]
    assert api.call("POST", "/actions/no-such-action/done", json={}).status_code == 404
    audited = {entry.action for entry in world.backend.audit.entries(action_prefix="drill.")}
    assert {"drill.session.create", "drill.session.start", "drill.session.decide", "drill.session.release",
            "drill.session.end", "drill.session.score", "drill.action.done"} <= audited


def test_a_refused_command_is_a_409_with_the_engines_reason(api: Api) -> None:
    session = api.create()["id"]
    early = api.do(session, "pause")
    assert early.status_code == 409, early.text
    assert early.headers["content-type"].startswith("application/problem+json")
    assert early.json()["detail"] == ("Phiên diễn tập chưa bắt đầu / the session has not started: cannot pause")
    api.ok(session, "start")
    again = api.do(session, "start")
    assert again.status_code == 409 and "already started" in again.json()["detail"]
    closed = api.do(session, "decide", decision="d-isolate", option="monitor")
    assert closed.status_code == 409 and "not open yet" in closed.json()["detail"]
    branch = api.do(session, "release", inject="inj-ransom")
    assert branch.status_code == 409 and "branch not taken" in branch.json()["detail"]
    stranger = api.do(session, "act", expectation="e-triage", participant="Người lạ")
    assert stranger.status_code == 409 and "is not a participant" in stranger.json()["detail"]
    api.ok(session, "advance", to="+1h")
    backwards = api.do(session, "advance", to="+30m")
    assert backwards.status_code == 409 and "only moves forward" in backwards.json()["detail"]
    unknown = api.do("0123456789ab", "start")
    assert unknown.status_code == 404 and "no drill session" in unknown.json()["detail"]
    for body in ({"command": "advance"}, {"command": "advance", "to": "+1h", "by": "+1h"},
                 {"command": "start", "inject": "inj-alert"}, {"command": "release"},
                 {"command": "advance", "to": "soon"}, {"command": "jump"}, {"command": "note", "text": "x" * 5000},
                 {"command": "start", "extra": 1}):
        refused = api.call("POST", f"/sessions/{session}/commands", json=body)
        assert refused.status_code == 422, (body, refused.text)
    assert api.call("GET", f"/sessions/{session}/scorecard").status_code == 409
    assert api.call("GET", f"/sessions/{session}/report").status_code == 409
    assert api.call("GET", "/sessions/0123456789ab").status_code == 404


def test_a_viewer_reads_but_changes_nothing(api: Api, world: World) -> None:
    session = api.create()["id"]
    api.ok(session, "start")
    before = [event.model_dump() for event in world.backend.drills.events(session)]
    for role in (Role.VIEWER, Role.OPERATOR):
        assert api.call("GET", f"/sessions/{session}", role).status_code == 200
        assert api.call("GET", "/scenarios", role).status_code == 200
        for response in (api.do(session, "pause", role), api.do(session, "note", role, text="x"),
                         api.call("POST", "/sessions", role, json={"scenario": SCENARIO}),
                         api.call("POST", "/actions/x/done", role, json={})):
            assert response.status_code == 403, response.text
    assert [event.model_dump() for event in world.backend.drills.events(session)] == before
    assert len(api.call("GET", "/sessions", Role.VIEWER).json()["items"]) == 1
    assert api.client.post(f"/api/v1/drills/sessions/{session}/commands", json={"command": "pause"}).status_code == 401


def test_a_bad_scenario_is_listed_with_its_problems_and_cannot_be_started(api: Api) -> None:
    items = {item["id"]: item for item in api.call("GET", "/scenarios", Role.VIEWER).json()["items"]}
    assert set(items) == {SCENARIO, "broken-drill"}
    good, bad = items[SCENARIO], items["broken-drill"]
    assert good["valid"] and good["problems"] == [] and good["level"] == 3 and good["title"]["vi"].startswith("Khai")
    assert not bad["valid"] and bad["file"] == "broken.yaml"
    problems = "\n".join(bad["problems"])
    assert "broken.yaml:7: detection: no inject 'inj-missing'" in problems
    assert "role 'nobody' is not declared" in problems and "after the end of the exercise" in problems
    assert "/" not in bad["problems"][0].split(":")[0]  # no server path
    for key in ("broken-drill", "broken"):
        refused = api.call("POST", "/sessions", json={"scenario": key})
        assert refused.status_code == 422 and "has problems" in refused.json()["detail"], refused.text
        assert "no inject 'inj-missing'" in refused.json()["detail"]
    missing = api.call("POST", "/sessions", json={"scenario": "no-such-drill"})
    assert missing.status_code == 422 and "no scenario 'no-such-drill'" in missing.json()["detail"]
    wrong_role = api.call("POST", "/sessions", json={"scenario": SCENARIO,
                                                     "participants": [{"name": "A", "role": "janitor"}]})
    assert wrong_role.status_code == 422 and "janitor" in wrong_role.json()["detail"]
    assert api.call("GET", "/sessions").json()["items"] == []


def test_the_participants_screen_shows_only_what_is_released(api: Api) -> None:
    session = api.create()["id"]
    api.ok(session, "start")
    api.ok(session, "advance", to="+2h")
    screen = api.call("GET", f"/sessions/{session}/participant", Role.VIEWER).json()
    assert [i["id"] for i in screen["released"]] == ["inj-alert", "inj-webshell", "inj-lateral"]
    assert screen["running"] and screen["clock"] == "+2h" and screen["open_decisions"][0]["id"] == "d-isolate"
    text = json.dumps(screen, ensure_ascii=False)
    for secret in ("hint", "upcoming", "expectations", "webshell trên SIEM", "Kết nối SMB hàng loạt",
                   "inj-press", "consequence", "Kẻ tấn công kịp mã hoá"):
        assert secret not in text, secret
    assert set(screen["released"][0]) == {"id", "phase", "title", "released_at", "released_seconds", "to",
                                          "read_aloud", "artefacts", "questions"}


def test_the_after_action_report_of_an_ended_session(api: Api) -> None:
    session = api.create()["id"]
    api.ok(session, "start")
    api.ok(session, "act", expectation="e-triage")
    api.ok(session, "end", at="+1d")
    page = api.call("GET", f"/sessions/{session}/report?format=html&lang=vi", Role.VIEWER)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src" not in page.headers["content-security-policy"]
    assert "Khai thác lỗ hổng Hệ thống Quản lý văn bản" in page.text
    english = api.call("GET", f"/sessions/{session}/report?lang=en", Role.VIEWER)
    assert english.status_code == 200 and "Document management system exploited" in english.text
    pdf = api.call("GET", f"/sessions/{session}/report?format=pdf&lang=vi", Role.VIEWER)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and f"drill-{session}-vi.pdf" in pdf.headers["content-disposition"]
    assert api.call("GET", f"/sessions/{session}/report?format=doc").status_code == 422
