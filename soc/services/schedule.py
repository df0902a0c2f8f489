"""Schedules of the jobs: triggers, their slots, and since when each job has had its current schedule.

A trigger is an APScheduler 3 trigger (production: a cron expression of `ScheduleSettings`, in
Asia/Ho_Chi_Minh). When the scheduler gives a job a schedule it did not have, that is audited
(`job.schedule`, subject `job:<name>`); the latest such entry says since when the job has been due on
its current schedule — before it, no slot was expected (a fresh install or a changed cron is not
"missed").
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from typing import Any

from checks.ops import job_subject
from soc.core.clock import LOCAL_ZONE
from soc.services.context import ServiceContext

SCHEDULE_ACTION = "job.schedule"
MAX_SLOTS = 20_000
"""Slots of one job looked at in one check at most (a minute-by-minute cron over 14 days)."""


def cron_trigger(expression: str) -> Any:
    """The APScheduler trigger of a five-field cron expression, in local time."""
    from apscheduler.triggers.cron import CronTrigger

    return CronTrigger.from_crontab(expression, timezone=LOCAL_ZONE)


def schedule_key(trigger: Any) -> str:
    """What identifies a schedule: the trigger's fields and zone (its repr)."""
    return repr(trigger)


def fire_times(trigger: Any, start: datetime, end: datetime,
               limit: int = MAX_SLOTS) -> tuple[list[datetime], datetime | None]:
    """The trigger's slots in [start, end] (UTC, oldest first, at most `limit`: the earliest are dropped)
    and the first slot after `end` (None: there is none)."""
    slots: deque[datetime] = deque(maxlen=limit)
    moment = trigger.get_next_fire_time(None, start)
    while moment is not None and moment <= end:
        slots.append(moment.astimezone(start.tzinfo))
        moment = trigger.get_next_fire_time(moment, moment)
    return list(slots), None if moment is None else moment.astimezone(start.tzinfo)


def record_schedule(context: ServiceContext, name: str, trigger: Any, description: str) -> datetime:
    """The scheduler gives job `name` this trigger: audited when it is new or changed; since when it holds."""
    key = schedule_key(trigger)
    since = scheduled_since(context, name, trigger)
    if since is not None:
        return since
    entries = context.backend.audit.entries(action_prefix=SCHEDULE_ACTION, subject=job_subject(name), limit=1)
    before = entries[0].after if entries else None
    entry = context.audit(SCHEDULE_ACTION, job_subject(name), before=before,
                          after={"trigger": key, "schedule": description})
    return entry.at


def scheduled_since(context: ServiceContext, name: str, trigger: Any) -> datetime | None:
    """Since when job `name` has had this trigger (None: the scheduler never gave it this one)."""
    entries = context.backend.audit.entries(action_prefix=SCHEDULE_ACTION, subject=job_subject(name), limit=1)
    if not entries or entries[0].action != SCHEDULE_ACTION:
        return None
    after = entries[0].after or {}
    return entries[0].at if after.get("trigger") == schedule_key(trigger) else None


def window(now: datetime, since: datetime | None, lookback: timedelta, grace: timedelta
           ) -> tuple[datetime, datetime] | None:
    """The period whose slots must have a run by now: from the later of the schedule's start and the
    lookback, to now minus the misfire grace (None: empty)."""
    if since is None:
        return None
    start, end = max(since, now - lookback), now - grace
    return (start, end) if start <= end else None
