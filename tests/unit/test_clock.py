"""Time: the fixed and system clocks, the Asia/Ho_Chi_Minh calendar, and that nothing else reads the wall clock."""

from __future__ import annotations

import ast
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from soc.core.clock import (
    LOCAL_ZONE,
    SYSTEM_CLOCK,
    Clock,
    FixedClock,
    SystemClock,
    end_of_day,
    local_date,
    local_time,
    today,
    utcnow,
)

REPO = Path(__file__).resolve().parents[2]
ICT = timezone(timedelta(hours=7), "ICT")


# --- FixedClock -----------------------------------------------------------------------------------------------


def test_fixed_clock_refuses_naive_datetime() -> None:
    with pytest.raises(ValueError, match="FixedClock needs an aware datetime, not 2026-11-27T09:00:00"):
        FixedClock(datetime(2026, 11, 27, 9, 0))


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 27, 9, 0, tzinfo=LOCAL_ZONE),
        datetime(2026, 11, 27, 9, 0, tzinfo=ICT),
        datetime(2026, 11, 27, 2, 0, tzinfo=UTC),
        datetime(2026, 11, 26, 21, 0, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_fixed_clock_returns_the_moment_in_utc(moment: datetime) -> None:
    now = FixedClock(moment).now()
    assert now == datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
    assert now.tzinfo is UTC
    assert now.utcoffset() == timedelta(0)


def test_fixed_clock_stays_put() -> None:
    clock = FixedClock(datetime(2026, 11, 27, 2, 0, tzinfo=UTC))
    assert clock.now() == clock.now() == datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def test_fixed_clock_advance_moves_it_both_ways() -> None:
    clock = FixedClock(datetime(2026, 11, 27, 9, 0, tzinfo=LOCAL_ZONE))
    clock.advance(timedelta(hours=16, minutes=30))
    assert clock.now() == datetime(2026, 11, 27, 18, 30, tzinfo=UTC)
    assert clock.now().tzinfo is UTC
    clock.advance(timedelta(days=-2))
    assert clock.now() == datetime(2026, 11, 25, 18, 30, tzinfo=UTC)


def test_fixed_clock_is_a_clock() -> None:
    clock: Clock = FixedClock(datetime(2026, 11, 27, 2, 0, tzinfo=UTC))
    assert today(clock) == date(2026, 11, 27)


# --- SystemClock ----------------------------------------------------------------------------------------------


def test_system_clock_is_aware_utc() -> None:
    before = datetime.now(UTC)
    now = SystemClock().now()
    after = datetime.now(UTC)
    assert now.tzinfo is UTC
    assert now.utcoffset() == timedelta(0)
    assert before <= now <= after


def test_utcnow_reads_the_system_clock() -> None:
    assert isinstance(SYSTEM_CLOCK, SystemClock)
    before = datetime.now(UTC)
    now = utcnow()
    assert now.tzinfo is UTC
    assert before <= now <= datetime.now(UTC)


# --- local days -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 11, 26, 18, 30, tzinfo=UTC), date(2026, 11, 27)),  # 01:30 on the 27th locally
        (datetime(2026, 11, 26, 16, 59, 59, 999999, tzinfo=UTC), date(2026, 11, 26)),  # 23:59:59.999999 local
        (datetime(2026, 11, 26, 17, 0, tzinfo=UTC), date(2026, 11, 27)),  # local midnight
        (datetime(2026, 11, 27, 16, 59, tzinfo=UTC), date(2026, 11, 27)),
        (datetime(2026, 12, 31, 17, 0, tzinfo=UTC), date(2027, 1, 1)),  # new year comes 7 hours early
    ],
)
def test_today_uses_the_ho_chi_minh_calendar(moment: datetime, expected: date) -> None:
    assert today(FixedClock(moment)) == expected
    assert local_date(moment) == expected


def test_local_date_of_a_moment_in_another_zone() -> None:
    assert local_date(datetime(2026, 11, 26, 20, 0, tzinfo=timezone(timedelta(hours=-5)))) == date(2026, 11, 27)


def test_end_of_day_is_the_last_local_microsecond() -> None:
    end = end_of_day(date(2026, 11, 27))
    assert end.utcoffset() == timedelta(hours=7)
    local = end.astimezone(LOCAL_ZONE)
    assert (local.year, local.month, local.day) == (2026, 11, 27)
    assert (local.hour, local.minute, local.second, local.microsecond) == (23, 59, 59, 999999)
    assert end == datetime(2026, 11, 27, 16, 59, 59, 999999, tzinfo=UTC)
    assert local_date(end) == date(2026, 11, 27)
    assert local_date(end + timedelta(microseconds=1)) == date(2026, 11, 28)


@pytest.mark.parametrize(
    ("day", "expected_utc"),
    [
        (date(2026, 12, 31), datetime(2026, 12, 31, 16, 59, 59, 999999, tzinfo=UTC)),
        (date(2028, 2, 28), datetime(2028, 2, 28, 16, 59, 59, 999999, tzinfo=UTC)),  # leap year: 29th follows
        (date(2028, 2, 29), datetime(2028, 2, 29, 16, 59, 59, 999999, tzinfo=UTC)),
    ],
)
def test_end_of_day_across_month_and_year_ends(day: date, expected_utc: datetime) -> None:
    assert end_of_day(day) == expected_utc


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 11, 27, 2, 0, tzinfo=UTC), "27/11/2026 09:00"),
        (datetime(2026, 11, 26, 18, 30, tzinfo=UTC), "27/11/2026 01:30"),
        (datetime(2026, 1, 5, 7, 5, 59, tzinfo=LOCAL_ZONE), "05/01/2026 07:05"),
        (datetime(2026, 12, 31, 12, 0, tzinfo=timezone(timedelta(hours=-5))), "01/01/2027 00:00"),
        (None, "—"),
    ],
)
def test_local_time(moment: datetime | None, expected: str) -> None:
    assert local_time(moment) == expected


# --- nothing else reads the wall clock ------------------------------------------------------------------------

SCANNED = ("soc", "checks", "collectors")
ALLOWED = {Path("soc/core/clock.py")}
"""The one reader of the wall clock."""
EXCLUDED = (Path("soc/lab"),)
"""The test lab generates certificates valid from 'now'; it is no part of the business rules."""
WALL_CLOCK = {"datetime.now", "datetime.utcnow", "datetime.today", "date.today", "time.time"}
"""Calls that read the wall clock (matched on the end of the dotted name: `datetime.datetime.now` counts)."""


def _dotted(node: ast.expr) -> str:
    """'datetime.datetime.now' for that attribute chain, '' for anything else."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    parts.append(node.id)
    return ".".join(reversed(parts))


def _wall_clock_calls(source: str, filename: str) -> list[int]:
    """Lines of `source` calling one of WALL_CLOCK (code only: docstrings and comments may name them)."""
    lines = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if any(name == call or name.endswith("." + call) for call in WALL_CLOCK):
                lines.append(node.lineno)
    return sorted(lines)


def test_the_scan_finds_wall_clock_calls() -> None:
    """The detector itself: it must see each form, and not be fooled by text that only names them."""
    source = (
        "import datetime as dt, time\n"
        "from datetime import date, datetime\n"
        "a = datetime.now(UTC)\n"
        "b = date.today()\n"
        "c = datetime.utcnow()\n"
        "d = dt.datetime.now()\n"
        "e = datetime.fromtimestamp(time.time())\n"
        "'''datetime.now( in a docstring'''  # date.today( in a comment\n"
        "f = clock.now()\n"
    )
    assert _wall_clock_calls(source, "<sample>") == [3, 4, 5, 6, 7]


def test_only_the_clock_module_reads_the_wall_clock() -> None:
    offenders = []
    scanned = 0
    for top in SCANNED:
        for path in sorted((REPO / top).rglob("*.py")):
            relative = path.relative_to(REPO)
            if relative in ALLOWED or any(relative.is_relative_to(excluded) for excluded in EXCLUDED):
                continue
            scanned += 1
            source = path.read_text(encoding="utf-8")
            lines = source.splitlines()
            offenders += [f"{relative}:{line}: {lines[line - 1].strip()}"
                          for line in _wall_clock_calls(source, str(relative))]
    assert scanned > 20, f"only {scanned} modules scanned: is REPO ({REPO}) the repository root?"
    assert not offenders, (
        "these modules read the wall clock; take a Clock (soc.core.clock) instead:\n" + "\n".join(offenders)
    )


def test_the_clock_module_is_the_reader() -> None:
    """The allowed module really is where the wall clock is read (else ALLOWED is stale)."""
    path = REPO / "soc/core/clock.py"
    assert _wall_clock_calls(path.read_text(encoding="utf-8"), str(path)) != []
