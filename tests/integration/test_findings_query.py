"""Querying and paging the findings store: every order, every filter, opaque cursors, keyset stability."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from soc.core.clock import LOCAL_ZONE, FixedClock
from soc.core.errors import InputError
from soc.core.models import Finding, FindingStatus, Observation, Severity, StoredFinding
from soc.store import Backend, CursorError, FindingQuery, FindingSort, FindingStore

PORTAL_A = "https://a.dongnai.gov.vn/"
PORTAL_B = "https://b.dongnai.gov.vn/"
PORTAL_C = "https://c.dongnai.gov.vn/"
PORTAL_FIRST = "https://0.dongnai.gov.vn/"
"""Sorts before every other portal (for a finding that must land on page 1)."""
CHECKS = ("tls.cert.expired", "tls.protocol.tls10", "http.hsts.missing", "tls.cipher.weak")
SEVERITIES = tuple(Severity)
PAGE = 7
TOTAL = 25


def make(portal: str, i: int) -> Finding:
    """Finding number `i`: check id and severity cycle, the detail makes it unique."""
    return Finding(
        portal_url=portal,
        check_id=CHECKS[i % len(CHECKS)],
        severity=SEVERITIES[(i * 3) % len(SEVERITIES)],
        title_vi=f"Phát hiện {i}",
        title_en=f"Finding {i}",
        evidence=f"evidence {i}",
        detail=f"detail-{i:02d}",
    )


def obs(portal: str, clock: FixedClock, collector: str = "tls") -> Observation:
    return Observation(collector=collector, portal_url=portal, observed_at=clock.now(), complete=True)


def record(store: FindingStore, clock: FixedClock, by_portal: dict[str, list[Finding]]) -> str:
    """One complete run over the given portals (a complete TLS observation each); returns the run id."""
    run = store.begin_run("inventory.yaml", len(by_portal))
    for portal, findings in by_portal.items():
        store.record_portal(run.id, portal, [obs(portal, clock)], findings)
    store.finish_run(run.id, complete=True)
    return run.id


@dataclass
class Scenario:
    store: FindingStore
    clock: FixedClock
    t0: datetime
    t1: datetime
    t2: datetime


@pytest.fixture
def scenario(backend: Backend, clock: FixedClock) -> Scenario:
    """25 findings over three portals, five severities, four checks, three sighting times and four statuses.

    t0: A 0-8 and B 9-16 open.  t1: C 17-24 open; A seen again with 0-5 only, so its unseen TLS findings
    (7 and 8; 6 is an HTTP check) are resolved.  t2: B seen again in full (last_seen moves, first_seen stays).
    Then triage: 1 acknowledged, 10 false positive, 18 risk accepted.
    """
    store = backend.findings
    t0 = clock.now()
    record(store, clock, {PORTAL_A: [make(PORTAL_A, i) for i in range(9)],
                          PORTAL_B: [make(PORTAL_B, i) for i in range(9, 17)]})
    clock.advance(timedelta(hours=1))
    t1 = clock.now()
    record(store, clock, {PORTAL_C: [make(PORTAL_C, i) for i in range(17, 25)],
                          PORTAL_A: [make(PORTAL_A, i) for i in range(6)]})
    clock.advance(timedelta(hours=1))
    t2 = clock.now()
    record(store, clock, {PORTAL_B: [make(PORTAL_B, i) for i in range(9, 17)]})
    store.set_status(make(PORTAL_A, 1).fingerprint, FindingStatus.ACKNOWLEDGED, "tester")
    store.set_status(make(PORTAL_B, 10).fingerprint, FindingStatus.FALSE_POSITIVE, "tester")
    store.set_status(make(PORTAL_C, 18).fingerprint, FindingStatus.RISK_ACCEPTED, "tester")
    clock.advance(timedelta(hours=1))
    return Scenario(store, clock, t0, t1, t2)


def everything(store: FindingStore, sort: FindingSort) -> list[StoredFinding]:
    page = store.query_findings(FindingQuery(sort=sort))
    assert page.next_cursor is None
    return page.items


def expected_order(items: list[StoredFinding], sort: FindingSort) -> list[StoredFinding]:
    """The documented order, computed independently of the store."""
    if sort is FindingSort.SEVERITY:
        return sorted(items, key=lambda f: (f.severity.rank, f.portal_url, f.check_id, f.fingerprint))
    if sort is FindingSort.FIRST_SEEN:
        return sorted(items, key=lambda f: (f.first_seen, f.fingerprint), reverse=True)
    return sorted(items, key=lambda f: (f.last_seen, f.fingerprint), reverse=True)


def page_through(store: FindingStore, query: FindingQuery) -> list[list[StoredFinding]]:
    """Every page of a query from its cursor on, following cursors; checks that only the last page is not full."""
    assert query.limit is not None
    pages = []
    cursor = query.cursor
    while True:
        page = store.query_findings(query.model_copy(update={"cursor": cursor}))
        pages.append(page.items)
        assert len(pages) <= TOTAL + 1, "paging does not end"
        if page.next_cursor is None:
            return pages
        assert len(page.items) == query.limit, "a page with a next cursor must be full"
        cursor = page.next_cursor


def fingerprints(items: list[StoredFinding]) -> list[str]:
    return [item.fingerprint for item in items]


def forge(sort: str, key: Any) -> str:
    """A cursor built by hand in the store's format (as a client tampering with one would)."""
    raw = json.dumps({"s": sort, "k": key}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# --- the data is what the scenario says -------------------------------------------------------------------------


def test_scenario(scenario: Scenario) -> None:
    items = everything(scenario.store, FindingSort.SEVERITY)
    assert len(items) == TOTAL
    assert len(set(fingerprints(items))) == TOTAL
    assert Counter(item.status for item in items) == {
        FindingStatus.OPEN: 20, FindingStatus.RESOLVED: 2, FindingStatus.ACKNOWLEDGED: 1,
        FindingStatus.FALSE_POSITIVE: 1, FindingStatus.RISK_ACCEPTED: 1,
    }
    assert Counter(item.severity for item in items) == {severity: 5 for severity in Severity}
    assert {item.first_seen for item in items} == {scenario.t0, scenario.t1}
    assert {item.last_seen for item in items} == {scenario.t0, scenario.t1, scenario.t2}


# --- unpaged and paged orders -----------------------------------------------------------------------------------


@pytest.mark.parametrize("sort", list(FindingSort))
def test_unpaged_order_is_the_documented_one(scenario: Scenario, sort: FindingSort) -> None:
    items = everything(scenario.store, sort)
    assert fingerprints(items) == fingerprints(expected_order(items, sort))


def test_time_orders_are_newest_first(scenario: Scenario) -> None:
    first = everything(scenario.store, FindingSort.FIRST_SEEN)
    assert first[0].first_seen == scenario.t1
    assert first[-1].first_seen == scenario.t0
    last = everything(scenario.store, FindingSort.LAST_SEEN)
    assert [item.portal_url for item in last[:8]] == [PORTAL_B] * 8  # seen at t2
    assert last[-1].last_seen == scenario.t0


def test_severity_order_is_worst_first(scenario: Scenario) -> None:
    items = everything(scenario.store, FindingSort.SEVERITY)
    assert [item.severity for item in items] == [severity for severity in Severity for _ in range(5)]


@pytest.mark.parametrize("sort", list(FindingSort))
@pytest.mark.parametrize("limit", [1, PAGE, TOTAL - 1, TOTAL, TOTAL + 1])
def test_pages_concatenate_to_the_unpaged_order(scenario: Scenario, sort: FindingSort, limit: int) -> None:
    pages = page_through(scenario.store, FindingQuery(sort=sort, limit=limit))
    joined = [item for page in pages for item in page]
    assert fingerprints(joined) == fingerprints(everything(scenario.store, sort))
    assert len(set(fingerprints(joined))) == TOTAL
    assert len(pages) == -(-TOTAL // limit)
    assert [len(page) for page in pages[:-1]] == [limit] * (len(pages) - 1)


@pytest.mark.parametrize("sort", list(FindingSort))
def test_pages_of_seven(scenario: Scenario, sort: FindingSort) -> None:
    pages = page_through(scenario.store, FindingQuery(sort=sort, limit=PAGE))
    assert [len(page) for page in pages] == [7, 7, 7, 4]
    unpaged = everything(scenario.store, sort)
    assert [fingerprints(page) for page in pages] == [fingerprints(unpaged[i:i + PAGE]) for i in (0, 7, 14, 21)]


def test_last_page_exactly_full_has_no_cursor(scenario: Scenario) -> None:
    """The open or acknowledged findings of A and C are 14 = two full pages: the second must not promise a third."""
    query = FindingQuery(portal_urls=(PORTAL_A, PORTAL_C), statuses=(FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED),
                         limit=PAGE)
    first = scenario.store.query_findings(query)
    assert len(first.items) == PAGE
    assert first.next_cursor is not None
    second = scenario.store.query_findings(query.model_copy(update={"cursor": first.next_cursor}))
    assert len(second.items) == PAGE
    assert second.next_cursor is None
    assert set(fingerprints(first.items)).isdisjoint(fingerprints(second.items))


def test_cursor_is_url_safe_text(scenario: Scenario) -> None:
    for sort in FindingSort:
        cursor = scenario.store.query_findings(FindingQuery(sort=sort, limit=PAGE)).next_cursor
        assert cursor is not None
        assert cursor.isascii()
        assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


# --- filters with pagination ------------------------------------------------------------------------------------

Predicate = Callable[[StoredFinding], bool]


def _most_common_initial(store: FindingStore) -> str:
    counts = Counter(item.fingerprint[0] for item in everything(store, FindingSort.SEVERITY))
    return counts.most_common(1)[0][0]


FILTERS: dict[str, Callable[[Scenario], tuple[dict[str, Any], Predicate]]] = {
    "statuses": lambda s: (
        {"statuses": (FindingStatus.OPEN, FindingStatus.RESOLVED)},
        lambda f: f.status in (FindingStatus.OPEN, FindingStatus.RESOLVED),
    ),
    "severities": lambda s: (
        {"severities": (Severity.CRITICAL, Severity.LOW)},
        lambda f: f.severity in (Severity.CRITICAL, Severity.LOW),
    ),
    "check_ids": lambda s: (
        {"check_ids": ("tls.cert.expired", "http.hsts.missing")},
        lambda f: f.check_id in ("tls.cert.expired", "http.hsts.missing"),
    ),
    "portal_urls": lambda s: (
        {"portal_urls": (PORTAL_B, PORTAL_C)},
        lambda f: f.portal_url in (PORTAL_B, PORTAL_C),
    ),
    "fingerprint_prefix": lambda s: (
        {"fingerprint_prefix": (prefix := _most_common_initial(s.store))},
        lambda f: f.fingerprint.startswith(prefix),
    ),
    "first_seen_after": lambda s: (
        {"first_seen_after": s.t0},
        lambda f: f.first_seen > s.t0,
    ),
    "first_seen_after_all": lambda s: (
        {"first_seen_after": s.t1},
        lambda f: False,
    ),
    "first_seen_after_before_all": lambda s: (
        {"first_seen_after": s.t0 - timedelta(microseconds=1)},
        lambda f: True,
    ),
    "combined": lambda s: (
        {"statuses": (FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED, FindingStatus.RISK_ACCEPTED),
         "portal_urls": (PORTAL_A, PORTAL_C),
         "check_ids": ("tls.cert.expired", "tls.protocol.tls10", "tls.cipher.weak")},
        lambda f: (f.status is not FindingStatus.RESOLVED and f.status is not FindingStatus.FALSE_POSITIVE
                   and f.portal_url != PORTAL_B and f.check_id.startswith("tls.")),
    ),
    "combined_with_time_and_severity": lambda s: (
        {"first_seen_after": s.t0, "severities": (Severity.HIGH, Severity.MEDIUM, Severity.INFO)},
        lambda f: f.first_seen > s.t0 and f.severity in (Severity.HIGH, Severity.MEDIUM, Severity.INFO),
    ),
    "nothing_matches": lambda s: (
        {"fingerprint_prefix": "not-hex"},
        lambda f: False,
    ),
}


@pytest.mark.parametrize("sort", list(FindingSort))
@pytest.mark.parametrize("limit", [2, PAGE])
@pytest.mark.parametrize("name", list(FILTERS))
def test_filters_with_pagination(scenario: Scenario, name: str, sort: FindingSort, limit: int) -> None:
    filters, keep = FILTERS[name](scenario)
    everyone = everything(scenario.store, sort)
    expected = [item for item in everyone if keep(item)]
    unpaged = scenario.store.query_findings(FindingQuery(sort=sort, **filters))
    assert fingerprints(unpaged.items) == fingerprints(expected)
    assert unpaged.next_cursor is None

    pages = page_through(scenario.store, FindingQuery(sort=sort, limit=limit, **filters))
    joined = [item for page in pages for item in page]
    assert fingerprints(joined) == fingerprints(expected)
    assert len(set(fingerprints(joined))) == len(joined)
    assert len(pages) == max(1, -(-len(expected) // limit))


def test_filters_select_what_the_scenario_says(scenario: Scenario) -> None:
    """The filter cases are not vacuous: they select some, not all, of the findings."""
    sizes = {}
    for name, build in FILTERS.items():
        filters, _ = build(scenario)
        sizes[name] = len(scenario.store.query_findings(FindingQuery(**filters)).items)
    assert sizes == {
        "statuses": 22, "severities": 10, "check_ids": 13, "portal_urls": 16,
        "fingerprint_prefix": sizes["fingerprint_prefix"], "first_seen_after": 8, "first_seen_after_all": 0,
        "first_seen_after_before_all": 25, "combined": 11, "combined_with_time_and_severity": 6,
        "nothing_matches": 0,
    }
    assert 2 <= sizes["fingerprint_prefix"] < TOTAL


def test_first_seen_after_takes_any_zone(scenario: Scenario) -> None:
    """The bound is an instant: the same moment given in local time filters the same."""
    in_utc = scenario.store.query_findings(FindingQuery(first_seen_after=scenario.t0)).items
    in_local = scenario.store.query_findings(FindingQuery(first_seen_after=scenario.t0.astimezone(LOCAL_ZONE))).items
    assert scenario.t0.astimezone(LOCAL_ZONE).hour == 9
    assert fingerprints(in_local) == fingerprints(in_utc)
    assert len(in_utc) == 8


# --- cursors that are not ours ----------------------------------------------------------------------------------


@pytest.mark.parametrize("made_for", list(FindingSort))
@pytest.mark.parametrize("used_with", list(FindingSort))
def test_cursor_of_another_sort_is_refused(scenario: Scenario, made_for: FindingSort, used_with: FindingSort) -> None:
    cursor = scenario.store.query_findings(FindingQuery(sort=made_for, limit=PAGE)).next_cursor
    assert cursor is not None
    query = FindingQuery(sort=used_with, limit=PAGE, cursor=cursor)
    if made_for is used_with:
        assert len(scenario.store.query_findings(query).items) == PAGE
        return
    with pytest.raises(CursorError, match=f"cursor is for sort '{made_for.value}', not '{used_with.value}'"):
        scenario.store.query_findings(query)


GARBAGE = {
    "plain text": "garbage",
    "not base64": "!!!!",
    "bad padding": "abc",
    "not utf-8": base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),
    "json list": base64.urlsafe_b64encode(b"[1, 2, 3]").decode(),
    "json string": base64.urlsafe_b64encode(b'"severity"').decode(),
    "no key": base64.urlsafe_b64encode(b'{"s": "severity"}').decode(),
    "no sort": base64.urlsafe_b64encode(b'{"k": [0, "a", "b", "c"]}').decode(),
    "key not a list": forge("severity", "0,a,b,c"),
    "unknown sort": forge("worst", [0, "a", "b", "c"]),
    "key too short": forge("severity", [0, "https://a.dongnai.gov.vn/"]),
    "key too long": forge("severity", [0, "a", "b", "c", "d"]),
    "empty key": forge("severity", []),
    "truncated": "eyJzIjoic2V2ZXJpdHkiLCJrIjpbMCwi",
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_garbage_cursor_is_refused(scenario: Scenario, name: str) -> None:
    with pytest.raises(CursorError):
        scenario.store.query_findings(FindingQuery(sort=FindingSort.SEVERITY, limit=PAGE, cursor=GARBAGE[name]))


FORGED = {
    "first_seen-not-a-date": (FindingSort.FIRST_SEEN, ["yesterday", "ff"]),
    "last_seen-not-a-date": (FindingSort.LAST_SEEN, ["yesterday", "ff"]),
    "first_seen-a-number": (FindingSort.FIRST_SEEN, [12345, "ff"]),
    "last_seen-naive-date": (FindingSort.LAST_SEEN, ["2026-11-27T02:00:00", "ff"]),
    "severity-nested-object": (FindingSort.SEVERITY, [{"rank": 0}, "a", "b", "c"]),
    "severity-nested-list": (FindingSort.SEVERITY, [0, ["a"], "b", "c"]),
}


@pytest.mark.parametrize("name", list(FORGED))
def test_forged_cursor_of_the_right_shape_is_refused(scenario: Scenario, name: str) -> None:
    """A cursor of the right sort and length whose values are not of the key's types is not one of ours either."""
    sort, key = FORGED[name]
    with pytest.raises(CursorError):
        scenario.store.query_findings(FindingQuery(sort=sort, limit=PAGE, cursor=forge(sort.value, key)))


def test_cursor_error_is_an_input_error() -> None:
    assert issubclass(CursorError, InputError)


# --- keyset, not offset -----------------------------------------------------------------------------------------


def newcomer(sort: FindingSort) -> Finding:
    """A finding that sorts first by severity (worst, on the first portal), and by time when recorded last."""
    return Finding(
        portal_url=PORTAL_FIRST,
        check_id="tls.protocol.tls10",
        severity=Severity.CRITICAL,
        title_vi="Hỗ trợ TLS 1.0",
        title_en="TLS 1.0 supported",
        evidence="TLSv1.0 handshake accepted",
        detail=f"late-{sort.value}",
    )


@pytest.mark.parametrize("sort", list(FindingSort))
def test_finding_added_after_page_one_does_not_shift_page_two(scenario: Scenario, sort: FindingSort) -> None:
    query = FindingQuery(sort=sort, limit=PAGE)
    before = everything(scenario.store, sort)
    first = scenario.store.query_findings(query)
    assert first.next_cursor is not None

    late = newcomer(sort)
    record(scenario.store, scenario.clock, {PORTAL_FIRST: [late]})  # the clock is past t2: newest for the time orders

    after = everything(scenario.store, sort)
    assert after[0].fingerprint == late.fingerprint, "the newcomer must sort before the cursor"
    assert fingerprints(after[PAGE:2 * PAGE]) != fingerprints(before[PAGE:2 * PAGE]), "an offset would shift"

    second = scenario.store.query_findings(query.model_copy(update={"cursor": first.next_cursor}))
    assert fingerprints(second.items) == fingerprints(before[PAGE:2 * PAGE])
    rest = page_through(scenario.store, query.model_copy(update={"cursor": first.next_cursor}))
    joined = first.items + [item for page in rest for item in page]
    assert fingerprints(joined) == fingerprints(before)


@pytest.mark.parametrize("sort", list(FindingSort))
def test_finding_added_after_the_cursor_appears_on_a_later_page(scenario: Scenario, sort: FindingSort) -> None:
    """The other side of keyset paging: a newcomer sorting after the cursor is not skipped."""
    query = FindingQuery(sort=sort, limit=PAGE)
    first = scenario.store.query_findings(query)
    assert first.next_cursor is not None

    late = Finding(portal_url="https://z.dongnai.gov.vn/", check_id="tls.zz", severity=Severity.INFO,
                   title_vi="Muộn", title_en="Late", evidence="-", detail="late")
    if sort is not FindingSort.SEVERITY:
        scenario.clock.advance(timedelta(hours=-10))  # older than everything: sorts last when newest is first
    record(scenario.store, scenario.clock, {late.portal_url: [late]})

    rest = page_through(scenario.store, query.model_copy(update={"cursor": first.next_cursor}))
    joined = first.items + [item for page in rest for item in page]
    assert joined[-1].fingerprint == late.fingerprint
    assert fingerprints(joined) == fingerprints(everything(scenario.store, sort))
