"""The information-system register and anti-malware coverage, as typed records."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Level = Annotated[int, Field(ge=1, le=5)]


class ApprovalStatus(StrEnum):
    """Where a system's security-level dossier stands."""

    NOT_STARTED = "not_started"
    DOSSIER_DRAFTED = "dossier_drafted"
    SUBMITTED = "submitted"
    UNDER_APPRAISAL = "under_appraisal"
    APPRAISED = "appraised"
    APPROVED = "approved"
    RETURNED = "returned"
    """Returned to the owner for revision (trả lại hồ sơ để hoàn thiện): the dossier goes round again."""
    REJECTED = "rejected"


class Environment(StrEnum):
    """Production, or a test system holding real data (which follows the same rules)."""

    PRODUCTION = "production"
    TEST_REAL_DATA = "test_real_data"


class RequirementStatus(StrEnum):
    """Whether a system meets the security requirements of its level."""

    MET = "met"
    PARTLY = "partly"
    NOT_MET = "not_met"


class ProtectionLayers(BaseModel):
    """The "4-layer" protection model of the national plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    on_site_team: bool = False
    """Lớp 1: on-site security team."""
    monitoring: bool = False
    """Lớp 2: professional monitoring/SOC."""
    inspection: bool = False
    """Lớp 3: independent inspection."""
    ncsc_connected: bool = False
    """Lớp 4: connected to the national monitoring centre (NCSC)."""


class SystemRecord(BaseModel):
    """One information system of the register (hệ thống thông tin) with its security-level approval."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(min_length=1, max_length=64)]
    name: Annotated[str, Field(min_length=1, max_length=300)]
    agency: str
    proposed_level: Level | None = None
    approved_level: Level | None = None
    status: ApprovalStatus = ApprovalStatus.NOT_STARTED
    decision_number: str | None = None
    decision_date: date | None = None
    approving_authority: str | None = None
    in_operation: bool = False
    environment: Environment = Environment.PRODUCTION
    handles_admin_procedures: bool = False
    """Serves administrative procedures (dịch vụ công) — level 3 or above under the 2026 rules."""
    requirements: RequirementStatus | None = None
    requirements_assessed: date | None = None
    next_reassessment: date | None = None
    legal_basis: str | None = None
    """Id of the rule set the level was approved under (e.g. 'nd85-2016'); recorded, never inferred later."""
    layers: ProtectionLayers = Field(default_factory=ProtectionLayers)


class CoverageRecord(BaseModel):
    """Anti-malware coverage of one agency's computers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agency: str
    total_computers: Annotated[int, Field(ge=0)]
    protected: Annotated[int, Field(ge=0)]
    """Computers with anti-malware installed."""
    reporting_to_ncsc: Annotated[int, Field(ge=0)]
    """Of those, computers whose anti-malware shares data with the national centre (NCSC)."""
    as_of: date | None = None


def approved_on(record: SystemRecord, day: date) -> bool:
    """The system's security level stood approved on `day`: status approved, a level, decided by then."""
    return (record.status is ApprovalStatus.APPROVED and record.approved_level is not None
            and (record.decision_date is None or record.decision_date <= day))
