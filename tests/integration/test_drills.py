"""The drill engine through the services, on a real store: branching, resuming after a restart, deadlines that
follow the rule set in force, corrective actions as findings with their SLA, and the drill KPIs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from drills.responses import ResponsesFile, read_responses
from drills.scenario import parse_offset
from soc.cli import app
from soc.compliance.kpi import ComplianceReport
from soc.core.clock import FixedClock, end_of_day
from soc.core.drill_records import ActionStatus, Participant, SessionStatus
from soc.core.models import FindingStatus
from soc.core.settings import Settings
from soc.inventory import load_inventory
from soc.services import compliance, drills
from soc.services.context import ServiceContext, ServiceError, open_context

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
QLVB = PLAYBOOKS / "qlvb-ransomware.yaml"
NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
INVENTORY = Path(__file__).resolve().parents[2] / "examples" / "dongnai.yaml"


@pytest.fixture
def context(tmp_path: Path) -> Iterator[ServiceContext]:
    with open_context(Settings(db=tmp_path / "soc.db"), FixedClock(NOW), "facilitator") as ctx:
        yield ctx


def _session(context: ServiceContext, day: date | None = None) -> str:
    people = [Participant(name="Trần An", role="incident_commander"), Participant(name="Lê Bình", role="soc_analyst")]
    return drills.create_session(context, QLVB, drill_date=day, participants=people).id


def test_a_decision_branches_the_scenario_and_its_branch_expectations(context: ServiceContext) -> None:
    monitor, isolate = _session(context), _session(context)
    for session, option in ((monitor, "monitor"), (isolate, "isolate-now")):
        drills.command(context, session, "start")
        drills.command(context, session, "advance", to=parse_offset("+2h"))
        with pytest.raises(ServiceError, match="no option"):
            drills.command(context, session, "decide", decision_id="d-isolate", option_id="wait")
        drills.command(context, session, "decide", decision_id="d-isolate", option_id=option)
        with pytest.raises(ServiceError, match="already taken"):
            drills.command(context, session, "decide", decision_id="d-isolate", option_id=option)
        drills.command(context, session, "advance", to=parse_offset("+3h30m"))
    watched, isolated = drills.state_of(context, monitor), drills.state_of(context, isolate)
    assert "inj-ransom" in watched.released and "inj-isolated" not in watched.released
    assert watched.released["inj-ransom"] == parse_offset("+3h")  # decided at +2h, released 1 h later
    assert "inj-isolated" in isolated.released and "inj-ransom" not in isolated.released
    drills.command(context, monitor, "act", expectation_id="e-no-ransom", role="leadership")
    with pytest.raises(ServiceError, match="does not apply on this path"):
        drills.command(context, isolate, "act", expectation_id="e-no-ransom", role="leadership")
    for session in (monitor, isolate):
        drills.command(context, session, "end")
    scored = {s: _expectation_ids(context, s) for s in (monitor, isolate)}
    assert "e-no-ransom" in scored[monitor] and "e-no-ransom" not in scored[isolate]


def _expectation_ids(context: ServiceContext, session_id: str) -> set[str]:
    session = context.backend.drills.session(session_id)
    assert session is not None and session.status is SessionStatus.ENDED and session.scorecard is not None
    return {e["id"] for e in session.scorecard["expectations"]}


def test_a_decision_before_it_opens_and_commands_after_the_end_are_refused(context: ServiceContext) -> None:
    session = _session(context)
    with pytest.raises(ServiceError, match="has not started"):
        drills.command(context, session, "advance", to=parse_offset("+1h"))
    drills.command(context, session, "start")
    with pytest.raises(ServiceError, match="not open yet"):
        drills.command(context, session, "decide", decision_id="d-isolate", option_id="monitor")
    with pytest.raises(ServiceError, match="belongs to a branch not taken"):
        drills.command(context, session, "release", inject_id="inj-ransom")
    drills.command(context, session, "end")
    with pytest.raises(ServiceError, match="has ended"):
        drills.command(context, session, "note", text="late")


def test_a_session_survives_a_restart_and_resumes(tmp_path: Path) -> None:
    settings, clock = Settings(db=tmp_path / "soc.db"), FixedClock(NOW)
    with open_context(settings, clock, "facilitator") as first:
        session = _session(first)
        drills.command(first, session, "start")
        drills.command(first, session, "advance", to=parse_offset("+20m"))
        drills.command(first, session, "act", expectation_id="e-triage", role="soc_analyst", quality="partial")
        drills.command(first, session, "advance", to=parse_offset("+50m"))
        drills.command(first, session, "pause")
        before = drills.state_of(first, session)
    clock.advance(timedelta(hours=3))  # the clock was paused: real time passing moves nothing
    with open_context(settings, clock, "facilitator") as second:
        after = drills.state_of(second, session)
        assert after.status is SessionStatus.PAUSED
        assert after.released == before.released == {"inj-alert": timedelta(), "inj-webshell": parse_offset("+45m")}
        assert after.actions == before.actions
        assert after.exercise_now(clock.now()) == parse_offset("+50m")
        drills.command(second, session, "resume")
        clock.advance(timedelta(minutes=80))  # running: the exercise clock follows real time
        state = drills.command(second, session, "catch_up")
        assert "inj-lateral" in state.released and state.released["inj-lateral"] == parse_offset("+2h")
        drills.command(second, session, "end")
        stored = second.backend.drills.session(session)
    assert stored is not None and stored.scorecard is not None
    triage = next(e for e in stored.scorecard["expectations"] if e["id"] == "e-triage")
    assert (triage["verdict"], triage["done_at"]) == ("partly", "+20m")


def test_a_rule_set_change_moves_the_reporting_deadline_without_editing_the_scenario(context: ServiceContext) -> None:
    report_at_two_days = ResponsesFile.model_validate(
        {"responses": [{"at": "+2d", "expectation": "e-initial-report", "role": "authority_liaison"}]})
    old = drills.run_scripted(context, QLVB, report_at_two_days, drill_date=date(2025, 6, 1))
    new = drills.run_scripted(context, QLVB, report_at_two_days, drill_date=date(2026, 12, 1))
    verdict = {card.ruleset: next(e for e in card.expectations if e.id == "e-initial-report")
               for card in (old.scorecard, new.scorecard)}
    assert (verdict["nd85-2016"].deadline, verdict["nd85-2016"].verdict) == ("+5d", "met")  # 120 h
    assert (verdict["luat116-2025"].deadline, verdict["luat116-2025"].verdict) == ("+1d", "late")  # 24 h


def _library() -> list[Path]:
    return sorted(PLAYBOOKS.glob("*.yaml"))


def test_the_library_has_six_incident_scenarios_and_a_communication_check() -> None:
    checked = drills.library()
    scenarios = [c.scenario for c in checked if c.scenario is not None]
    assert len(scenarios) == len(checked), [str(p) for c in checked for p in c.problems]
    incidents = [s for s in scenarios if s.kind == "tabletop"]
    assert len(incidents) >= 6 and any(s.kind == "communication_check" for s in scenarios)
    for scenario in incidents:
        assert len(scenario.phases()) >= 3, scenario.id
        assert len(scenario.injects) >= 8, scenario.id
        assert scenario.decisions and any(i.trigger for i in scenario.injects), scenario.id
        assert scenario.rubric is not None


@pytest.mark.parametrize("path", _library(), ids=lambda p: p.stem)
def test_every_library_scenario_scores_100_with_perfect_responses_and_0_with_none(
        path: Path, context: ServiceContext) -> None:
    perfect = read_responses(PLAYBOOKS / "responses" / f"{path.stem}.perfect.json")
    full = drills.run_scripted(context, path, perfect)
    assert full.scorecard.score.value == 100.0, [(e.id, e.verdict) for e in full.scorecard.expectations]
    assert full.actions == []
    empty = drills.run_scripted(context, path, ResponsesFile(participants=perfect.participants))
    card = empty.scorecard
    assert card.score.value == 0.0 and card.score.missed == len(card.expectations)
    assert len(empty.actions) == len(card.expectations)
    findings = context.backend.findings.list_findings(check_ids=["drill.corrective_action"],
                                                      portal_url=f"drill:{empty.session.id}")
    assert {f.detail for f in findings} == {a.id for a in empty.actions}
    for finding in findings:
        action = next(a for a in empty.actions if a.id == finding.detail)
        assert finding.status is FindingStatus.OPEN
        assert finding.due_at == end_of_day(action.due)  # the action's due date is the finding's SLA
        assert finding.assignee == action.owner_agency


def test_a_corrective_action_closes_when_done_and_a_later_drill_confirms_it(context: ServiceContext) -> None:
    missed = drills.run_scripted(context, QLVB, ResponsesFile())
    triage = next(a for a in missed.actions if a.expectation_id == "e-triage")
    brief = next(a for a in missed.actions if a.expectation_id == "e-brief")
    drills.mark_done(context, triage.id, "SIEM rule added")
    with pytest.raises(ServiceError, match="already done"):
        drills.mark_done(context, triage.id)
    fingerprint = {f.detail: f for f in context.backend.findings.list_findings(check_ids=["drill.corrective_action"])}
    assert fingerprint[triage.id].status is FindingStatus.OPEN  # done is not confirmed
    perfect = read_responses(PLAYBOOKS / "responses" / "qlvb-ransomware.perfect.json")
    drills.run_scripted(context, QLVB, perfect)
    actions = {a.id: a for a in context.backend.drills.actions(missed.session.id)}
    assert actions[triage.id].status is ActionStatus.CONFIRMED
    assert (actions[triage.id].confirmed_by or "").startswith("session:")
    assert actions[brief.id].status is ActionStatus.OPEN  # met again, but nobody said it was done
    after = {f.detail: f for f in context.backend.findings.list_findings(check_ids=["drill.corrective_action"])}
    assert after[triage.id].status is FindingStatus.RESOLVED
    assert after[brief.id].status is FindingStatus.OPEN


def test_drills_feed_the_kpis(tmp_path: Path) -> None:
    inventory = load_inventory(INVENTORY)
    clock = FixedClock(NOW)
    with open_context(Settings(db=tmp_path / "soc.db"), clock, "facilitator") as context:
        before = compliance.kpis(context, inventory, date(2026, 12, 2))
        assert _kpi(before, "drills_held") == (0, "not_met")
        drills.run_scripted(context, QLVB, ResponsesFile(), drill_date=date(2025, 11, 20))  # last year
        drills.run_scripted(context, QLVB, ResponsesFile(), drill_date=date(2026, 11, 20))
        drills.run_scripted(context, QLVB, ResponsesFile(), drill_date=date(2026, 11, 25))
        report = compliance.kpis(context, inventory, date(2026, 12, 2))
        assert _kpi(report, "drills_held") == (2, "met")
        assert _kpi(report, "drills_level3") == (1, "met")  # the same level-3 system twice
        office = next(s for s in report.agencies if s.id == "vpubnd")
        assert next(k for k in office.kpis if k.id == "drills_held").numerator == 2
        other = next(s for s in report.agencies if s.id == "syt")
        assert next(k for k in other.kpis if k.id == "drills_held").numerator == 0
        assert _kpi(compliance.kpis(context, inventory, date(2026, 11, 22)), "drills_held") == (1, "met")


def _kpi(report: ComplianceReport, target: str) -> tuple[float, str]:
    item = next(k for k in report.province.kpis if k.id == target)
    return item.numerator, item.status


def test_a_scenario_file_broken_on_disk_does_not_stop_a_running_session(tmp_path: Path,
                                                                        context: ServiceContext) -> None:
    copy = tmp_path / "copy.yaml"
    copy.write_text(QLVB.read_text(encoding="utf-8"), encoding="utf-8")
    session = drills.create_session(context, copy).id
    drills.command(context, session, "start")
    copy.write_text("id: [\n", encoding="utf-8")
    state = drills.command(context, session, "advance", to=parse_offset("+1h"))
    assert "inj-webshell" in state.released
    with pytest.raises(ServiceError, match="not valid YAML"):
        drills.create_session(context, copy)


def test_soc_drill_run_scripted_writes_the_score_and_the_corrective_actions(tmp_path: Path) -> None:
    responses = tmp_path / "none.json"
    responses.write_text("[]", encoding="utf-8")
    out = tmp_path / "out.json"
    result = CliRunner().invoke(app, ["drill", "run", str(QLVB), "--responses", str(responses), "--json", str(out),
                                      "--db", str(tmp_path / "soc.db")])
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text(encoding="utf-8"))
    assert payload["score"]["value"] == 0.0
    assert len(payload["corrective_actions"]) == payload["score"]["missed"] > 0
    assert all(a["owner_agency"] == "vpubnd" for a in payload["corrective_actions"])
    bad = tmp_path / "bad.json"
    bad.write_text('[{"at": "+1h", "expectation": "e-triage"}]', encoding="utf-8")
    refused = CliRunner().invoke(app, ["drill", "run", str(QLVB), "--responses", str(bad), "--json", str(out),
                                       "--db", str(tmp_path / "soc.db")])
    assert refused.exit_code == 2 and "responses[0].role" in refused.output


def test_the_communication_check_credits_each_participant_who_acknowledged_in_time(context: ServiceContext) -> None:
    partial = read_responses(PLAYBOOKS / "responses" / "communication-check.partial.json")
    card = drills.run_scripted(context, PLAYBOOKS / "communication-check.yaml", partial).scorecard
    ack = next(e for e in card.expectations if e.id == "e-ack")
    assert ack.verdict == "partly" and 0 < ack.credit < 1
    assert ack.detail.startswith("5/9")  # five of nine in time
    assert 0 < card.score.value < card.score.pass_mark and not card.score.passed
