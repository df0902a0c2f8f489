"""`soc findings --json` and `soc diff --json`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from soc.core.models import StoredFinding
from soc.schemas.base import Document


class FindingsOutput(Document):
    """Stored findings with their lifecycle, worst first."""

    schema_: Literal["soc.findings/1"] = Field(default="soc.findings/1", alias="schema")
    findings: list[StoredFinding]


class DiffCounts(BaseModel):
    """How many findings are in each list of a diff."""

    new: int
    still_open: int
    resolved: int


class DiffOutput(Document):
    """Findings of run B compared with run A (the portals B did not scan are left out of `resolved`)."""

    schema_: Literal["soc.diff/1"] = Field(default="soc.diff/1", alias="schema")
    run_a: str
    run_b: str
    new: list[StoredFinding] = Field(default_factory=list)
    still_open: list[StoredFinding] = Field(default_factory=list)
    resolved: list[StoredFinding] = Field(default_factory=list)
    counts: DiffCounts
