"""Findings: query (filters, sort, cursor pages), look one up by a fingerprint prefix, triage."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime, timedelta

from soc.core.clock import start_of_day, today
from soc.core.collectors import COLLECTORS
from soc.core.models import FindingEvent, FindingStatus, Severity, StoredFinding
from soc.inventory import Inventory, normalise_portal_url
from soc.schemas.findings import FindingsOutput
from soc.services.context import ServiceContext, ServiceError
from soc.services.sla import apply_deadlines
from soc.store import FindingQuery, Page


def portal_key(portal: str) -> str:
    """A portal URL as the store keys it; ServiceError for one that is not a portal URL."""
    try:
        return normalise_portal_url(portal)
    except ValueError as exc:
        raise ServiceError(f"--portal {portal}: {exc}") from None


def query_findings(context: ServiceContext, query: FindingQuery) -> Page[StoredFinding]:
    """One page of findings (CursorError, a ValueError, for a cursor this store did not hand out)."""
    return context.backend.findings.query_findings(query)


def list_findings(context: ServiceContext, statuses: Sequence[FindingStatus] = (),
                  severities: Sequence[Severity] = (), check_ids: Sequence[str] = (),
                  portal: str | None = None) -> FindingsOutput:
    """Every finding matching the filters, worst first, as the `soc.findings` document."""
    query = FindingQuery(statuses=tuple(statuses), severities=tuple(severities), check_ids=tuple(check_ids),
                         portal_urls=(portal_key(portal),) if portal else ())
    return FindingsOutput(findings=query_findings(context, query).items)


def find_finding(context: ServiceContext, prefix: str) -> StoredFinding:
    """The one finding whose fingerprint starts with `prefix`; ServiceError when none or several do."""
    if not prefix:
        raise ServiceError("a finding id (or a unique prefix of one) is required")
    matches = context.backend.findings.query_findings(FindingQuery(fingerprint_prefix=prefix, limit=2)).items
    if len(matches) != 1:
        raise ServiceError(f"{prefix}: {'no finding' if not matches else 'several findings'} with this id")
    return matches[0]


MAX_COMMENT = 4000
MAX_RISK_DAYS = 366
"""A risk is accepted for at most about a year: then it must be looked at again."""
ALLOWED: dict[FindingStatus, frozenset[FindingStatus]] = {
    FindingStatus.OPEN: frozenset({FindingStatus.ACKNOWLEDGED, FindingStatus.FALSE_POSITIVE,
                                   FindingStatus.RISK_ACCEPTED, FindingStatus.RESOLVED}),
    FindingStatus.ACKNOWLEDGED: frozenset({FindingStatus.OPEN, FindingStatus.FALSE_POSITIVE,
                                           FindingStatus.RISK_ACCEPTED, FindingStatus.RESOLVED}),
    FindingStatus.FALSE_POSITIVE: frozenset({FindingStatus.OPEN}),
    FindingStatus.RISK_ACCEPTED: frozenset({FindingStatus.OPEN, FindingStatus.FALSE_POSITIVE}),
    FindingStatus.RESOLVED: frozenset({FindingStatus.OPEN}),
}
"""Status → the statuses a person may move a finding to (the scans move findings between open and resolved)."""
NEEDS_COMMENT = frozenset({FindingStatus.FALSE_POSITIVE, FindingStatus.RISK_ACCEPTED, FindingStatus.RESOLVED,
                           FindingStatus.OPEN})


def triage(context: ServiceContext, prefix: str, status: FindingStatus, note: str | None = None, *,
           expires: date | None = None, approver: str | None = None,
           inventory: Inventory | None = None) -> StoredFinding:
    """Move a finding by hand (acknowledge, false positive, accept a risk, resolve, open again), audited.

    Rules (ServiceError naming the one broken): the move must be allowed from the current status
    (`ALLOWED`); a false positive, a risk acceptance, a resolution and a reopening need a comment (the
    reason); a risk acceptance needs its approver and an expiry date after today and within a year (the
    finding reopens by itself when it passes); a finding is resolved by hand only when no collector can
    check it again (its portal left the inventory, or no collector speaks for its check, e.g. a drill's
    corrective action) — otherwise the next complete scan resolves it.
    """
    before = find_finding(context, prefix)
    note = (note or "").strip() or None
    if note is not None and len(note) > MAX_COMMENT:
        raise ServiceError(f"comment: at most {MAX_COMMENT} characters ({len(note)} given)")
    if status is before.status:
        raise ServiceError(f"finding {before.fingerprint[:12]} is already {status.value}")
    if status not in ALLOWED[before.status]:
        allowed = ", ".join(sorted(s.value for s in ALLOWED[before.status]))
        raise ServiceError(f"finding {before.fingerprint[:12]} is {before.status.value}: it can become {allowed}, "
                           f"not {status.value}")
    if status in NEEDS_COMMENT and note is None:
        raise ServiceError(f"{status.value}: a comment saying why is required")
    if (expires is not None or approver) and status is not FindingStatus.RISK_ACCEPTED:
        raise ServiceError("an expiry date and an approver are for risk_accepted only")
    risk_expires = None
    if status is FindingStatus.RISK_ACCEPTED:
        risk_expires = _risk_expiry(context, expires)
        approver = (approver or "").strip() or None
        if approver is None:
            raise ServiceError("risk_accepted: the approver (who accepts the risk) is required")
        if len(approver) > 200:
            raise ServiceError("approver: at most 200 characters")
    if status is FindingStatus.RESOLVED and (reason := _recheckable(context, before, inventory)) is not None:
        raise ServiceError(f"finding {before.fingerprint[:12]} cannot be resolved by hand: {reason}; it resolves "
                           "when the next complete check no longer sees it (or mark it false_positive)")
    after = context.backend.findings.set_status(before.fingerprint, status, context.actor, note,
                                                risk_expires=risk_expires, risk_approver=approver)
    extra = {} if risk_expires is None else {"expires": risk_expires.isoformat(), "approver": approver}
    context.audit("finding.triage", after.fingerprint,
                  before={"status": before.status.value, "note": before.status_note},
                  after={"status": after.status.value, "note": after.status_note, **extra}, note=note)
    if after.status is FindingStatus.OPEN and after.due_at is None:
        apply_deadlines(context, inventory)
        after = context.backend.findings.finding(after.fingerprint) or after
    return after


def _risk_expiry(context: ServiceContext, expires: date | None) -> datetime:
    today_ = today(context.clock)
    if expires is None:
        raise ServiceError("risk_accepted: an expiry date (YYYY-MM-DD) is required; the finding reopens then")
    if expires <= today_:
        raise ServiceError(f"expires {expires.isoformat()}: must be after today ({today_.isoformat()})")
    if expires > today_ + timedelta(days=MAX_RISK_DAYS):
        raise ServiceError(f"expires {expires.isoformat()}: at most {MAX_RISK_DAYS} days ahead; accept it again "
                           "then if the risk still stands")
    return start_of_day(expires).astimezone(UTC)


def _recheckable(context: ServiceContext, finding: StoredFinding, inventory: Inventory | None) -> str | None:
    """Why a collector will check this finding again (None: nothing will, a person may resolve it)."""
    speaker = next((kind for kind in COLLECTORS.values() if finding.check_id.startswith(kind.check_prefixes)), None)
    if speaker is None:
        return None
    if speaker.name == "compliance":
        return "the daily compliance evaluation checks it again"
    if speaker.name == "ops":
        return "the scheduler's health check checks it again"
    if inventory is not None and finding.portal_url not in {portal.url for portal in inventory.portals}:
        return None
    return f"the {speaker.name} collector checks {finding.portal_url} again at every scan"


def comment(context: ServiceContext, prefix: str, text: str) -> FindingEvent:
    """Add a comment to a finding's history, audited."""
    text = text.strip()
    if not text:
        raise ServiceError("comment: empty")
    if len(text) > MAX_COMMENT:
        raise ServiceError(f"comment: at most {MAX_COMMENT} characters ({len(text)} given)")
    found = find_finding(context, prefix)
    event = context.backend.findings.add_comment(found.fingerprint, context.actor, text)
    context.audit("finding.comment", found.fingerprint, note=text)
    return event


def assign(context: ServiceContext, prefix: str, agency: str | None, inventory: Inventory | None) -> StoredFinding:
    """Assign a finding to an agency of the inventory (None: back to its portal's owner), audited."""
    if agency is not None and inventory is not None and agency not in {a.id for a in inventory.agencies}:
        raise ServiceError(f"agency {agency!r}: not an agency of the inventory")
    before = find_finding(context, prefix)
    after = context.backend.findings.assign(before.fingerprint, agency, context.actor)
    context.audit("finding.assign", after.fingerprint, before={"assignee": before.assignee},
                  after={"assignee": after.assignee})
    return after


def expire_risk_acceptances(context: ServiceContext, inventory: Inventory | None = None) -> list[StoredFinding]:
    """Reopen the risk acceptances whose expiry has passed (each audited), and give them new deadlines."""
    reopened = context.backend.findings.expire_risk_acceptances(context.clock.now(), context.actor)
    for finding in reopened:
        context.audit("finding.risk_expired", finding.fingerprint, before={"status": "risk_accepted"},
                      after={"status": finding.status.value}, note=finding.status_note)
    if reopened:
        apply_deadlines(context, inventory)
    return reopened


def history(context: ServiceContext, prefix: str) -> list[FindingEvent]:
    """A finding's status history, oldest first."""
    return context.backend.findings.events(find_finding(context, prefix).fingerprint)


def owners(context: ServiceContext, inventory: Inventory | None,
           subjects: Collection[str] | None = None) -> dict[str, str]:
    """Subject (portal URL, `system:<id>`, `agency:<id>`) → the agency that owns it.

    With `subjects`, the answer is only meant for them: the register (which only adds `system:<id>`) is read
    only when one of them is a system — reading it costs ~15 ms for 500 systems, more than the rest of a page
    of findings.
    """
    owned: dict[str, str] = {}
    if inventory is not None:
        owned |= {portal.url: portal.agency for portal in inventory.portals}
        owned |= {f"system:{system.id}": system.agency for system in inventory.systems}
        owned |= {f"agency:{agency.id}": agency.id for agency in inventory.agencies}
    if subjects is None or any(subject.startswith("system:") for subject in subjects):
        for record in context.backend.register.systems_as_of(context.clock.now()):
            owned[f"system:{record.id}"] = record.agency
    return owned


def agency_of(finding: StoredFinding, owned: dict[str, str]) -> str | None:
    """The agency a finding is for: its assignee, else the owner of its subject."""
    return finding.assignee or owned.get(finding.portal_url)


def subjects_of(owned: dict[str, str], agencies: Sequence[str]) -> tuple[str, ...]:
    """Every subject owned by one of the agencies (ServiceError naming an agency that owns nothing known)."""
    wanted = set(agencies)
    unknown = sorted(wanted - set(owned.values()))
    if unknown:
        raise ServiceError(f"agency {', '.join(unknown)}: not an agency of the inventory or the register")
    return tuple(sorted(subject for subject, agency in owned.items() if agency in wanted))
