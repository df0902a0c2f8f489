"""Sign in, sign out, and the overview: the plan's targets, open findings, what the last scan changed, the
scheduler's health."""

from __future__ import annotations

from time import monotonic
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from soc.api.auth import LoginLimiter, api_state, new_csrf
from soc.core.clock import today
from soc.core.models import FindingStatus, Severity
from soc.inventory import Inventory
from soc.services import compliance as compliance_service
from soc.services.context import ServiceContext
from soc.services.users import AuthError, Permission, login
from soc.store import FindingQuery
from soc.web import i18n
from soc.web.auth import acting, check_form, ensure_csrf, safe_next
from soc.web.pages.compliance import sparklines
from soc.web.templating import render

router = APIRouter(include_in_schema=False)
OPS_CHECKS = ("ops.schedule_missed", "ops.job_failed", "ops.job_stuck", "ops.data_stale")


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    """The sign-in form."""
    ensure_csrf(request)
    return render(request, "login.html", None, next=safe_next(next), username="", problem=None)


@router.post("/login")
def sign_in(request: Request, username: Annotated[str, Form(max_length=64)],
            password: Annotated[str, Form(max_length=1024)], csrf_token: Annotated[str, Form(max_length=200)] = "",
            next: Annotated[str, Form(max_length=2000)] = "/") -> Response:
    """Check the password (rate-limited, lockout after repeated failures), start the session, go on."""
    check_form(request, csrf_token)
    limiter: LoginLimiter = request.app.state.login_limiter
    client = request.client.host if request.client else "unknown"
    if limiter.allow(client) is not None:
        return render(request, "login.html", None, status_code=429, next=safe_next(next), username=username,
                      problem="Too many sign-in attempts. Wait a minute and try again.")
    state = api_state(request)
    try:
        who = login(state.context(username[:64]), username, password)
    except AuthError:
        return render(request, "login.html", None, status_code=401, next=safe_next(next), username=username,
                      problem="Wrong user name or password, or the account is locked or disabled.")
    request.session.clear()
    request.session.update({"user": who.name, "csrf": new_csrf(), "at": state.clock.now().timestamp()})
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout")
def sign_out(request: Request, csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
    """End the session."""
    check_form(request, csrf_token)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/")
def overview(request: Request) -> Response:
    """What an operator looks at first every morning."""
    who, context = acting(request, Permission.READ)
    state = api_state(request)
    inventory = state.inventory()
    store = context.backend.findings
    report = compliance_service.kpis(context, inventory) if inventory is not None else None
    counts: dict[Severity, int] = dict.fromkeys(Severity, 0)
    for by_severity in store.open_counts_by_subject().values():
        for severity, count in by_severity.items():
            counts[severity] += count
    sla = report.province.sla if report is not None else None
    breaches = sla.breached_open if sla is not None and sla.breached_open is not None else None
    runs = store.list_runs(1, exclude=("ops", "compliance", "drills"))
    last_run = runs[0] if runs else None
    changes = store.run_change_counts(last_run.id) if last_run is not None else {}
    jobs = state.scheduler.job_infos() if state.scheduler is not None else []
    ops = len(store.query_findings(FindingQuery(check_ids=OPS_CHECKS, statuses=(FindingStatus.OPEN,),
                                                limit=1000)).items)
    return render(request, "overview.html" if report is not None else "overview_empty.html", who, report=report,
                  severities=[(severity.value, counts[severity]) for severity in Severity], breaches=breaches,
                  last_run=last_run, changes=changes, jobs=jobs, ops=ops,
                  trends=_trends(request, context, inventory) if inventory is not None else {})


TREND_SECONDS = 600
"""The overview's 12-month sparklines are kept this long: twelve month-end evaluations per page view would
cost the overview more than everything else on it, and a past month's figure rarely moves."""


def _trends(request: Request, context: ServiceContext, inventory: Inventory) -> dict[str, str]:
    cache: dict[tuple[str, str], tuple[float, dict[str, str]]] = request.app.state.__dict__.setdefault(
        "soc_trends", {})
    key = (today(context.clock).isoformat(), i18n.current())
    kept = cache.get(key)
    if kept is not None and monotonic() - kept[0] < TREND_SECONDS:
        return kept[1]
    lines = sparklines(context, inventory)
    cache.clear()
    cache[key] = (monotonic(), lines)
    return lines


