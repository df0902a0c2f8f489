"""The findings list's URL: what the filter form sends becomes a short address that reads back as the same
view, and every bad value is a problem naming its field (the page shows it beside the form)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from starlette.datastructures import QueryParams

from soc.core.clock import LOCAL_ZONE
from soc.core.models import FindingStatus, Severity
from soc.findings.sla import SlaState
from soc.store import FindingSort
from soc.web.pages.findings_query import read_view


def test_a_filled_form_reads_as_a_short_address_that_reads_back_the_same() -> None:
    sent = QueryParams("agency=stp&agency=&portal=https%3A%2F%2Fstp.dongnai.gov.vn%2F+https%3A%2F%2Fa.vn%2F%3Fx%3D1%2C2"
                       "&check=tls.cert.expired%2C+tls.protocol.tls10&severity=low&severity=critical&status=open"
                       "&sla=breached&first_seen_from=2026-11-01&first_seen_until=&sort=first_seen&lang=en")
    view = read_view(sent)
    assert view.problems == ()
    assert view.portal == ("https://stp.dongnai.gov.vn/", "https://a.vn/?x=1,2")  # a comma stays in its URL
    assert view.check == ("tls.cert.expired", "tls.protocol.tls10")
    assert view.severity == (Severity.CRITICAL, Severity.LOW) and view.status == (FindingStatus.OPEN,)
    assert view.sla == (SlaState.BREACHED,) and view.sort is FindingSort.FIRST_SEEN
    assert read_view(QueryParams(view.query())) == view
    assert "lang" not in view.query() and "first_seen_until" not in view.query()
    filters = view.filters()
    assert filters.first_seen_after is not None and filters.first_seen_before is None
    midnight = datetime(2026, 11, 1, tzinfo=LOCAL_ZONE)  # the store asks first_seen > after: midnight is in
    assert filters.first_seen_after == midnight - timedelta(microseconds=1)
    paged = read_view(QueryParams(view.url("abc", 3).partition("?")[2]))
    assert (paged.cursor, paged.page) == ("abc", 3) and read_view(QueryParams("page=3")).page == 1


def test_bad_values_are_problems_naming_their_field_and_drop_the_cursor() -> None:
    view = read_view(QueryParams("severity=urgent&status=opened&sla=late&sort=worst&first_seen_from=1%2F11%2F2026"
                                 "&first_seen_until=1900-01-01&cursor=abc&page=4&check=" + "x" * 129))
    problems = " | ".join(view.problems)
    for expected in ("severity: 'urgent' is not one of critical", "status: 'opened' is not one of open",
                     "sla: 'late' is not one of within", "sort: 'worst' is not one of severity",
                     "first seen from: '1/11/2026' is not a date (YYYY-MM-DD)",
                     "first seen until: 1900-01-01 is out of range", "check: at most 128 characters"):
        assert expected in problems
    assert view.cursor is None and view.page == 1 and view.typed["first_seen_from"] == "1/11/2026"
    reversed_days = read_view(QueryParams("first_seen_from=2026-11-02&first_seen_until=2026-11-01"))
    assert reversed_days.problems == ("first seen until: 2026-11-01 is before first seen from (2026-11-02)",)
    assert read_view(QueryParams("first_seen_from=1970-01-03")).filters().first_seen_after is not None
    assert read_view(QueryParams("first_seen_until=9998-12-30")).first_seen_until == date(9998, 12, 30)
