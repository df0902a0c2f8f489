"""What the store keeps of tabletop drills: sessions, their append-only event log, and corrective actions.

A session's state is never stored as such: it is the fold of its events over the scenario snapshot kept with
the session (`drills.engine`), so a session survives a restart and resumes exactly where it stood, and a file
edited on disk afterwards changes nothing in a running session.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SessionStatus(StrEnum):
    """Where a drill session stands."""

    PLANNED = "planned"
    RUNNING = "running"
    PAUSED = "paused"
    ENDED = "ended"


class Participant(BaseModel):
    """A person taking part, in one role of the scenario."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    role: str = Field(min_length=1, max_length=64)
    agency: str | None = Field(default=None, max_length=64)
    contact: str | None = Field(default=None, max_length=200)
    """E-mail or phone, for the communication check."""


class DrillSession(BaseModel):
    """One drill held (or being held) from one scenario."""

    id: str
    scenario_id: str
    scenario_version: int
    title_vi: str
    title_en: str
    scenario_text: str
    """The scenario's YAML as it was when the session was created (the session runs from this copy)."""
    source: str
    """Where the scenario came from (file path), for messages."""
    drill_date: date
    """The day the drill is held: the rule set in force on it gives roles and reporting deadlines."""
    ruleset: str
    facilitator: str
    participants: list[Participant] = []
    status: SessionStatus = SessionStatus.PLANNED
    created_at: datetime
    updated_at: datetime
    target_system: str | None = None
    """Register id of the target system, when the scenario names one."""
    target_level: int
    target_agency: str | None = None
    score: float | None = None
    """0–100 once ended."""
    scorecard: dict[str, Any] | None = None
    """The scoring of the ended session (drills.scoring.Scorecard as JSON)."""


class DrillEvent(BaseModel):
    """One thing that happened in a session, in order (`seq` from 1)."""

    session_id: str
    seq: int = 0
    """Set by the store."""
    kind: str
    real_at: datetime
    exercise_seconds: float
    """Where the exercise clock stood (seconds from the exercise's start)."""
    actor: str
    data: dict[str, Any] = {}


class ActionStatus(StrEnum):
    """A corrective action's progress: the owner marks it done; a later drill or scan confirms it."""

    OPEN = "open"
    DONE = "done"
    CONFIRMED = "confirmed"


class CorrectiveAction(BaseModel):
    """An improvement a drill showed is needed, owned by an agency, due on a date, tracked as a finding."""

    id: str
    session_id: str
    scenario_id: str
    expectation_id: str
    text_vi: str
    text_en: str
    owner_agency: str | None
    due: date
    status: ActionStatus = ActionStatus.OPEN
    created_at: datetime
    done_at: datetime | None = None
    done_by: str | None = None
    done_note: str | None = None
    confirmed_at: datetime | None = None
    confirmed_by: str | None = None
    """What confirmed it: `session:<id>` (a later drill met the expectation) or `finding:<fingerprint>`."""
    confirm_findings: list[str] = []
    """Fingerprints whose resolution confirms it (a scenario drafted from findings); empty: a later drill of
    the same scenario meeting the same expectation confirms it."""
