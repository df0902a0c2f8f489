"""Scoring a session: each expectation met / partly / late / missed with its weight, scores per phase, objective
and role, the response times on the exercise clock, and the corrective actions the gaps call for.

Pure: the same state gives the same scorecard, so a past drill is re-scored by replaying its log (or its
responses file) when a rubric changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel

from drills.engine import Action, SessionState
from drills.scenario import PHASE_TITLES, Expectation, Milestone, Phase, format_offset

Verdict = Literal["met", "partly", "late", "missed"]

VERDICT_TITLES: dict[str, tuple[str, str]] = {
    "met": ("Đạt", "Met"), "partly": ("Đạt một phần", "Partly met"), "late": ("Muộn", "Late"),
    "missed": ("Không đạt", "Missed"),
}


class ExpectationScore(BaseModel):
    """How one expectation went."""

    id: str
    phase: str
    objective: str
    role: str
    action_vi: str
    action_en: str
    weight: float
    verdict: Verdict
    credit: float
    """0–1: the share of the weight earned."""
    points: float
    deadline: str | None
    """On the exercise clock ('+4h'); None when its anchor never came."""
    done_at: str | None
    """When it was first done (on the exercise clock)."""
    detail: str = ""


class Part(BaseModel):
    """A score over a group of expectations (a phase, an objective, a role)."""

    id: str
    title_vi: str
    title_en: str
    points: float
    possible: float
    value: float | None
    """0–100; None when nothing of the group applied."""


class Score(BaseModel):
    """The session's overall score."""

    value: float
    """0–100, one decimal."""
    points: float
    possible: float
    passed: bool
    pass_mark: float
    met: int
    partly: int
    late: int
    missed: int


class Milestones(BaseModel):
    """Time to detect, report, contain and recover on the exercise clock (None: never reached)."""

    detect: str | None = None
    report: str | None = None
    contain: str | None = None
    recover: str | None = None


class ActionDraft(BaseModel):
    """A corrective action the scoring calls for (the service gives it an id and stores it)."""

    expectation_id: str
    verdict: Verdict
    text_vi: str
    text_en: str
    owner_agency: str | None
    due_days: int


class Scorecard(BaseModel):
    """Everything the after-action report and the OUT.json of scripted mode carry."""

    scenario: str
    scenario_version: int
    ruleset: str
    score: Score
    expectations: list[ExpectationScore]
    phases: list[Part]
    objectives: list[Part]
    roles: list[Part]
    milestones: Milestones
    path: list[str]
    """The injects released, in order (the branch taken)."""
    decisions: dict[str, str]
    corrective_actions: list[ActionDraft]
    ended_at: str


def _judge(expectation: Expectation, actions: list[Action], deadline: timedelta | None, end: timedelta,
           participants: int, partial: float, late: float) -> tuple[Verdict, float, str | None, str]:
    due = deadline if deadline is not None else end
    if not actions:
        return "missed", 0.0, None, ""
    first = min(a.at for a in actions)
    if expectation.every_participant:
        total = max(participants, 1)
        in_time = {a.participant for a in actions if a.at <= due}
        late_ones = {a.participant for a in actions if a.at > due} - in_time
        credit = (len(in_time) + late * len(late_ones)) / total
        detail = f"{len(in_time)}/{total} đúng hạn / in time" + (f", {len(late_ones)} muộn / late" if late_ones else "")
        if len(in_time) >= total:
            return "met", 1.0, format_offset(first), detail
        if not in_time:
            return ("late" if late_ones else "missed"), min(credit, late), format_offset(first), detail
        return "partly", min(credit, 1.0), format_offset(first), detail
    full = [a for a in actions if a.quality == "full" and a.at <= due]
    if full:
        return "met", 1.0, format_offset(min(a.at for a in full)), ""
    if any(a.at <= due for a in actions):
        return "partly", partial, format_offset(first), ""
    return "late", late, format_offset(first), ""


def _parts(items: Iterable[tuple[str, str, str, ExpectationScore]]) -> list[Part]:
    groups: dict[str, tuple[str, str, float, float]] = {}
    for key, vi, en, score in items:
        _, _, points, possible = groups.get(key, (vi, en, 0.0, 0.0))
        groups[key] = (vi, en, points + score.points, possible + score.weight)
    return [Part(id=key, title_vi=vi, title_en=en, points=round(points, 3), possible=possible,
                 value=round(100 * points / possible, 1) if possible else None)
            for key, (vi, en, points, possible) in groups.items()]


def score(state: SessionState) -> Scorecard:
    """The scorecard of a session as its state stands (normally once it has ended)."""
    scenario, rubric = state.scenario, state.scenario.rubric
    end = state.clock
    results: list[ExpectationScore] = []
    drafts: list[ActionDraft] = []
    milestones: dict[Milestone, timedelta] = {}
    for expectation in scenario.expectations:
        if not state.applicable(expectation.id):
            continue
        actions = [a for a in state.actions if a.expectation == expectation.id]
        deadline = state.deadline(expectation.id)
        verdict, credit, done_at, detail = _judge(expectation, actions, deadline, end,
                                                  len(state.session.participants), rubric.partial_credit,
                                                  rubric.late_credit)
        if expectation.milestone is not None and actions:
            first = min(a.at for a in actions)
            milestones[expectation.milestone] = min(milestones.get(expectation.milestone, first), first)
        results.append(ExpectationScore(
            id=expectation.id, phase=expectation.phase.value, objective=expectation.objective,
            role=expectation.role, action_vi=expectation.action.vi, action_en=expectation.action.en,
            weight=expectation.weight, verdict=verdict, credit=round(credit, 4),
            points=round(expectation.weight * credit, 4),
            deadline=None if deadline is None else format_offset(deadline), done_at=done_at, detail=detail))
        if verdict != "met":
            text = expectation.corrective_action
            drafts.append(ActionDraft(
                expectation_id=expectation.id, verdict=verdict,
                text_vi=text.vi if text else f"Khắc phục: {expectation.action.vi}; bổ sung quy trình và diễn tập lại",
                text_en=text.en if text else f"Fix: {expectation.action.en}; update the procedure and drill it again",
                owner_agency=scenario.target.agency, due_days=expectation.due_days))
    points = sum(r.points for r in results)
    possible = sum(r.weight for r in results)
    value = round(100 * points / possible, 1) if possible else 0.0
    counts = {v: sum(1 for r in results if r.verdict == v) for v in ("met", "partly", "late", "missed")}
    objectives = {o.id: o.title for o in scenario.objectives}
    roles = {r.id: r.title for r in state.rules.incident_response.roles}
    return Scorecard(
        scenario=scenario.id, scenario_version=scenario.version, ruleset=state.rules.id,
        score=Score(value=value, points=round(points, 3), possible=possible, passed=value >= rubric.pass_mark,
                    pass_mark=rubric.pass_mark, **counts),
        expectations=results,
        phases=_parts((r.phase, PHASE_TITLES[Phase(r.phase)].vi, PHASE_TITLES[Phase(r.phase)].en, r)
                      for r in sorted(results, key=lambda r: list(Phase).index(Phase(r.phase)))),
        objectives=_parts((r.objective, objectives[r.objective].vi, objectives[r.objective].en, r) for r in results),
        roles=_parts((r.role, roles[r.role].vi if r.role in roles else r.role,
                      roles[r.role].en if r.role in roles else r.role, r) for r in results),
        milestones=Milestones(**{m.value: format_offset(t) for m, t in milestones.items()}),
        path=list(state.released), decisions={d: option for d, (option, _, _) in state.decisions.items()},
        corrective_actions=drafts, ended_at=format_offset(end))

