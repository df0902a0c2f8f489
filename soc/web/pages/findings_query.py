"""The findings list's URL: its filters, sort and page read from the query string, and written back for links.

The filter form is sent with GET, so a filtered list is a URL an operator can bookmark or pass on. The names
are the API's (`agency`, `portal`, `check`, `severity`, `status`, `sla`, `sort`, `cursor`, repeatable), plus
`first_seen_from` / `first_seen_until` (local calendar days, Asia/Ho_Chi_Minh) and `page` (the page number
shown; the cursor alone says where the page starts). Bad values are collected as problems naming the field,
never raised, so the page can show them beside the form the user filled in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Protocol, TypeVar
from urllib.parse import urlencode

from soc.api.routes.findings import FindingFilters
from soc.core.clock import start_of_day
from soc.core.models import FindingStatus, Severity
from soc.findings.sla import SlaState
from soc.store import FindingSort

MAX_VALUES = 50
"""At most this many values of one filter (a URL is not a bulk query)."""
LIMITS = {"agency": 64, "portal": 2048, "check": 128, "cursor": 2048}
FIRST_DAY, LAST_DAY = date(1970, 1, 3), date(9998, 12, 30)
"""Days a date filter may name (their first and last moments stay within the API's range)."""
KEYS = ("agency", "portal", "check", "severity", "status", "sla", "first_seen_from", "first_seen_until", "sort")
"""The query keys of a filtered list, in the order links write them."""
_WORDS = re.compile(r"[\s,]+")
"""Check ids typed in one field: separated by commas or spaces."""
_SPACES = re.compile(r"\s+")
"""Portal URLs typed in one field: separated by spaces (a URL may hold a comma)."""
E = TypeVar("E", bound=StrEnum)


class MultiValues(Protocol):
    """What a query string or a parsed form offers: every value of a key."""

    def getlist(self, key: str) -> list[str]:
        """The values given for `key`, in order (empty when absent)."""
        ...


@dataclass(frozen=True)
class ListView:
    """What the findings list was asked for: the filters, the sort, where the page starts, and the problems."""

    agency: tuple[str, ...] = ()
    portal: tuple[str, ...] = ()
    check: tuple[str, ...] = ()
    severity: tuple[Severity, ...] = ()
    status: tuple[FindingStatus, ...] = ()
    sla: tuple[SlaState, ...] = ()
    first_seen_from: date | None = None
    first_seen_until: date | None = None
    sort: FindingSort = FindingSort.SEVERITY
    cursor: str | None = None
    page: int = 1
    problems: tuple[str, ...] = field(default=())
    typed: Mapping[str, str] = field(default_factory=dict)
    """What was typed in the text and date fields, shown back as it was (also when it is wrong)."""

    def filters(self) -> FindingFilters:
        """The API's filters of this view (the dates as local days: from 00:00 of one to 24:00 of the other)."""
        after = None if self.first_seen_from is None else start_of_day(self.first_seen_from) - timedelta(
            microseconds=1)
        before = None if self.first_seen_until is None else start_of_day(self.first_seen_until + timedelta(days=1))
        return FindingFilters(agency=self.agency, portal=self.portal, check=self.check, severity=self.severity,
                              status=self.status, sla=self.sla, first_seen_after=after, first_seen_before=before)

    def pairs(self) -> list[tuple[str, str]]:
        """The query of this view's filters and sort (no page), in KEYS order."""
        pairs: list[tuple[str, str]] = []
        for key in KEYS[:6]:
            pairs += [(key, str(value)) for value in getattr(self, key)]
        for key in ("first_seen_from", "first_seen_until"):
            if (day := getattr(self, key)) is not None:
                pairs.append((key, day.isoformat()))
        if self.sort is not FindingSort.SEVERITY:
            pairs.append(("sort", self.sort.value))
        return pairs

    def url(self, cursor: str | None = None, page: int = 1, **extra: str) -> str:
        """/findings with these filters, starting at `cursor` (None: the first page), plus `extra` keys."""
        pairs = self.pairs()
        if cursor is not None:
            pairs += [("cursor", cursor), ("page", str(page))]
        pairs += list(extra.items())
        return "/findings" + (f"?{urlencode(pairs)}" if pairs else "")

    def here(self, **extra: str) -> str:
        """/findings as asked: the same filters and the same page."""
        return self.url(self.cursor, self.page, **extra)

    def query(self) -> str:
        """The query string of `here()` (what the bulk form sends back to return to this page)."""
        return self.here().partition("?")[2]

    @property
    def filtered(self) -> bool:
        """Some filter is set (besides the sort)."""
        return any(key != "sort" for key, _ in self.pairs())


def read_view(values: MultiValues) -> ListView:
    """The list view a query string asks for; every bad value is a problem naming its field."""
    problems: list[str] = []

    def texts(key: str, split: re.Pattern[str] | None) -> tuple[str, ...]:
        found: list[str] = []
        for raw in values.getlist(key):
            found += [part for part in (split.split(raw.strip()) if split else [raw.strip()]) if part]
        limit = LIMITS[key]
        too_long = [value for value in found if len(value) > limit]
        if too_long:
            problems.append(f"{key}: at most {limit} characters per value ({too_long[0][:40]!r}… is longer)")
        if len(found) > MAX_VALUES:
            problems.append(f"{key}: at most {MAX_VALUES} values ({len(found)} given)")
        return tuple(dict.fromkeys(value for value in found if len(value) <= limit))[:MAX_VALUES]

    def choices(key: str, kind: type[E]) -> tuple[E, ...]:
        picked = [_choose(key, kind, value, problems) for value in values.getlist(key) if value.strip()]
        return _ordered([member for member in picked if member is not None], kind)

    def day(key: str, label: str) -> date | None:
        raw = (values.getlist(key) or [""])[-1].strip()
        if not raw:
            return None
        try:
            value = date.fromisoformat(raw)
        except ValueError:
            problems.append(f"{label}: {raw[:40]!r} is not a date (YYYY-MM-DD)")
            return None
        if not FIRST_DAY <= value <= LAST_DAY:
            problems.append(f"{label}: {value.isoformat()} is out of range ({FIRST_DAY} … {LAST_DAY})")
            return None
        return value

    agency, portal, check = texts("agency", None), texts("portal", _SPACES), texts("check", _WORDS)
    severity, status, sla = choices("severity", Severity), choices("status", FindingStatus), choices("sla", SlaState)
    seen_from, seen_until = day("first_seen_from", "first seen from"), day("first_seen_until", "first seen until")
    if seen_from is not None and seen_until is not None and seen_until < seen_from:
        problems.append(f"first seen until: {seen_until.isoformat()} is before first seen from "
                        f"({seen_from.isoformat()})")
    sort_values = [value for value in values.getlist("sort") if value.strip()]
    sort = _choose("sort", FindingSort, sort_values[-1], problems) if sort_values else None
    cursor = (values.getlist("cursor") or [""])[-1].strip() or None
    if cursor is not None and len(cursor) > LIMITS["cursor"]:
        problems.append("cursor: too long; go back to the first page")
        cursor = None
    page_text = (values.getlist("page") or ["1"])[-1]
    page = int(page_text) if page_text.isdigit() and 0 < int(page_text) < 1_000_000 else 1
    typed = {"portal": " ".join(portal), "check": ", ".join(check),
             "first_seen_from": (values.getlist("first_seen_from") or [""])[-1][:40],
             "first_seen_until": (values.getlist("first_seen_until") or [""])[-1][:40]}
    if problems:  # a page of another filter means nothing: start again from the first page
        cursor = None
    return ListView(agency=agency, portal=portal, check=check, severity=severity, status=status, sla=sla,
                    first_seen_from=seen_from, first_seen_until=seen_until, sort=sort or FindingSort.SEVERITY,
                    cursor=cursor, page=page if cursor else 1, problems=tuple(problems), typed=typed)


def _choose(key: str, kind: type[E], value: str, problems: list[str]) -> E | None:
    try:
        return kind(value.strip())
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        problems.append(f"{key}: {value.strip()[:40]!r} is not one of {allowed}")
        return None


def _ordered(values: Sequence[E], kind: type[E]) -> tuple[E, ...]:
    """The chosen members in the enum's own order (so equal filters make equal URLs)."""
    chosen = set(values)
    return tuple(member for member in kind if member in chosen)
