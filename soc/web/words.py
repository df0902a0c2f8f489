"""Words the templates translate from data (roles, statuses, severities, outcomes, page messages): listed here
so that message extraction (`pybabel extract`, babel.cfg) finds them."""

from __future__ import annotations


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated where it is shown."""
    return message


WORDS = (
    N_("admin"), N_("operator"), N_("incident"), N_("viewer"),
    N_("critical"), N_("high"), N_("medium"), N_("low"), N_("info"),
    N_("open"), N_("acknowledged"), N_("resolved"), N_("false_positive"), N_("risk_accepted"),
    N_("met"), N_("not_met"), N_("no_data"),
    N_("within"), N_("pre_breach"), N_("breached"), N_("missed"), N_("none"),
    N_("running"), N_("success"), N_("failed"), N_("skipped"), N_("complete"), N_("incomplete"),
    N_("Forbidden"), N_("Not found"),
    N_("This form has expired or was not sent from this site. Reload the page and try again."),
    N_("Your role does not allow this."),
    N_("Too many sign-in attempts. Wait a minute and try again."),
    N_("Wrong user name or password, or the account is locked or disabled."),
)
