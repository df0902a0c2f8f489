"""Drills as a service: sessions from scenario files, commands on them, scoring, corrective actions as findings.

Every front end (web console, terminal, scripted mode, API) drives the same `drills.engine.Engine` through
here. A session runs from the scenario snapshot stored with it, so a scenario file broken or edited on disk
never stops a running session; a bad file is refused, with every problem, before a session is made.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from checks.drills import action_findings, drill_subject
from drills.engine import DrillError, Engine, SessionState, replay
from drills.generate import Exposure, exposures, to_yaml
from drills.generate import draft as draft_scenario
from drills.responses import ResponsesFile, replay_responses
from drills.scenario import Scenario
from drills.scoring import Scorecard, score
from drills.validate import Checked, read_file, read_text
from soc.compliance.rules import RulesError, ruleset_for
from soc.core.clock import end_of_day, today
from soc.core.drill_records import (
    ActionStatus,
    CorrectiveAction,
    DrillSession,
    Participant,
    SessionStatus,
)
from soc.core.models import FindingStatus, Observation
from soc.core.observations import DrillObservation
from soc.inventory import Inventory
from soc.services.context import ServiceContext, ServiceError
from soc.services.findings import owners
from soc.services.sla import apply_deadlines, system_levels

DRILL_RUN = "drills"
"""Name recorded as the 'inventory' of the runs that record corrective-action findings."""
PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
"""The scenario library shipped with the toolkit."""
WARN_BEFORE = timedelta(days=7)
"""A corrective action's finding is 'due soon' this long before its due date."""


@dataclass(frozen=True)
class Finished:
    """A session scored: its record, its scorecard and its corrective actions."""

    session: DrillSession
    scorecard: Scorecard
    actions: list[CorrectiveAction]


def library(directory: Path | None = None) -> list[Checked]:
    """Every scenario file of the library (playbooks/*.yaml), checked against today's rules."""
    folder = directory or PLAYBOOKS
    return [read_file(path) for path in sorted(folder.glob("*.yaml"))]


def scenario_of(session: DrillSession) -> Scenario:
    """The scenario a session runs from (its stored snapshot)."""
    checked = read_text(session.scenario_text, session.source, session.drill_date)
    if checked.scenario is None:  # the snapshot was valid when stored; the rules may have changed since
        raise ServiceError(f"drill session {session.id}: its scenario no longer validates:\n"
                           + "\n".join(str(p) for p in checked.problems))
    return checked.scenario


def _new_id() -> str:
    return secrets.token_hex(6)


def create_session(context: ServiceContext, source: Path | str, *, text: str | None = None,
                   drill_date: date | None = None, facilitator: str | None = None,
                   participants: Sequence[Participant] = ()) -> DrillSession:
    """A planned session from a scenario file (or its text); ServiceError listing every problem of a bad one."""
    day = drill_date or today(context.clock)
    checked = read_text(text, str(source), day) if text is not None else read_file(Path(source), day)
    if checked.scenario is None:
        raise ServiceError("\n".join(str(p) for p in checked.problems) or f"{source}: not a valid scenario")
    scenario = checked.scenario
    roles = set(scenario.roles)
    for index, person in enumerate(participants):
        if person.role not in roles:
            raise ServiceError(f"participants[{index}] ({person.name}): role {person.role!r} is not one of the "
                               f"scenario's roles ({', '.join(scenario.roles)})")
    names = [p.name for p in participants]
    if len(set(names)) != len(names):
        raise ServiceError("participants: two participants have the same name")
    try:
        rules = ruleset_for(day)
    except RulesError as exc:
        raise ServiceError(str(exc)) from None
    now = context.clock.now()
    session = DrillSession(
        id=_new_id(), scenario_id=scenario.id, scenario_version=scenario.version, title_vi=scenario.title.vi,
        title_en=scenario.title.en, scenario_text=checked.text, source=str(source), drill_date=day,
        ruleset=rules.id, facilitator=facilitator or context.actor, participants=list(participants),
        created_at=now, updated_at=now, target_system=scenario.target.system_id, target_level=scenario.target.level,
        target_agency=scenario.target.agency)
    context.backend.drills.create_session(session)
    context.audit("drill.session.create", session.id, after={"scenario": scenario.id, "date": day.isoformat(),
                                                              "participants": len(participants)})
    return session


def session_or_error(context: ServiceContext, session_id: str) -> DrillSession:
    """A session, or ServiceError naming the unknown id."""
    session = context.backend.drills.session(session_id)
    if session is None:
        raise ServiceError(f"no drill session {session_id!r}")
    return session


def state_of(context: ServiceContext, session_id: str) -> SessionState:
    """A session's state, rebuilt from its log."""
    session = session_or_error(context, session_id)
    return replay(session, scenario_of(session), context.backend.drills.events(session_id))


def engine_for(context: ServiceContext, session_id: str) -> Engine:
    """The engine on a session's state, writing to the store."""
    return Engine(state_of(context, session_id), context.backend.drills)


def command(context: ServiceContext, session_id: str, name: str, **arguments: object) -> SessionState:
    """Run one engine command (start, pause, resume, advance, release, decide, act, note, end, catch_up);
    ServiceError with the engine's reason when refused. Ending a session scores it."""
    engine = engine_for(context, session_id)
    method = getattr(engine, name, None)
    if name.startswith("_") or method is None or name in ("state", "log"):
        raise ServiceError(f"unknown drill command {name!r}")
    try:
        method(real=context.clock.now(), actor=context.actor, **arguments)
    except DrillError as exc:
        raise ServiceError(str(exc)) from None
    if name != "catch_up":
        context.audit(f"drill.session.{name}", session_id, after={k: str(v) for k, v in arguments.items()})
    if engine.state.status is SessionStatus.ENDED and name == "end":
        finish(context, session_id)
    return engine.state


def finish(context: ServiceContext, session_id: str) -> Finished:
    """Score an ended session, keep the scorecard, create its corrective actions and their findings."""
    state = state_of(context, session_id)
    if state.status is not SessionStatus.ENDED:
        raise ServiceError(f"drill session {session_id} has not ended")
    card = score(state)
    now = context.clock.now()
    existing = {a.expectation_id: a for a in context.backend.drills.actions(session_id)}
    actions = []
    for draft in card.corrective_actions:
        if draft.expectation_id in existing:
            actions.append(existing[draft.expectation_id])
            continue
        actions.append(CorrectiveAction(
            id=f"{session_id}-{draft.expectation_id}"[:32], session_id=session_id, scenario_id=card.scenario,
            expectation_id=draft.expectation_id, text_vi=draft.text_vi, text_en=draft.text_en,
            owner_agency=draft.owner_agency, due=state.day + timedelta(days=draft.due_days), created_at=now,
            confirm_findings=list(state.scenario.generated_from)))
    session = context.backend.drills.finish_session(session_id, card.score.value, card.model_dump(mode="json"),
                                                    now, actions)
    context.audit("drill.session.score", session_id, after={"score": card.score.value,
                                                            "corrective_actions": len(actions)})
    evaluate_actions(context)
    return Finished(session, card, context.backend.drills.actions(session_id))


def run_scripted(context: ServiceContext, source: Path, responses: ResponsesFile, *,
                 drill_date: date | None = None, facilitator: str | None = None) -> Finished:
    """Create a session, replay the responses on its clock, end and score it."""
    participants = responses.participants
    if not participants:
        checked = read_file(source, drill_date or today(context.clock))
        if checked.scenario is None:
            raise ServiceError("\n".join(str(p) for p in checked.problems))
        participants = [Participant(name=role, role=role) for role in checked.scenario.roles]
    session = create_session(context, source, drill_date=drill_date, facilitator=facilitator,
                             participants=participants)
    engine = engine_for(context, session.id)
    try:
        replay_responses(engine, responses.responses, context.clock.now(), session.facilitator)
    except DrillError as exc:
        raise ServiceError(f"{source}: {exc}") from None
    context.audit("drill.session.scripted", session.id, after={"responses": len(responses.responses)})
    return finish(context, session.id)


def mark_done(context: ServiceContext, action_id: str, note: str | None = None) -> CorrectiveAction:
    """The owner says a corrective action is done (a later drill or scan still has to confirm it)."""
    store = context.backend.drills
    action = store.action(action_id)
    if action is None:
        raise ServiceError(f"no corrective action {action_id!r}")
    if action.status is not ActionStatus.OPEN:
        raise ServiceError(f"corrective action {action_id} is already {action.status.value}")
    done = store.update_action(action_id, status=ActionStatus.DONE, done_at=context.clock.now(),
                               done_by=context.actor, done_note=(note or "")[:4000] or None)
    context.audit("drill.action.done", action_id, before={"status": action.status.value},
                  after={"status": done.status.value, "note": note})
    evaluate_actions(context)
    return store.action(action_id) or done


def _confirmation(context: ServiceContext, action: CorrectiveAction, later: Sequence[DrillSession]) -> str | None:
    """What confirms a done action now, or None."""
    if action.confirm_findings:
        findings = [context.backend.findings.finding(fp) for fp in action.confirm_findings]
        if all(f is None or f.status in (FindingStatus.RESOLVED, FindingStatus.FALSE_POSITIVE) for f in findings):
            return "finding:" + ",".join(fp[:12] for fp in action.confirm_findings)
        return None
    for session in later:
        if session.id == action.session_id or session.scenario_id != action.scenario_id:
            continue
        if session.created_at < action.created_at or session.scorecard is None:
            continue
        verdicts = {e["id"]: e["verdict"] for e in session.scorecard.get("expectations", [])}
        if verdicts.get(action.expectation_id) == "met":
            return f"session:{session.id}"
    return None


def evaluate_actions(context: ServiceContext) -> int:
    """Confirm done actions a later drill or scan bears out, then record every session's action findings
    (confirmed ones resolve). Returns how many actions were confirmed now."""
    store = context.backend.drills
    ended = store.sessions(status=SessionStatus.ENDED, limit=10_000)
    confirmed = 0
    now = context.clock.now()
    for action in store.actions(status=ActionStatus.DONE):
        by = _confirmation(context, action, ended)
        if by is not None:
            store.update_action(action.id, status=ActionStatus.CONFIRMED, confirmed_at=now, confirmed_by=by)
            context.audit("drill.action.confirm", action.id, after={"by": by})
            confirmed += 1
    by_session: dict[str, list[CorrectiveAction]] = {}
    for action in store.actions():
        by_session.setdefault(action.session_id, []).append(action)
    if not by_session:
        return confirmed
    sessions = {s.id: s for s in ended}
    findings_store = context.backend.findings
    run = findings_store.begin_run(DRILL_RUN, len(by_session))
    complete = False
    deadlines: dict[str, tuple[datetime, datetime]] = {}
    try:
        for session_id, actions in by_session.items():
            session = sessions.get(session_id) or session_or_error(context, session_id)
            subject = drill_subject(session_id)
            findings = action_findings(session_id, actions, session.target_level)
            data = {"actions": {a.id: a.status.value for a in actions}, "scenario": session.scenario_id}
            typed = DrillObservation(portal_url=subject, observed_at=now, data=data)
            observation = Observation(collector="drill", portal_url=subject, observed_at=now,
                                      complete=typed.complete, data=typed.model_dump(mode="json"))
            findings_store.record_portal(run.id, subject, [observation], findings)
            owner = {a.id: a for a in actions}
            for finding in findings:
                action = owner[finding.detail]
                due = end_of_day(action.due)
                deadlines[finding.fingerprint] = (min(due - WARN_BEFORE, due), due)
                stored = findings_store.finding(finding.fingerprint)
                if stored is not None and stored.assignee is None and action.owner_agency is not None:
                    findings_store.assign(finding.fingerprint, action.owner_agency, context.actor)
        complete = True
    finally:
        findings_store.finish_run(run.id, complete=complete)
    if deadlines:
        findings_store.set_deadlines(deadlines)
    apply_deadlines(context, None)
    return confirmed


def drills_held(context: ServiceContext, day: date) -> list[DrillSession]:
    """Ended sessions of the calendar year of `day`, held on or before it (the KPIs count them)."""
    return context.backend.drills.sessions(status=SessionStatus.ENDED, since=date(day.year, 1, 1), until=day,
                                           limit=10_000)



@dataclass(frozen=True)
class Draft:
    """A scenario drafted from open findings: its file text and the exposures it was built on."""

    text: str
    scenario_id: str
    exposures: list[Exposure]


def draft_from_findings(context: ServiceContext, inventory: Inventory | None, agency: str | None = None,
                        drill_date: date | None = None) -> Draft:
    """Draft a scenario from the open findings (of one agency) with the portal, system and owner filled in."""
    open_findings = context.backend.findings.list_findings(statuses=[FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED])
    owned = owners(context, inventory)
    if agency is not None and agency not in set(owned.values()):
        raise ServiceError(f"--agency {agency}: not an agency of the inventory or the register")
    levels = system_levels(context, inventory)
    names = {record.id: record.name for record in context.backend.register.systems_as_of(context.clock.now())}
    systems: dict[str, tuple[str, str | None, int]] = {}
    if inventory is not None:
        names = {system.id: system.name for system in inventory.systems} | names
        for portal in inventory.portals:
            if portal.system is not None:
                systems[portal.url] = (portal.system, names.get(portal.system), levels.get(portal.system, 2))
    for system_id, level in levels.items():
        systems[f"system:{system_id}"] = (system_id, names.get(system_id), level)
    found = exposures(open_findings, owned, systems, agency)
    if not found:
        scope = f" of agency {agency}" if agency else ""
        raise ServiceError(f"no open finding{scope} to draft from (exposed RDP/database ports, certificate or "
                           f"trust-label findings, systems in operation without approval)")
    data = draft_scenario(found, drill_date or today(context.clock))
    return Draft(to_yaml(data), str(data["id"]), found)
