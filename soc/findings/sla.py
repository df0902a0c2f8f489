"""The SLA clock: due dates from a matrix that is data (`sla.yaml`), by severity and security level.

A finding's deadline is fixed when it opens (or reopens): `due_at = opened_at + days(severity, level)`, and
`warn_at` starts its pre-breach share. Pure rules; the services give the level of the portal's system.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from soc.core.errors import InputError
from soc.core.models import FindingStatus, Severity, StoredFinding
from soc.core.safe_yaml import load_yaml

DEFAULT_MATRIX = Path(__file__).with_name("sla.yaml")
Group = Literal["high_level", "standard"]
CLOCK_RUNS = frozenset({FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED})
"""Statuses in which the SLA clock runs (false positives and accepted risks are out of it)."""


class SlaState(StrEnum):
    """Where a finding stands against its deadline."""

    WITHIN = "within"
    PRE_BREACH = "pre_breach"
    BREACHED = "breached"
    MET = "met"
    """Resolved before its deadline."""
    MISSED = "missed"
    """Resolved after its deadline."""
    NONE = "none"
    """No SLA: info severity, a false positive, an accepted risk, or a deadline not set yet."""


class SlaDays(BaseModel):
    """Days to mitigate for one severity (None: no SLA)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    high_level: int | None = Field(ge=1, le=3650)
    standard: int | None = Field(ge=1, le=3650)


class SlaMatrix(BaseModel):
    """The whole matrix (see sla.yaml for the reasoning of the default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    levels_high: int = Field(ge=1, le=5)
    unknown_level: Group
    pre_breach: float = Field(gt=0, lt=1)
    days: dict[Severity, SlaDays]

    @model_validator(mode="after")
    def _every_severity(self) -> SlaMatrix:
        missing = [severity.value for severity in Severity if severity not in self.days]
        if missing:
            raise ValueError(f"days: no entry for {', '.join(missing)}")
        return self

    def group(self, level: int | None) -> Group:
        """Which column a system of this level uses."""
        if level is None:
            return self.unknown_level
        return "high_level" if level >= self.levels_high else "standard"

    def window(self, severity: Severity, level: int | None) -> timedelta | None:
        """Time to mitigate a finding of this severity on a system of this level (None: no SLA)."""
        days = getattr(self.days[severity], self.group(level))
        return None if days is None else timedelta(days=days)

    def deadlines(self, severity: Severity, level: int | None, opened_at: datetime
                  ) -> tuple[datetime, datetime] | None:
        """(warn_at, due_at) of a finding opened at `opened_at`; None when its severity has no SLA."""
        window = self.window(severity, level)
        if window is None:
            return None
        return opened_at + window * (1 - self.pre_breach), opened_at + window


class SlaFileError(InputError):
    """An SLA matrix file that cannot be used; the message names the file and the field."""


def load_matrix(path: Path | None = None) -> SlaMatrix:
    """The matrix in `path` (default: the documented one)."""
    path = path or DEFAULT_MATRIX
    try:
        return SlaMatrix.model_validate(load_yaml(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise SlaFileError(f"{path}: cannot read the SLA matrix: {exc.strerror or exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise SlaFileError(f"{path}: {problems}") from None
    except yaml.YAMLError as exc:
        raise SlaFileError(f"{path}: not valid YAML: {exc}") from None


def sla_state(finding: StoredFinding, now: datetime) -> SlaState:
    """The SLA state of a stored finding at `now`."""
    if finding.due_at is None:
        return SlaState.NONE
    if finding.status is FindingStatus.RESOLVED:
        resolved = finding.resolved_at or now
        return SlaState.MET if resolved <= finding.due_at else SlaState.MISSED
    if finding.status not in CLOCK_RUNS:
        return SlaState.NONE
    if now > finding.due_at:
        return SlaState.BREACHED
    if finding.warn_at is not None and now >= finding.warn_at:
        return SlaState.PRE_BREACH
    return SlaState.WITHIN
