"""The SLA clock: which security level owns each finding, deadlines set when findings open, SLA figures.

The level of a finding is that of the information system owning its portal (the inventory's
`portals[].system`; the register's approved level, else the proposed one, else the inventory's level) or,
for a compliance finding about a system, that system's. Deadlines are set once, when a finding opens or
reopens (`due_at`, `warn_at`), so a later change of the matrix or of a level never moves a past deadline.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path

from pydantic import BaseModel

from soc.compliance.kpi import SlaFigures
from soc.core.clock import end_of_day, today
from soc.core.models import Severity, StoredFinding
from soc.findings.sla import SlaMatrix, SlaState, load_matrix, sla_state
from soc.inventory import Inventory
from soc.services.context import ServiceContext

SYSTEM_PREFIX, AGENCY_PREFIX = "system:", "agency:"


@cache
def _matrix(path: Path | None) -> SlaMatrix:
    return load_matrix(path)


def matrix(context: ServiceContext) -> SlaMatrix:
    """The SLA matrix in force (SOC_SLA_FILE, else the documented default); SlaFileError when unusable."""
    return _matrix(context.settings.sla_file)


def system_levels(context: ServiceContext, inventory: Inventory | None) -> dict[str, int]:
    """System id → its security level, from the register as known now, then the inventory."""
    levels: dict[str, int] = {}
    if inventory is not None:
        levels |= {system.id: system.level for system in inventory.systems if system.level is not None}
    for record in context.backend.register.systems_as_of(context.clock.now()):
        level = record.approved_level or record.proposed_level
        if level is not None:
            levels[record.id] = int(level)
    return levels


def subject_levels(context: ServiceContext, inventory: Inventory | None) -> dict[str, int]:
    """Portal URL or `system:<id>` subject → the security level that sets its findings' deadlines."""
    levels = system_levels(context, inventory)
    subjects = {f"{SYSTEM_PREFIX}{system_id}": level for system_id, level in levels.items()}
    if inventory is not None:
        for portal in inventory.portals:
            if portal.system is not None and portal.system in levels:
                subjects[portal.url] = levels[portal.system]
    return subjects


def apply_deadlines(context: ServiceContext, inventory: Inventory | None) -> int:
    """Give every open finding that has none its deadline (from its open period's start); return how many."""
    table = matrix(context)
    severities = [severity for severity in Severity
                  if table.window(severity, 1) is not None or table.window(severity, 5) is not None]
    pending = context.backend.findings.without_deadline(severities)
    if not pending:
        return 0
    levels = subject_levels(context, inventory)
    deadlines = {}
    for finding in pending:
        start = finding.opened_at or finding.first_seen
        window = table.deadlines(finding.severity, levels.get(finding.portal_url), start)
        if window is not None:
            deadlines[finding.fingerprint] = window
    return context.backend.findings.set_deadlines(deadlines) if deadlines else 0


class SlaCounts(BaseModel):
    """SLA figures of a set of findings at one moment."""

    within: int = 0
    pre_breach: int = 0
    breached: int = 0
    met: int = 0
    """Resolved within their deadline."""
    missed: int = 0
    """Resolved after it."""

    @property
    def closed_within_rate(self) -> float | None:
        """Share of the findings closed that were closed within their SLA (None: none closed yet)."""
        closed = self.met + self.missed
        return None if closed == 0 else self.met / closed


def sla_counts(findings: list[StoredFinding], now: datetime) -> SlaCounts:
    """Count findings by SLA state (findings without an SLA are not counted)."""
    counts = Counter(sla_state(finding, now) for finding in findings)
    counts.pop(SlaState.NONE, None)
    return SlaCounts(**{state.value: number for state, number in counts.items()})



SLA_WINDOW = timedelta(days=30)
"""Findings resolved in this window up to the date count in "closed within SLA"."""


def sla_figures(context: ServiceContext, inventory: Inventory | None, day: date,
                owned: dict[str, str]) -> tuple[SlaFigures, dict[str, SlaFigures]]:
    """The province's and each agency's "closed within SLA" figures on `day` (`owned`: subject → agency).

    Counted by the store in one query; a finding counts for its assignee, else its subject's owner.
    """
    moment = end_of_day(day)
    is_today = day == today(context.clock)
    tallies = context.backend.findings.sla_tally(moment - SLA_WINDOW, moment, context.clock.now())
    totals: dict[str | None, list[int]] = {}
    for tally in tallies:
        agency = tally.assignee or owned.get(tally.subject)
        for key in (agency, PROVINCE_KEY):
            counts = totals.setdefault(key, [0, 0, 0])
            counts[0] += tally.met
            counts[1] += tally.missed
            counts[2] += tally.breached

    def figures(counts: list[int]) -> SlaFigures:
        within, after, late = counts
        percent = None if within + after == 0 else round(100 * within / (within + after), 1)
        return SlaFigures(closed_within=within, closed_after=after, percent=percent,
                          breached_open=late if is_today else None)

    province = figures(totals.pop(PROVINCE_KEY, [0, 0, 0]))
    totals.pop(None, None)
    return province, {agency: figures(counts) for agency, counts in totals.items() if agency is not None}


PROVINCE_KEY = "\x00province"
"""Key of the province's running totals (no agency id can be it)."""
