"""The scheduler's health checks, pure: expected slots + our job-run history + a moment → findings."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from checks.ops import ABANDONED, evaluate_freshness, evaluate_job, missed_slots, when
from soc.core.clock import LOCAL_ZONE
from soc.core.models import Finding, JobOutcome, JobRun
from soc.services.jobs import spread_starts
from soc.services.schedule import fire_times, window

NIGHTLY = CronTrigger.from_crontab("0 1 * * *", timezone=LOCAL_ZONE)
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=LOCAL_ZONE)
GRACE = timedelta(hours=1)
HOUR = timedelta(hours=1)


def night(day: int) -> datetime:
    """01:00 local on that day of November 2026."""
    return datetime(2026, 11, day, 1, 0, tzinfo=LOCAL_ZONE)


def run(slot: datetime, outcome: JobOutcome = JobOutcome.SUCCESS, *, started: datetime | None = None,
        trigger: str = "schedule", error: str | None = None, number: int = 1, died: str | None = None) -> JobRun:
    begun = started or slot + timedelta(seconds=1)
    return JobRun(id=number, job="portal_scan", slot=slot, started_at=begun, trigger=trigger, outcome=outcome,
                  finished_at=None if outcome is JobOutcome.RUNNING else begun + timedelta(minutes=30),
                  error=error, detail={ABANDONED: died} if died else {})


def checks(findings: list[Finding]) -> list[str]:
    return sorted(f.check_id for f in findings)


def test_the_slots_due_are_those_between_the_schedule_start_and_now_minus_the_grace() -> None:
    since = night(23) - timedelta(minutes=5)
    period = window(NOW, since, timedelta(days=7), GRACE)
    assert period == (since, NOW - GRACE)
    due, following = fire_times(NIGHTLY, *period)
    assert due == [night(day) for day in (23, 24, 25, 26, 27)]
    assert following == night(28)
    # The lookback bounds an old schedule; a schedule given after now minus the grace has nothing due yet.
    assert window(NOW, night(1), timedelta(days=3), GRACE) == (NOW - timedelta(days=3), NOW - GRACE)
    assert window(NOW, NOW - timedelta(minutes=10), timedelta(days=7), GRACE) is None
    assert window(NOW, None, timedelta(days=7), GRACE) is None


def test_the_grace_is_respected_a_slot_inside_it_is_not_yet_missed() -> None:
    at = night(27) + timedelta(minutes=30)  # 01:30: tonight's 01:00 slot is still within the grace
    due, following = fire_times(NIGHTLY, night(25) - HOUR, at - GRACE)
    assert due == [night(25), night(26)] and following == night(27)
    history = [run(night(25)), run(night(26))]
    assert evaluate_job("portal_scan", at, due, following, history, timedelta(hours=7)) == []
    # An hour and a minute later the slot is due and, without a run, missed.
    later = night(27) + GRACE + timedelta(minutes=1)
    due, following = fire_times(NIGHTLY, night(25) - HOUR, later - GRACE)
    found = evaluate_job("portal_scan", later, due, following, history, timedelta(hours=7))
    assert checks(found) == ["ops.schedule_missed"]
    assert found[0].portal_url == "job:portal_scan"
    assert found[0].evidence == "portal_scan: 1 of 3 slot(s) without a run: 27/11/2026 01:00"


def test_every_slot_with_a_run_means_no_finding() -> None:
    due = [night(day) for day in (24, 25, 26, 27)]
    history = [run(slot, number=i) for i, slot in enumerate(due, 1)]
    assert evaluate_job("portal_scan", NOW, due, night(28), history, timedelta(hours=7)) == []


def test_a_coalesced_run_covers_only_its_own_slot_the_earlier_ones_are_reported_missed() -> None:
    # Down from the 24th to the 27th at 01:20: APScheduler coalesced the missed slots into one run for 01:00
    # on the 27th (inside the grace). The earlier nights stay missed; the 27th is not due yet.
    at = night(27) + timedelta(minutes=20)
    due, following = fire_times(NIGHTLY, night(23) - HOUR, at - GRACE)
    assert due == [night(23), night(24), night(25), night(26)]
    history = [run(night(23)), run(night(27), started=at, number=2)]
    assert missed_slots(due, following, history) == [night(24), night(25), night(26)]
    found = evaluate_job("portal_scan", at, due, following, history, timedelta(hours=7))
    assert checks(found) == ["ops.schedule_missed"]
    assert "3 of 4 slot(s)" in found[0].evidence
    assert all(when(night(day)) in found[0].evidence for day in (24, 25, 26))
    # Once the coalesced slot is due its run covers it: the latest slot ran, the finding is no longer seen.
    later = night(27) + 2 * GRACE
    due, following = fire_times(NIGHTLY, night(23) - HOUR, later - GRACE)
    assert evaluate_job("portal_scan", later, due, following, history, timedelta(hours=7)) == []


def test_a_manual_run_covers_the_slot_it_was_asked_in() -> None:
    due = [night(25), night(26)]
    history = [run(night(25)), run(night(26) + timedelta(hours=3), trigger="manual", number=2)]
    assert missed_slots(due, night(27), history) == []
    # ...but not an earlier one.
    assert missed_slots(due, night(27), [run(night(26) + HOUR, trigger="manual")]) == [night(25)]


def test_a_failed_latest_run_is_a_finding_until_a_run_succeeds() -> None:
    due = [night(26), night(27)]
    failed = run(night(27), JobOutcome.FAILED, error="InventoryError: inventory.yaml: file not found", number=2)
    history = [run(night(26)), failed]
    found = evaluate_job("portal_scan", NOW, due, night(28), history, timedelta(hours=7))
    assert checks(found) == ["ops.job_failed"]
    assert "run #2" in found[0].evidence and "InventoryError: inventory.yaml: file not found" in found[0].evidence
    # A skipped slot (the previous run still going) says nothing about success: the failure stands.
    skipped = run(night(27) + timedelta(hours=2), JobOutcome.SKIPPED, trigger="manual", number=3)
    assert checks(evaluate_job("portal_scan", NOW, due, night(28), [*history, skipped], timedelta(hours=7))) == [
        "ops.job_failed"]
    fixed = run(night(27) + HOUR, trigger="manual", number=4)
    assert evaluate_job("portal_scan", NOW, due, night(28), [*history, fixed], timedelta(hours=7)) == []


def test_a_run_going_longer_than_the_limit_is_stuck() -> None:
    due = [night(27)]
    going = run(night(27), JobOutcome.RUNNING, started=night(27))
    assert evaluate_job("portal_scan", NOW, due, night(28), [going], timedelta(hours=9)) == []
    found = evaluate_job("portal_scan", NOW, due, night(28), [going], timedelta(hours=7))
    assert checks(found) == ["ops.job_stuck"]
    assert "running since 27/11/2026 01:00, over 7 h 00 min" in found[0].evidence


def test_a_run_whose_process_died_is_stuck_not_failed() -> None:
    dead = run(night(27), JobOutcome.FAILED, error="abandoned: its process is gone (pid 4242 on soc)",
               died="its process is gone (pid 4242 on soc)")
    found = evaluate_job("portal_scan", NOW, [night(27)], night(28), [dead], timedelta(hours=7))
    assert checks(found) == ["ops.job_stuck"]
    assert "died without an outcome: its process is gone (pid 4242 on soc)" in found[0].evidence


def test_a_job_never_due_has_no_finding() -> None:
    assert evaluate_job("monthly_report", NOW, [], None, [], timedelta(hours=1)) == []


def test_scan_data_older_than_the_limit_is_stale() -> None:
    url, limit, back = "https://stp.dongnai.gov.vn/", timedelta(days=3), timedelta(days=90)
    assert evaluate_freshness(url, NOW, NOW - timedelta(days=2), limit, back) == []
    found = evaluate_freshness(url, NOW, NOW - timedelta(days=4, hours=1), limit, back)
    assert checks(found) == ["ops.data_stale"] and found[0].portal_url == url
    assert "4 days ago (limit 3)" in found[0].evidence
    never = evaluate_freshness(url, NOW, None, limit, back)
    assert checks(never) == ["ops.data_stale"] and "no complete scan in the last 90 days" in never[0].evidence


def test_portal_starts_are_spread_over_the_window_in_a_new_order_each_time() -> None:
    urls = [f"https://p{i}.dongnai.gov.vn/" for i in range(40)]
    first = spread_starts(urls, 3600, random.Random(1))
    second = spread_starts(urls, 3600, random.Random(2))
    assert set(first) == set(urls)
    offsets = sorted(first.values())
    assert 0 <= offsets[0] < 90 and offsets[-1] < 3600
    assert all(90 * i <= offset < 90 * (i + 1) for i, offset in enumerate(offsets))  # one in each 90 s part
    assert sorted(first, key=first.__getitem__) != sorted(second, key=second.__getitem__)
    assert spread_starts(urls, 0, random.Random(1)) == {}
