"""Findings triage: the filtered list (its URL is the saved filter), bulk triage of the rows ticked, and one
finding with its evidence, risk, remediation, SLA, history and the forms to move, assign and comment on it.

Every change goes through `soc.services.findings` (the same rules and audit as the API and the CLI): a bulk
action is that service called once per finding, so one finding refused (already acknowledged, say) never
stops the others, and the page says which were done and which were refused, and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import QueryParams

from checks.catalogue import catalogue, spec
from soc.api.auth import api_state
from soc.core.clock import local_date, today
from soc.core.errors import InputError
from soc.core.models import AuditEntry, FindingEvent, FindingStatus, Severity, StoredFinding
from soc.findings.sla import SlaState, sla_state
from soc.inventory import Inventory
from soc.services import findings as service
from soc.services.audit import audit_entries
from soc.services.context import ServiceContext, ServiceError
from soc.services.users import Permission, Principal
from soc.store import FindingSort, Page
from soc.web.auth import acting, check_form
from soc.web.pages.findings_query import FIRST_DAY, LAST_DAY, ListView, read_view
from soc.web.templating import language_of, render
from soc.web.words import N_

router = APIRouter(include_in_schema=False)
PAGE = 50
"""Findings per page; also the most a bulk action takes (one page of ticked rows)."""
EXCERPT = 140
"""Characters of evidence shown in a row of the list (the whole evidence is on the finding's page)."""
FLASH = "findings_bulk"
"""Session key of a bulk action's outcome, shown once by the list it redirects to."""
MAX_REASONS = 5
BULK_STATUS = {"acknowledge": FindingStatus.ACKNOWLEDGED, "risk_accepted": FindingStatus.RISK_ACCEPTED,
               "false_positive": FindingStatus.FALSE_POSITIVE}
BULK_ACTIONS = (*BULK_STATUS, "assign")
ACTION_LABELS = {"acknowledge": N_("Acknowledge"), "risk_accepted": N_("Accept the risk (with expiry)"),
                 "false_positive": N_("Mark as false positive"), "assign": N_("Assign to an agency")}
SORT_LABELS = {FindingSort.SEVERITY.value: N_("Worst first"), FindingSort.FIRST_SEEN.value: N_("Newest first"),
               FindingSort.LAST_SEEN.value: N_("Most recently seen first")}
OWNER = "-"
"""The bulk form's agency value for "back to the portal's owner" (an empty choice is a mistake, not this)."""
FINGERPRINT = re.compile(r"^[0-9a-f]{6,32}$")
ASSIGNED = re.compile(r"^assigned to (?P<agency>\S+)$")
"""How the store writes an assignment in a finding's history (`FindingStore.assign`)."""
ALREADY = re.compile(r"finding \S+ is already (?P<status>" + "|".join(status.value for status in FindingStatus) + ")")
"""The service's refusal of a move to the status a finding already has."""
NOTICES = ("moved", "commented", "assigned")
PAGE_WORDS = (N_("No finding with this id."), N_("Bulk action"))
"""Messages the templates get from here as values (marked for the catalogues)."""
AUDIT_SLACK = timedelta(seconds=5)


@dataclass(frozen=True)
class Row:
    """One finding as a row of the list."""

    finding: StoredFinding
    sla: SlaState
    agency: str | None
    excerpt: str

    @property
    def risk_until(self) -> date | None:
        """The local day an accepted risk ends (None: not an accepted risk)."""
        expires = self.finding.risk_expires
        return local_date(expires) if expires and self.finding.status is FindingStatus.RISK_ACCEPTED else None


@dataclass(frozen=True)
class BulkForm:
    """What the bulk form was sent with (shown back when nothing could be done)."""

    action: str = ""
    selected: tuple[str, ...] = ()
    comment: str = ""
    agency: str = ""
    approver: str = ""
    expires: str = ""


@dataclass
class Outcome:
    """A bulk action's result: the findings done, and those refused grouped by the reason given."""

    action: str
    done: list[str] = field(default_factory=list)
    refused: dict[str, list[str]] = field(default_factory=dict)

    def refuse(self, fingerprint: str, reason: str) -> None:
        """Keep a refusal under its reason: the service's message without the finding's id, or `already
        <status>` for the commonest one (the page says it in the reader's language)."""
        if (already := ALREADY.fullmatch(reason)) is not None:
            general = f"already {already['status']}"
        else:
            general = re.sub(r"\s+", " ", reason.replace(fingerprint, "").replace(fingerprint[:12], "")).strip(" :")
        self.refused.setdefault(general[:200], []).append(fingerprint)

    def flash(self) -> dict[str, Any]:
        """A small record for the session cookie (short ids; at most MAX_REASONS reasons)."""
        reasons = list(self.refused.items())[:MAX_REASONS]
        return {"action": self.action, "done": [fp[:12] for fp in self.done],
                "refused": [[reason, [fp[:12] for fp in fps]] for reason, fps in reasons],
                "more": sum(len(fps) for _, fps in list(self.refused.items())[MAX_REASONS:])}


def _inventory(request: Request) -> tuple[Inventory | None, str | None]:
    """The inventory, or why it cannot be read (the page still shows the findings)."""
    try:
        return api_state(request).inventory(), None
    except InputError as exc:
        return None, str(exc)


def _agencies(inventory: Inventory | None, language: str) -> list[tuple[str, str]]:
    if inventory is None:
        return []
    return [(a.id, a.name if language == "vi" or not a.name_en else a.name_en) for a in inventory.agencies]


def _excerpt(evidence: str) -> str:
    """The start of the evidence: its first line, at most EXCERPT characters ("…" when there is more)."""
    text = evidence.strip()
    first = text.split("\n", 1)[0]
    return first if first == text and len(first) <= EXCERPT else first[:EXCERPT] + "…"


def _list(request: Request, who: Principal, context: ServiceContext, view: ListView, *,
          form: BulkForm | None = None, problems: tuple[str, ...] = (), outcome: dict[str, Any] | None = None,
          status_code: int = 200) -> Response:
    inventory, trouble = _inventory(request)
    shown = [*view.problems, *([trouble] if trouble else []), *problems]
    now = context.clock.now()
    page: Page[StoredFinding] = Page(items=[])
    owned: dict[str, str] | None = None
    if not view.problems:
        try:
            filters = view.filters()
            owned = service.owners(context, inventory) if filters.agency else None
            page = service.query_findings(context, filters.query(owned or {}, now, view.sort, PAGE, view.cursor))
        except InputError as exc:  # an unknown agency, a cursor of another list
            shown.append(str(exc))
    if owned is None:
        owned = service.owners(context, inventory, subjects={finding.portal_url for finding in page.items})
    rows = [Row(finding, sla_state(finding, now), service.agency_of(finding, owned), _excerpt(finding.evidence))
            for finding in page.items]
    start = (view.page - 1) * PAGE + 1
    language = language_of(request)
    return render(request, "findings.html", who, status_code=status_code, view=view, rows=rows,
                  problems=shown, outcome=outcome, form=form or BulkForm(), agencies=_agencies(inventory, language),
                  check_ids=list(catalogue()), severities=[s.value for s in Severity],
                  statuses=[s.value for s in FindingStatus], sla_states=[s.value for s in SlaState],
                  sorts=[s.value for s in FindingSort], start=start, end=start + len(rows) - 1,
                  next_url=view.url(page.next_cursor, view.page + 1) if page.next_cursor else None,
                  first_day=FIRST_DAY.isoformat(), last_day=LAST_DAY.isoformat(), owner=OWNER,
                  actions=BULK_ACTIONS, action_labels=ACTION_LABELS, sort_labels=SORT_LABELS,
                  expiry_range=_expiry_range(context))


def _expiry_range(context: ServiceContext) -> tuple[str, str]:
    """The days a risk acceptance may end (the service's rule: after today, within MAX_RISK_DAYS)."""
    now = today(context.clock)
    return ((now + timedelta(days=1)).isoformat(), (now + timedelta(days=service.MAX_RISK_DAYS)).isoformat())


@router.get("/findings")
def findings_list(request: Request) -> Response:
    """The findings matching the filters of the query string, a page of PAGE at a time."""
    who, context = acting(request, Permission.READ)
    view = read_view(request.query_params)
    asked = request.url.query
    if asked and not view.problems and not {"lang", "notice"} & set(request.query_params) and view.query() != asked:
        # The filter form sends its empty fields too: the address to bookmark is the short one.
        return RedirectResponse(view.here(), status_code=303)
    outcome = request.session.pop(FLASH, None) if request.query_params.get("notice") == "bulk" else None
    return _list(request, who, context, view, outcome=outcome if isinstance(outcome, dict) else None)


def _day(value: str, name: str) -> date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ServiceError(f"{name}: {value[:40]!r} is not a date (YYYY-MM-DD)") from None


def _bulk_problem(form: BulkForm) -> str | None:
    """What makes the whole form unusable (what only some findings break is the service's to say)."""
    if form.action not in BULK_ACTIONS:
        return "action: choose what to do with the findings ticked"
    if not form.selected:
        return "no finding ticked: tick the findings to act on in the first column"
    if len(form.selected) > PAGE:
        return f"at most {PAGE} findings at a time ({len(form.selected)} ticked)"
    if any(not FINGERPRINT.fullmatch(fp) for fp in form.selected):
        return "a ticked finding has an id that is not a finding's"
    if form.action == "assign" and not form.agency:
        return "agency: choose the agency to assign the findings to"
    return None


def _apply(context: ServiceContext, form: BulkForm, inventory: Inventory | None) -> Outcome:
    outcome = Outcome(form.action)
    expires = _day(form.expires, "expires")
    status = BULK_STATUS.get(form.action)
    for fingerprint in form.selected:
        try:
            if status is None:
                service.assign(context, fingerprint, None if form.agency == OWNER else form.agency, inventory)
            else:
                service.triage(context, fingerprint, status, form.comment, expires=expires,
                               approver=form.approver or None, inventory=inventory)
        except ServiceError as exc:
            outcome.refuse(fingerprint, str(exc))
        else:
            outcome.done.append(fingerprint)
    return outcome


@router.post("/findings/bulk")
def bulk(request: Request, csrf_token: Annotated[str, Form(max_length=200)] = "",
         action: Annotated[str, Form(max_length=32)] = "",
         fingerprint: Annotated[list[str] | None, Form()] = None,
         comment: Annotated[str, Form(max_length=20_000)] = "",
         agency: Annotated[str, Form(max_length=64)] = "",
         approver: Annotated[str, Form(max_length=1000)] = "",
         expires: Annotated[str, Form(max_length=40)] = "",
         back: Annotated[str, Form(max_length=8000)] = "") -> Response:
    """Acknowledge, assign, accept the risk of or mark false positive every finding ticked, one by one."""
    check_form(request, csrf_token)
    who, context = acting(request, Permission.TRIAGE)
    view = read_view(QueryParams(back))
    form = BulkForm(action=action, selected=tuple(dict.fromkeys(fp.strip() for fp in fingerprint or () if fp.strip())),
                    comment=comment, agency=agency, approver=approver, expires=expires)
    problem = _bulk_problem(form)
    inventory, _ = _inventory(request)
    if problem is None:
        try:
            outcome = _apply(context, form, inventory)
        except ServiceError as exc:
            problem = str(exc)
    if problem is not None:
        return _list(request, who, context, view, form=form, problems=(problem,), status_code=400)
    if not outcome.done:  # nothing changed: the form stays as filled in, with every reason
        return _list(request, who, context, view, form=form, outcome=outcome.flash(), status_code=400)
    request.session[FLASH] = outcome.flash()
    return RedirectResponse(view.here(notice="bulk"), status_code=303)


def _found(context: ServiceContext, fingerprint: str) -> StoredFinding | None:
    """The finding of a fingerprint, or of a unique prefix of one (the short ids the list's notices show)."""
    if not FINGERPRINT.fullmatch(fingerprint):
        return None
    try:
        return service.find_finding(context, fingerprint)
    except ServiceError:
        return None


def _not_found(request: Request, who: Principal) -> Response:
    return render(request, "error.html", who, status_code=404, title="Not found",
                  message="No finding with this id.")


@dataclass(frozen=True)
class Entry:
    """One line of a finding's history: what kind of event, and the event."""

    kind: str
    """'scan' (seen, reopened or resolved by a run), 'status', 'assign', 'unassign' or 'comment'."""
    event: FindingEvent
    agency: str | None = None
    risk_until: date | None = None
    approver: str | None = None
    """A risk acceptance's expiry and approver (kept by the audit log, not by the event)."""


def _entry(event: FindingEvent, acceptances: list[AuditEntry]) -> Entry:
    if event.run_id is not None:
        return Entry("scan", event)
    if event.old_status is not event.new_status:
        if event.new_status is FindingStatus.RISK_ACCEPTED and (audit := _audit_of(event, acceptances)):
            return Entry("status", event, risk_until=_local_day(audit.after), approver=_text(audit.after, "approver"))
        return Entry("status", event)
    note = event.note or ""
    if (match := ASSIGNED.fullmatch(note)) is not None:
        return Entry("assign", event, match["agency"])
    return Entry("unassign" if note == "assignment cleared" else "comment", event)


def _audit_of(event: FindingEvent, acceptances: list[AuditEntry]) -> AuditEntry | None:
    """The audit entry of a risk acceptance event: same actor, within seconds (taken from the list once used)."""
    for audit in acceptances:
        if audit.actor == event.actor and abs(audit.at - event.at) <= AUDIT_SLACK:
            acceptances.remove(audit)
            return audit
    return None


def _text(values: dict[str, Any] | None, key: str) -> str | None:
    value = (values or {}).get(key)
    return value if isinstance(value, str) else None


def _local_day(values: dict[str, Any] | None) -> date | None:
    try:
        return local_date(datetime.fromisoformat(_text(values, "expires") or ""))
    except ValueError:
        return None


def _detail(request: Request, who: Principal, context: ServiceContext, finding: StoredFinding, *,
            problem: str | None = None, problem_form: str | None = None, values: dict[str, str] | None = None,
            status_code: int = 200) -> Response:
    inventory, trouble = _inventory(request)
    owned = service.owners(context, inventory, subjects={finding.portal_url})
    try:
        entry = spec(finding.check_id)
    except KeyError:
        entry = None
    acceptances = [audit for audit in reversed(audit_entries(context, "finding.triage", finding.fingerprint, 1000))
                   if (audit.after or {}).get("status") == FindingStatus.RISK_ACCEPTED.value]
    notice = request.query_params.get("notice")
    language = language_of(request)
    return render(request, "finding.html", who, status_code=status_code, f=finding,
                  sla=sla_state(finding, context.clock.now()), agency=service.agency_of(finding, owned),
                  owner=owned.get(finding.portal_url), spec=entry,
                  history=[_entry(event, acceptances) for event in service.history(context, finding.fingerprint)],
                  moves=sorted(s.value for s in service.ALLOWED[finding.status]),
                  risk_day=local_date(finding.risk_expires) if finding.risk_expires else None,
                  agencies=_agencies(inventory, language), problem=problem, problem_form=problem_form,
                  trouble=trouble, values=values or {}, notice=notice if notice in NOTICES else None,
                  expiry_range=_expiry_range(context))


@router.get("/findings/{fingerprint}")
def finding_page(request: Request, fingerprint: str) -> Response:
    """One finding: evidence, risk, remediation, SLA, risk acceptance, history, and the triage forms."""
    who, context = acting(request, Permission.READ)
    found = _found(context, fingerprint)
    return _not_found(request, who) if found is None else _detail(request, who, context, found)


def _status(value: str) -> FindingStatus:
    try:
        return FindingStatus(value)
    except ValueError:
        raise ServiceError(f"status: {value[:40]!r} is not a status; choose one from the list") from None


@router.post("/findings/{fingerprint}/transition")
def transition(request: Request, fingerprint: str, csrf_token: Annotated[str, Form(max_length=200)] = "",
               status: Annotated[str, Form(max_length=32)] = "",
               comment: Annotated[str, Form(max_length=20_000)] = "",
               approver: Annotated[str, Form(max_length=1000)] = "",
               expires: Annotated[str, Form(max_length=40)] = "") -> Response:
    """Move the finding to another status (the service's rules), audited."""
    check_form(request, csrf_token)
    who, context = acting(request, Permission.TRIAGE)
    found = _found(context, fingerprint)
    if found is None:
        return _not_found(request, who)
    try:
        service.triage(context, found.fingerprint, _status(status), comment, expires=_day(expires, "expires"),
                       approver=approver or None, inventory=_inventory(request)[0])
    except ServiceError as exc:
        return _detail(request, who, context, found, problem=str(exc), problem_form="transition", status_code=400,
                       values={"status": status, "comment": comment, "approver": approver, "expires": expires})
    return RedirectResponse(f"/findings/{found.fingerprint}?notice=moved", status_code=303)


@router.post("/findings/{fingerprint}/comment")
def add_comment(request: Request, fingerprint: str, csrf_token: Annotated[str, Form(max_length=200)] = "",
                comment: Annotated[str, Form(max_length=20_000)] = "") -> Response:
    """Add a comment to the finding's history, audited."""
    check_form(request, csrf_token)
    who, context = acting(request, Permission.TRIAGE)
    found = _found(context, fingerprint)
    if found is None:
        return _not_found(request, who)
    try:
        service.comment(context, found.fingerprint, comment)
    except ServiceError as exc:
        return _detail(request, who, context, found, problem=str(exc), problem_form="comment", status_code=400,
                       values={"note": comment})
    return RedirectResponse(f"/findings/{found.fingerprint}?notice=commented", status_code=303)


@router.post("/findings/{fingerprint}/assign")
def assign(request: Request, fingerprint: str, csrf_token: Annotated[str, Form(max_length=200)] = "",
           agency: Annotated[str, Form(max_length=64)] = "") -> Response:
    """Assign the finding to an agency of the inventory (empty: back to its portal's owner), audited."""
    check_form(request, csrf_token)
    who, context = acting(request, Permission.TRIAGE)
    found = _found(context, fingerprint)
    if found is None:
        return _not_found(request, who)
    try:
        service.assign(context, found.fingerprint, agency.strip() or None, _inventory(request)[0])
    except ServiceError as exc:
        return _detail(request, who, context, found, problem=str(exc), problem_form="assign", status_code=400,
                       values={"agency": agency})
    return RedirectResponse(f"/findings/{found.fingerprint}?notice=assigned", status_code=303)
