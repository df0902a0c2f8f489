"""TLS grade (A+…F, T) and overall portal score, from findings and the rubric in grading.yaml. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from checks.catalogue import catalogue
from soc.core.collectors import check_prefixes
from soc.core.models import Finding, Severity
from soc.core.text import Text

RUBRIC_PATH = Path(__file__).with_name("grading.yaml")
TRUST_GRADE = "T"


class Cap(BaseModel):
    """A TLS weakness that limits the grade."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cap: str
    reason: Text


class ScoreRule(BaseModel):
    """How the overall portal score is computed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: dict[str, float]
    grade_points: dict[str, int]
    severity_penalty: dict[Severity, int]


class Rubric(BaseModel):
    """The grading rubric (grading.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tls_grades: list[str]
    caps: dict[str, Cap]
    trust_caps: dict[str, Text]
    a_plus: dict[str, int]
    score: ScoreRule


class Grade(BaseModel):
    """A portal's assessment: TLS grade with its reasons, and the overall score."""

    tls_grade: str | None = None
    """None when TLS could not be assessed (unreachable, incomplete)."""
    grade_without_trust: str | None = None
    """For a T: the grade the configuration would have if the certificate were trusted."""
    reasons: list[str] = Field(default_factory=list)
    """Bilingual reasons, e.g. 'giới hạn B: TLS 1.0 được bật / capped at B: TLS 1.0 enabled'."""
    score: int | None = None
    category_scores: dict[str, int] = Field(default_factory=dict)


@cache
def rubric() -> Rubric:
    """The rubric, validated against the catalogue (every id it names must exist)."""
    loaded = Rubric.model_validate(yaml.safe_load(RUBRIC_PATH.read_text(encoding="utf-8")))
    unknown = [i for i in [*loaded.caps, *loaded.trust_caps] if i not in catalogue()]
    bad_caps = [i for i, c in loaded.caps.items() if c.cap not in loaded.tls_grades]
    if unknown or bad_caps:
        raise ValueError(f"{RUBRIC_PATH.name}: unknown check ids {unknown} or caps {bad_caps}")
    return loaded


def cap_reason(check_id: str) -> str | None:
    """'capped at B: TLS 1.0 enabled' style text for a finding that caps the grade, else None."""
    rules = rubric()
    if check_id in rules.caps:
        cap = rules.caps[check_id]
        return f"giới hạn {cap.cap}: {cap.reason.vi} / capped at {cap.cap}: {cap.reason.en}"
    if check_id in rules.trust_caps:
        text = rules.trust_caps[check_id]
        return f"hạng T: {text.vi} / grade T: {text.en}"
    return None


def hsts_min_age() -> int:
    """Seconds of HSTS max-age below which HSTS counts as short (and the TLS grade cannot be A+); grading.yaml."""
    return rubric().a_plus["hsts_min_age"]


def tls_grade(findings: Sequence[Finding], tls_assessed: bool, hsts_max_age: int | None) -> Grade:
    """The TLS grade of one portal from its TLS findings (and HSTS, for A+)."""
    rules = rubric()
    if not tls_assessed:
        return Grade()
    order = rules.tls_grades
    worst = order.index("A")
    reasons: list[str] = []
    tls_findings = [f for f in findings if f.check_id.startswith("tls.")]
    for finding in sorted(tls_findings, key=lambda f: f.check_id):
        cap = rules.caps.get(finding.check_id)
        if cap is not None:
            worst = max(worst, order.index(cap.cap))
            reasons.append(cap_reason(finding.check_id) or "")
    letter = order[worst]
    warnings = [f for f in tls_findings if f.severity.rank <= Severity.LOW.rank]
    if letter == "A" and not warnings and (hsts_max_age or 0) >= hsts_min_age():
        letter = "A+"
    trust = [cap_reason(f.check_id) or "" for f in tls_findings if f.check_id in rules.trust_caps]
    if trust:
        return Grade(tls_grade=TRUST_GRADE, grade_without_trust=letter, reasons=sorted(trust) + reasons)
    return Grade(tls_grade=letter, reasons=reasons)


def portal_score(grade: Grade, findings: Sequence[Finding], assessed: Sequence[str]) -> Grade:
    """Add the overall 0–100 score: weighted mean over the assessed collectors' categories.

    No score without a TLS grade: a portal whose TLS could not be assessed is not "100 minus nothing".
    """
    rules = rubric().score
    if grade.tls_grade is None:
        return grade
    scores: dict[str, int] = {}
    for collector in assessed:
        if collector == "tls":
            if grade.tls_grade is not None:
                scores["tls"] = rules.grade_points[grade.tls_grade]
            continue
        prefixes = check_prefixes(collector)
        penalty = sum(rules.severity_penalty[f.severity] for f in findings if f.check_id.startswith(prefixes))
        scores[collector] = max(0, 100 - penalty)
    total_weight = sum(rules.weights[c] for c in scores)
    score = round(sum(rules.weights[c] * s for c, s in scores.items()) / total_weight) if total_weight else None
    return grade.model_copy(update={"score": score, "category_scores": scores})


def annotate_evidence(findings: Sequence[Finding]) -> list[Finding]:
    """Findings whose check caps the grade get the rubric's reason appended to their evidence."""
    annotated = []
    for finding in findings:
        reason = cap_reason(finding.check_id)
        if reason and reason not in finding.evidence:
            finding = finding.model_copy(update={"evidence": f"{finding.evidence} — {reason}"})
        annotated.append(finding)
    return annotated
