"""`soc scan --json`: the run, and every portal's assessment and findings (docs/json-output.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from soc.core.models import ScanRun, Severity
from soc.schemas.base import Document


class ScanFinding(BaseModel):
    """One finding of one portal in this run."""

    check_id: str
    severity: Severity
    title: str
    title_en: str
    evidence: str
    """From the server: untrusted text."""
    remediation: str
    remediation_en: str
    fingerprint: str
    change: Literal["new", "reopened", "still_open"]


class PortalChangeCounts(BaseModel):
    """What this scan changed for one portal (`new` counts reopened findings too)."""

    new: int
    still_open: int
    resolved: int


class PortalOutput(BaseModel):
    """One portal's assessment."""

    url: str
    host: str
    port: int
    address: str | None
    agency: str
    name: str | None
    reachable: bool | None
    """TLS answered (None when TLS was not scanned)."""
    complete: bool
    collectors: dict[str, bool]
    grade: str | None
    grade_without_trust: str | None
    grade_reasons: list[str]
    score: int | None
    category_scores: dict[str, int]
    protocols: dict[str, bool]
    errors: dict[str, Any]
    findings: list[ScanFinding]
    changes: PortalChangeCounts
    resolved: list[str]


class ScanChanges(BaseModel):
    """Changes against the store, over all portals."""

    new: int
    reopened: int
    still_open: int
    resolved: int


class ScanOutput(Document):
    """The whole scan."""

    schema_: Literal["soc.scan/1"] = Field(default="soc.scan/1", alias="schema")
    run: ScanRun
    collectors: list[str]
    changes: ScanChanges
    portals: list[PortalOutput]
