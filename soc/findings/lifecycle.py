"""The finding lifecycle as pure rules, shared by every store backend.

open ──(triage)──► acknowledged / false positive / risk accepted / resolved
  ▲                       │ (a complete observation of the same collector no longer sees it)
  └── reopened ◄── resolved ◄─┘  (false positives are never auto-resolved; nor is a check the
                                   observation says it could not judge, see `unjudged_checks`)

A backend asks these functions what to do and only carries it out, so SQLite and the search backend
can never disagree on when a finding opens, stays open, reopens or resolves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from soc.core.collectors import check_prefixes
from soc.core.models import Finding, FindingStatus, Observation

SCAN_ACTOR = "scan"
"""Actor recorded on lifecycle events made by a scan (opened, reopened, auto-resolved)."""
AUTO_RESOLVABLE = frozenset({FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED, FindingStatus.RISK_ACCEPTED})
"""Statuses a complete observation may resolve (a false positive stays one)."""
OPENED_NOTE, REOPENED_NOTE, RESOLVED_NOTE = "opened", "reopened", "not seen by a complete scan"


class Sighting(StrEnum):
    """What seeing a finding in a scan does to it."""

    NEW = "new"
    """Never seen: it opens."""
    REOPENED = "reopened"
    """Was resolved: it opens again."""
    STILL_OPEN = "still_open"
    """Known and not resolved: its content is refreshed, its status kept (triage stands)."""


def sighting(current: FindingStatus | None) -> Sighting:
    """The transition of a finding seen now, given its stored status (None: unknown to the store)."""
    if current is None:
        return Sighting.NEW
    if current is FindingStatus.RESOLVED:
        return Sighting.REOPENED
    return Sighting.STILL_OPEN


@dataclass
class SightingPlan:
    """Every finding seen for one portal, sorted by what happens to it."""

    new: list[Finding] = field(default_factory=list)
    reopened: list[Finding] = field(default_factory=list)
    still_open: list[Finding] = field(default_factory=list)


def plan_sightings(seen: Iterable[Finding], known: Mapping[str, FindingStatus]) -> SightingPlan:
    """Sort the findings seen by their transition (`known`: stored status by fingerprint)."""
    plan = SightingPlan()
    for finding in seen:
        getattr(plan, sighting(known.get(finding.fingerprint)).value).append(finding)
    return plan


def resolving_prefixes(observations: Sequence[Observation]) -> tuple[str, ...]:
    """Check-id prefixes whose unseen findings may be resolved: those of each complete observation's collector.

    ValueError names an unknown collector (a typo must not silently resolve nothing, or everything).
    """
    prefixes = {prefix for o in observations for prefix in check_prefixes(o.collector) if o.complete}
    return tuple(sorted(prefixes))


def unjudged_checks(observations: Sequence[Observation]) -> tuple[str, ...]:
    """Check ids (or '.'-ending prefixes) some observation could not judge: their unseen findings stay as they are.

    A complete observation may still miss one answer that is not its collector's whole verdict (the TLS
    collector reached the portal but not its certificate's revocation responder): that check resolves nothing.
    """
    return tuple(sorted({entry for o in observations for entry in o.unjudged}))


def _names(check_id: str, entry: str) -> bool:
    return check_id == entry or (entry.endswith(".") and check_id.startswith(entry))


def resolves(check_id: str, status: FindingStatus, prefixes: Sequence[str], unjudged: Sequence[str] = ()) -> bool:
    """A stored finding not seen now is resolved: its check is spoken for, judged, and its status allows it."""
    return (status in AUTO_RESOLVABLE and check_id.startswith(tuple(prefixes))
            and not any(_names(check_id, entry) for entry in unjudged))


def check_portal(portal_url: str, observations: Sequence[Observation], findings: Sequence[Finding]) -> None:
    """Refuse input that belongs to another portal or carries naive datetimes (ValueError)."""
    foreign = {item.portal_url for item in observations} | {item.portal_url for item in findings}
    foreign.discard(portal_url)
    if foreign:
        raise ValueError(f"observations or findings of {sorted(foreign)} passed for portal {portal_url!r}")
    for observation in observations:
        if observation.observed_at.utcoffset() is None:
            raise ValueError(f"observation {observation.collector!r} has a naive observed_at")
    resolving_prefixes(observations)  # an unknown collector is refused before anything is written
    for observation in observations:
        own = check_prefixes(observation.collector)
        foreign_checks = [entry for entry in observation.unjudged if not entry.startswith(own)]
        if foreign_checks:
            raise ValueError(f"observation {observation.collector!r} leaves {foreign_checks} unjudged: "
                             f"not its checks ({', '.join(own)})")
