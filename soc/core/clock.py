"""Time: the injectable `Clock`, the local zone, and local-day arithmetic.

Nothing else in the code reads the wall clock: services, the store and the compliance evaluation are
given a clock (the system clock in production, a fixed one in tests), so no result depends on the day
a command happens to run. Times are stored in UTC and shown in Asia/Ho_Chi_Minh.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

LOCAL_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
"""The zone every date of the plans and every displayed time is in."""


class Clock(Protocol):
    """Where the current time comes from."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The wall clock: the only reader of `datetime.now` in the code base."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        return datetime.now(UTC)


class FixedClock:
    """A clock that says what it is told (tests, rebuilding a past report); `advance` moves it."""

    def __init__(self, moment: datetime) -> None:
        if moment.utcoffset() is None:
            raise ValueError(f"FixedClock needs an aware datetime, not {moment.isoformat()}")
        self._moment = moment.astimezone(UTC)

    def now(self) -> datetime:
        """The fixed moment, in UTC."""
        return self._moment

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward (or back, with a negative delta)."""
        self._moment += delta


SYSTEM_CLOCK = SystemClock()


def utcnow() -> datetime:
    """The system clock's time: for collectors stamping what they observed, never for business rules."""
    return SYSTEM_CLOCK.now()


def local_date(moment: datetime) -> date:
    """The Asia/Ho_Chi_Minh calendar day of an aware moment."""
    return moment.astimezone(LOCAL_ZONE).date()


def today(clock: Clock) -> date:
    """Today in Asia/Ho_Chi_Minh, by `clock`."""
    return local_date(clock.now())


def start_of_day(day: date) -> datetime:
    """The first instant of a local (Asia/Ho_Chi_Minh) day, as an aware datetime."""
    return datetime.combine(day, time(), LOCAL_ZONE)


def end_of_day(day: date) -> datetime:
    """The last instant of a local (Asia/Ho_Chi_Minh) day, as an aware datetime."""
    return datetime.combine(day + timedelta(days=1), time(), LOCAL_ZONE) - timedelta(microseconds=1)


def local_time(moment: datetime | None) -> str:
    """'27/11/2026 09:00' in Asia/Ho_Chi_Minh, or '—'."""
    return moment.astimezone(LOCAL_ZONE).strftime("%d/%m/%Y %H:%M") if moment else "—"
