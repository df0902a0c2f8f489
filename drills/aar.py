"""The after-action report of a drill session (HSEEP-style after-action report / improvement plan), as HTML.

`after_action_view` gathers what the report shows from the session, its scenario snapshot, the stored
scorecard, the corrective actions and the rule set in force on the drill date; `render_html` writes it with
an autoescaping Jinja2 template (drills/templates/after_action.html), Vietnamese first. The scenario's texts
are hostile like any file from outside: they reach the template as plain strings (control and bidi
characters made visible) and are escaped there, never marked safe. `soc.documents.html_to_pdf` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from drills.scenario import PHASE_TITLES, Milestone, Phase, Scenario, parse_offset
from drills.scoring import VERDICT_TITLES, Scorecard
from soc.compliance.rules import RuleSet
from soc.core.drill_records import ActionStatus, CorrectiveAction, DrillSession
from soc.core.text import Text
from soc.core.untrusted import visible
from soc.printing import long_date, print_css, templates

Language = Literal["vi", "en"]
TEMPLATES = Path(__file__).resolve().parent / "templates"
"""The report's template and stylesheet (the only files its PDF may load)."""
ISSUING_UNIT = Text(vi="Đội ứng cứu sự cố an toàn thông tin tỉnh Đồng Nai",
                    en="Đồng Nai Provincial Cyber Security Incident Response Team")
TITLE = Text(vi="Báo cáo sau diễn tập", en="After-action report")
LABELS: dict[str, Text] = {
    "nation": Text(vi="Cộng hòa xã hội chủ nghĩa Việt Nam", en="Socialist Republic of Viet Nam"),
    "motto": Text(vi="Độc lập - Tự do - Hạnh phúc", en="Independence - Freedom - Happiness"),
    "page": Text(vi="Trang", en="Page"),
    "overview": Text(vi="Thông tin chung", en="Exercise overview"),
    "scenario": Text(vi="Kịch bản", en="Scenario"),
    "target": Text(vi="Hệ thống mục tiêu", en="Target system"),
    "level": Text(vi="cấp độ", en="level"),
    "owner": Text(vi="Đơn vị chủ quản", en="Owner agency"),
    "date": Text(vi="Ngày diễn tập", en="Drill date"),
    "issued": Text(vi="Ngày lập báo cáo", en="Report date"),
    "session": Text(vi="Mã phiên", en="Session"),
    "length": Text(vi="Thời lượng (đồng hồ diễn tập)", en="Length (exercise clock)"),
    "facilitator": Text(vi="Người điều hành", en="Facilitator"),
    "summary": Text(vi="Tóm tắt kịch bản", en="Scenario summary"),
    "objectives": Text(vi="Mục tiêu diễn tập", en="Exercise objectives"),
    "participants": Text(vi="Thành phần tham gia", en="Participants"),
    "name": Text(vi="Họ tên", en="Name"),
    "role": Text(vi="Vai trò", en="Role"),
    "agency": Text(vi="Đơn vị", en="Agency"),
    "no_participants": Text(vi="Không ghi nhận người tham gia", en="No participants recorded"),
    "rules": Text(vi="Quy định áp dụng", en="Rules in force"),
    "ruleset": Text(vi="Bộ quy định", en="Rule set"),
    "from": Text(vi="hiệu lực từ", en="in force from"),
    "to_be_confirmed": Text(vi="cần xác nhận", en="to be confirmed"),
    "authorities": Text(vi="Cơ quan chức năng tiếp nhận báo cáo", en="Authorities receiving the reports"),
    "reports": Text(vi="Thời hạn báo cáo", en="Reporting deadlines"),
    "hours": Text(vi="giờ kể từ khi phát hiện", en="hours from detection"),
    "result": Text(vi="Kết quả chung", en="Overall result"),
    "score": Text(vi="Điểm", en="Score"),
    "pass_mark": Text(vi="Điểm đạt", en="Pass mark"),
    "passed": Text(vi="Đạt", en="Passed"),
    "failed": Text(vi="Chưa đạt", en="Not passed"),
    "expectations": Text(vi="Yêu cầu", en="Expectations"),
    "by_phase": Text(vi="Điểm theo giai đoạn", en="Scores by phase"),
    "by_objective": Text(vi="Điểm theo mục tiêu", en="Scores by objective"),
    "by_role": Text(vi="Điểm theo vai trò", en="Scores by role"),
    "phase": Text(vi="Giai đoạn", en="Phase"),
    "objective": Text(vi="Mục tiêu", en="Objective"),
    "points": Text(vi="Điểm đạt được", en="Points"),
    "value": Text(vi="Tỷ lệ", en="Share"),
    "not_applicable": Text(vi="không áp dụng", en="not applicable"),
    "times": Text(vi="Thời gian ứng phó", en="Response times"),
    "times_note": Text(vi="Tính trên đồng hồ diễn tập, từ lúc bắt đầu sự cố.",
                       en="On the exercise clock, from the start of the incident."),
    "milestone": Text(vi="Mốc", en="Milestone"),
    "reached": Text(vi="Đạt được lúc", en="Reached at"),
    "deadline": Text(vi="Hạn", en="Deadline"),
    "verdict": Text(vi="Kết quả", en="Verdict"),
    "never": Text(vi="không đạt được", en="never reached"),
    "path": Text(vi="Diễn biến và quyết định", en="Path taken and decisions"),
    "step": Text(vi="Tình huống, quyết định", en="Inject or decision"),
    "decision": Text(vi="Quyết định", en="Decision"),
    "chosen": Text(vi="Đã chọn", en="Chosen"),
    "not_chosen": Text(vi="Không chọn", en="Not chosen"),
    "undecided": Text(vi="Không quyết định trong thời gian diễn tập", en="Not decided during the exercise"),
    "consequence": Text(vi="Hệ quả", en="Consequence"),
    "strengths": Text(vi="Điểm mạnh", en="Strengths"),
    "strengths_note": Text(vi="Các yêu cầu đã thực hiện đầy đủ, đúng hạn.", en="Expectations met in full and on time."),
    "no_strengths": Text(vi="Không có yêu cầu nào đạt đầy đủ.", en="No expectation was fully met."),
    "improvements": Text(vi="Nội dung cần cải thiện", en="Areas for improvement"),
    "improvements_note": Text(vi="Các yêu cầu đạt một phần, muộn hoặc không đạt.",
                              en="Expectations partly met, late or missed."),
    "no_improvements": Text(vi="Mọi yêu cầu đều đạt.", en="Every expectation was met."),
    "action": Text(vi="Yêu cầu", en="Expectation"),
    "done_at": Text(vi="Thực hiện lúc", en="Done at"),
    "not_done": Text(vi="chưa thực hiện", en="not done"),
    "no_deadline": Text(vi="đến hết diễn tập", en="by the end"),
    "plan": Text(vi="Kế hoạch khắc phục", en="Improvement plan"),
    "corrective": Text(vi="Hành động khắc phục", en="Corrective action"),
    "owner_agency": Text(vi="Đơn vị chủ trì", en="Owner agency"),
    "due": Text(vi="Hạn hoàn thành", en="Due date"),
    "status": Text(vi="Trạng thái", en="Status"),
    "no_plan": Text(vi="Không có hành động khắc phục.", en="No corrective action."),
    "unassigned": Text(vi="chưa giao", en="not assigned"),
    "tracking": Text(vi="Mỗi hành động được theo dõi như một phát hiện của SOC đến khi một lần diễn tập hoặc quét sau "
                        "xác nhận đã khắc phục.",
                     en="Each action is tracked as a SOC finding until a later drill or scan confirms it."),
}
MILESTONE_TITLES: dict[Milestone, Text] = {
    Milestone.DETECT: Text(vi="Thời gian phát hiện", en="Time to detect"),
    Milestone.REPORT: Text(vi="Thời gian báo cáo", en="Time to report"),
    Milestone.CONTAIN: Text(vi="Thời gian ngăn chặn", en="Time to contain"),
    Milestone.RECOVER: Text(vi="Thời gian khôi phục", en="Time to recover"),
}
STATUS_TITLES: dict[str, Text] = {
    ActionStatus.OPEN.value: Text(vi="Đang thực hiện", en="Open"),
    ActionStatus.DONE.value: Text(vi="Đã thực hiện, chờ xác nhận", en="Done, awaiting confirmation"),
    ActionStatus.CONFIRMED.value: Text(vi="Đã xác nhận", en="Confirmed"),
    "overdue": Text(vi="Quá hạn", en="Overdue"),
}
MAX_SHOWN = 2_000
"""Bound on one text from the scenario or the store as shown in the report."""


def _plain(value: str | None) -> str:
    """Outside text as the report shows it: bounded, control and bidi characters made visible."""
    text = visible(value or "", multiline=True)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "…"


def _text(value: Text) -> Text:
    return Text(vi=_plain(value.vi) or "—", en=_plain(value.en) or "—")


def _same(value: str) -> Text:
    """A name that is the same in both languages."""
    shown = _plain(value) or "—"
    return Text(vi=shown, en=shown)


def _day(value: date | None) -> str:
    return "—" if value is None else f"{value:%d/%m/%Y}"


@dataclass(frozen=True)
class PersonRow:
    """A participant and the role they played."""

    name: str
    role: Text
    agency: str


@dataclass(frozen=True)
class AuthorityRow:
    """An authority of the rule set in force on the drill date."""

    name: Text
    confirmed: bool


@dataclass(frozen=True)
class DutyRow:
    """A reporting duty in force on the drill date."""

    title: Text
    within_hours: int
    confirmed: bool


@dataclass(frozen=True)
class PartRow:
    """A score over a phase, an objective or a role."""

    title: Text
    points: float
    possible: float
    value: float | None


@dataclass(frozen=True)
class MilestoneRow:
    """A response time on the exercise clock, with the deadline of the expectation that marks it."""

    title: Text
    at: str | None
    deadline: str | None
    verdict: str | None


@dataclass(frozen=True)
class OptionRow:
    """One option of a decision point."""

    label: Text
    consequence: Text | None
    chosen: bool


@dataclass(frozen=True)
class PathStep:
    """One step of the path taken: an inject released, or the decision it opened."""

    kind: Literal["inject", "decision"]
    phase: Text
    title: Text
    role: Text | None = None
    decided: bool = False
    options: tuple[OptionRow, ...] = ()


@dataclass(frozen=True)
class ExpectationRow:
    """An expectation as scored."""

    action: Text
    phase: Text
    role: Text
    verdict: str
    deadline: str | None
    done_at: str | None
    detail: str


@dataclass(frozen=True)
class PlanRow:
    """One line of the improvement plan."""

    text: Text
    owner: str | None
    due: str
    status: str


@dataclass(frozen=True)
class AfterActionView:
    """Everything the after-action report shows, already bounded and made visible (the template escapes it)."""

    session_id: str
    scenario_id: str
    scenario_version: int
    title: Text
    summary: Text
    target_system: Text
    target_level: int
    target_agency: str | None
    drill_date: str
    issued: date | None
    """The report's date (None: not given)."""
    length: str
    facilitator: str
    objectives: tuple[Text, ...]
    participants: tuple[PersonRow, ...]
    ruleset_id: str
    ruleset_title: Text
    ruleset_from: str
    ruleset_to_be_confirmed: bool
    authorities: tuple[AuthorityRow, ...]
    duties: tuple[DutyRow, ...]
    score: float
    pass_mark: float
    passed: bool
    counts: tuple[tuple[str, int], ...]
    """(verdict, how many) for met, partly, late, missed."""
    phases: tuple[PartRow, ...]
    objective_scores: tuple[PartRow, ...]
    roles: tuple[PartRow, ...]
    milestones: tuple[MilestoneRow, ...]
    path: tuple[PathStep, ...]
    strengths: tuple[ExpectationRow, ...]
    improvements: tuple[ExpectationRow, ...]
    plan: tuple[PlanRow, ...]


def _role_title(rules: RuleSet, role_id: str) -> Text:
    role = rules.incident_response.role(role_id)
    return _text(role.title) if role is not None else _same(role_id)


def _path(scenario: Scenario, card: Scorecard, rules: RuleSet) -> tuple[PathStep, ...]:
    steps: list[PathStep] = []
    known = {i.id for i in scenario.injects}
    for inject_id in card.path:
        if inject_id not in known:
            continue
        inject = scenario.inject(inject_id)
        steps.append(PathStep("inject", _text(PHASE_TITLES[inject.phase]), _text(inject.title)))
        for decision in (d for d in scenario.decisions if d.after == inject_id):
            chosen = card.decisions.get(decision.id)
            options = tuple(OptionRow(_text(o.label), None if o.consequence is None else _text(o.consequence),
                                      o.id == chosen) for o in decision.options)
            steps.append(PathStep("decision", _text(PHASE_TITLES[decision.phase]), _text(decision.prompt),
                                  _role_title(rules, decision.role), chosen is not None, options))
    return tuple(steps)


def _status(action: CorrectiveAction, issued: date | None) -> str:
    if action.status is ActionStatus.OPEN and issued is not None and action.due < issued:
        return "overdue"
    return action.status.value


def after_action_view(session: DrillSession, scenario: Scenario, scorecard: Scorecard,
                      actions: list[CorrectiveAction], rules: RuleSet, *,
                      issued: date | None = None) -> AfterActionView:
    """What the report of an ended session shows; `issued` (the report's date) marks open actions overdue."""
    day = session.drill_date
    card = scorecard
    rows = [ExpectationRow(
        action=_text(Text(vi=e.action_vi, en=e.action_en)), phase=_text(PHASE_TITLES[Phase(e.phase)]),
        role=_role_title(rules, e.role), verdict=e.verdict, deadline=e.deadline, done_at=e.done_at,
        detail=_plain(e.detail)) for e in card.expectations]
    by_id = {e.id: e for e in card.expectations}
    order = {e.id: index for index, e in enumerate(card.expectations)}
    milestones = []
    for milestone in Milestone:
        marking = [by_id[x.id] for x in scenario.expectations if x.milestone is milestone and x.id in by_id]
        milestones.append(MilestoneRow(MILESTONE_TITLES[milestone], getattr(card.milestones, milestone.value),
                                       marking[0].deadline if marking else None,
                                       marking[0].verdict if marking else None))
    incident = rules.incident_response
    duties = [d for d in incident.reports if d.in_force(day)
              and (d.applies == "always" or scenario.target.personal_data)]
    return AfterActionView(
        session_id=_plain(session.id), scenario_id=_plain(scenario.id), scenario_version=scenario.version,
        title=_text(scenario.title), summary=_text(scenario.summary), target_system=_text(scenario.target.system),
        target_level=scenario.target.level, target_agency=_plain(scenario.target.agency) or None,
        drill_date=_day(day), issued=issued, length=card.ended_at,
        facilitator=_plain(session.facilitator), objectives=tuple(_text(o.title) for o in scenario.objectives),
        participants=tuple(PersonRow(_plain(p.name), _role_title(rules, p.role), _plain(p.agency))
                           for p in session.participants),
        ruleset_id=rules.id, ruleset_title=_text(rules.title), ruleset_from=_day(rules.valid_from),
        ruleset_to_be_confirmed=rules.to_be_confirmed,
        authorities=tuple(AuthorityRow(_text(a.name), a.confirmed) for a in incident.authorities_on(day)),
        duties=tuple(DutyRow(_text(d.title), d.within_hours, d.confirmed) for d in duties),
        score=card.score.value, pass_mark=card.score.pass_mark, passed=card.score.passed,
        counts=(("met", card.score.met), ("partly", card.score.partly), ("late", card.score.late),
                ("missed", card.score.missed)),
        phases=tuple(PartRow(_text(Text(vi=p.title_vi, en=p.title_en)), p.points, p.possible, p.value)
                     for p in card.phases),
        objective_scores=tuple(PartRow(_text(Text(vi=p.title_vi, en=p.title_en)), p.points, p.possible, p.value)
                               for p in card.objectives),
        roles=tuple(PartRow(_text(Text(vi=p.title_vi, en=p.title_en)), p.points, p.possible, p.value)
                    for p in card.roles),
        milestones=tuple(milestones), path=_path(scenario, card, rules),
        strengths=tuple(r for r in rows if r.verdict == "met"),
        improvements=tuple(r for r in rows if r.verdict != "met"),
        plan=tuple(PlanRow(_text(Text(vi=a.text_vi, en=a.text_en)), _plain(a.owner_agency) or None, _day(a.due),
                           _status(a, issued))
                   for a in sorted(actions, key=lambda a: (a.due, order.get(a.expectation_id, 0), a.id))))


def duration(offset: str | None, lang: Language) -> str:
    """'+1d2h30m' on the exercise clock as '+1 ngày 2 giờ 30 phút' / '+1 d 2 h 30 min' ('—' for None)."""
    if offset is None:
        return "—"
    seconds = int(parse_offset(offset).total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    units = ("ngày", "giờ", "phút", "giây") if lang == "vi" else ("d", "h", "min", "s")
    parts = [f"{n} {u}" for n, u in zip((days, hours, minutes, secs), units, strict=True) if n]
    return "+" + (" ".join(parts) or f"0 {units[2]}")


def number(value: float, lang: Language) -> str:
    """A score with one decimal, a decimal comma in Vietnamese ('8,3')."""
    text = f"{value:.1f}".removesuffix(".0")
    return text.replace(".", ",") if lang == "vi" else text


def render_html(view: AfterActionView, lang: str = "vi") -> str:
    """The report as one self-contained HTML page (its CSS inline), Vietnamese first unless lang='en'."""
    language: Language = "en" if lang == "en" else "vi"
    other: Language = "vi" if language == "en" else "en"

    def first(text: Text) -> str:
        return text.en if language == "en" else text.vi

    def second(text: Text) -> str:
        return text.vi if language == "en" else text.en

    labels = {key: first(value) for key, value in LABELS.items()}
    subtitles = {key: second(value) for key, value in LABELS.items()}
    verdicts = {key: Text(vi=vi, en=en) for key, (vi, en) in VERDICT_TITLES.items()}
    return templates("drills").get_template("after_action.html").render(
        print_css=print_css(), v=view, lang=language, other=other, t=first, alt=second, L=labels, S=subtitles,
        issuing_unit=ISSUING_UNIT, title=TITLE, verdicts=verdicts, statuses=STATUS_TITLES,
        dur=lambda offset: duration(offset, language), num=lambda value: number(value, language), day=_day,
        long_day=lambda value: long_date(value, language))
