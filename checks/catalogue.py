"""Loads the check catalogue (catalogue.yaml): ids, severities and bilingual texts."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from soc.core.models import Finding, Severity
from soc.core.text import Text

CATALOGUE_PATH = Path(__file__).with_name("catalogue.yaml")


class CheckSpec(BaseModel):
    """One catalogue entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    severity: Severity
    title: Text
    risk: Text
    remediation: Text
    references: list[str] = Field(default_factory=list)


@cache
def catalogue() -> dict[str, CheckSpec]:
    """Every check, by id, in catalogue order."""
    raw = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    return {check_id: CheckSpec.model_validate({"id": check_id, **entry}) for check_id, entry in raw.items()}


def spec(check_id: str) -> CheckSpec:
    """The catalogue entry of a check id; KeyError names the unknown id."""
    try:
        return catalogue()[check_id]
    except KeyError:
        raise KeyError(f"check id {check_id!r} is not in {CATALOGUE_PATH.name}") from None


def make_finding(
    portal_url: str, check_id: str, evidence: str, detail: str = "", severity: Severity | None = None
) -> Finding:
    """A finding whose texts come from the catalogue; its severity too unless the check escalates it."""
    entry = spec(check_id)
    return Finding(
        portal_url=portal_url,
        check_id=check_id,
        severity=severity or entry.severity,
        title_vi=entry.title.vi,
        title_en=entry.title.en,
        evidence=evidence,
        remediation_vi=entry.remediation.vi,
        remediation_en=entry.remediation.en,
        detail=detail,
    )
