"""`soc compliance --json`: every target for the province and each agency on one date."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from soc.compliance.kpi import ComplianceReport, RulesetSummary, Scope
from soc.schemas.base import Document


class ComplianceOutput(Document):
    """The plan's KPIs on `as_of`."""

    schema_: Literal["soc.compliance/1"] = Field(default="soc.compliance/1", alias="schema")
    as_of: date
    known_at: datetime | None = None
    """Set when the figures are what the toolkit knew at that moment (--as-known-at), not what it knows now."""
    ruleset: RulesetSummary
    plan: str
    province: Scope
    agencies: list[Scope]

    @classmethod
    def of(cls, report: ComplianceReport) -> ComplianceOutput:
        """The public document of a compliance report."""
        return cls.model_validate(report.model_dump())
