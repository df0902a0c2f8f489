"""The after-action report of an ended drill session, as HTML or as an A4 PDF."""

from __future__ import annotations

from pydantic import ValidationError

from drills.aar import TEMPLATES, AfterActionView, after_action_view, render_html
from drills.scoring import Scorecard
from soc.compliance.rules import RulesError, ruleset_for
from soc.core.clock import today
from soc.core.drill_records import SessionStatus
from soc.inventory import InventoryError, load_inventory
from soc.services.context import ServiceContext, ServiceError
from soc.services.drills import scenario_of, session_or_error

LANGUAGES = ("vi", "en")


def report_view(context: ServiceContext, session_id: str) -> AfterActionView:
    """What the report of an ended session shows; ServiceError when the session is unknown or still running."""
    session = session_or_error(context, session_id)
    if session.status is not SessionStatus.ENDED or session.scorecard is None:
        raise ServiceError(f"drill session {session_id} has not ended (status {session.status.value}): "
                           "its after-action report comes once it is scored")
    try:
        scorecard = Scorecard.model_validate(session.scorecard)
    except ValidationError as exc:
        raise ServiceError(f"drill session {session_id}: its stored scorecard cannot be read ({exc.error_count()} "
                           "problems); re-score it") from None
    try:
        rules = ruleset_for(session.drill_date)
    except RulesError as exc:
        raise ServiceError(str(exc)) from None
    names = _agency_names(context)
    actions = [a.model_copy(update={"owner_agency": f"{names[a.owner_agency]} ({a.owner_agency})"})
               if a.owner_agency in names else a for a in context.backend.drills.actions(session_id)]
    return after_action_view(session, scenario_of(session), scorecard, actions, rules, issued=today(context.clock))


def _agency_names(context: ServiceContext) -> dict[str, str]:
    """Agency id → name from the inventory of the settings (none set or unreadable: ids are shown)."""
    path = context.settings.inventory
    if path is None:
        return {}
    try:
        return {agency.id: agency.name for agency in load_inventory(path).agencies}
    except InventoryError:
        return {}


def _language(lang: str) -> str:
    if lang not in LANGUAGES:
        raise ServiceError(f"language {lang!r}: use one of {', '.join(LANGUAGES)}")
    return lang


def report_html(context: ServiceContext, session_id: str, lang: str = "vi") -> str:
    """The after-action report as one self-contained HTML page."""
    return render_html(report_view(context, session_id), _language(lang))


def report_pdf(context: ServiceContext, session_id: str, lang: str = "vi") -> bytes:
    """The after-action report as an A4 PDF (Noto fonts embedded; nothing fetched)."""
    from soc.documents import html_to_pdf  # WeasyPrint costs ~0.5 s to import: only when a PDF is made

    return html_to_pdf(report_html(context, session_id, lang), base_url=str(TEMPLATES))
