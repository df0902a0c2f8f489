"""What the scheduler tells the API and `/healthz` about its jobs."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from soc.core.models import JobRun


class JobInfo(BaseModel):
    """One scheduled job: its schedule, its next slot and its latest runs."""

    name: str
    description: str
    """What it does (Vietnamese)."""
    description_en: str
    schedule: str
    """Its cron expression (or, for a trigger given in code, the trigger's description)."""
    next_run: datetime | None = None
    """Its next slot (None: the scheduler is not running)."""
    running: bool = False
    """A run of it is going now."""
    last_run: JobRun | None = None
    last_success: datetime | None = None
    """When its latest successful run finished."""
