"""Drill sessions, their event log and corrective actions on SQLite."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from soc.core.drill_records import ActionStatus, CorrectiveAction, DrillEvent, DrillSession, SessionStatus
from soc.store.sqlite.schema import BEGIN_OPTION, drill_actions, drill_events, drill_sessions


def _session(row: Any) -> DrillSession:
    return DrillSession.model_validate(dict(row))


class SqliteDrillStore:
    """The `DrillStore` protocol on the backend's SQLite database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})

    def create_session(self, session: DrillSession) -> DrillSession:
        """Keep a new session (ValueError: the id is taken)."""
        with self._writer.begin() as conn:
            if conn.execute(select(drill_sessions.c.id).where(drill_sessions.c.id == session.id)).first():
                raise ValueError(f"drill session {session.id} already exists")
            conn.execute(insert(drill_sessions).values(session.model_dump(mode="json") | {
                "created_at": session.created_at, "updated_at": session.updated_at}))
        return session

    def session(self, session_id: str) -> DrillSession | None:
        """One session, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(select(drill_sessions).where(drill_sessions.c.id == session_id)).mappings().first()
        return None if row is None else _session(row)

    def sessions(self, status: SessionStatus | None = None, since: date | None = None, until: date | None = None,
                 limit: int = 200) -> list[DrillSession]:
        """Sessions, newest drill date first, optionally of one status and with since <= drill date <= until."""
        stmt = select(drill_sessions)
        if status is not None:
            stmt = stmt.where(drill_sessions.c.status == status.value)
        if since is not None:
            stmt = stmt.where(drill_sessions.c.drill_date >= since.isoformat())
        if until is not None:
            stmt = stmt.where(drill_sessions.c.drill_date <= until.isoformat())
        stmt = stmt.order_by(drill_sessions.c.drill_date.desc(), drill_sessions.c.created_at.desc()).limit(limit)
        with self._engine.connect() as conn:
            return [_session(row) for row in conn.execute(stmt).mappings()]

    def append_event(self, event: DrillEvent, status: SessionStatus | None = None) -> DrillEvent:
        """Append one event with the next seq, and the session's new status, in one transaction."""
        with self._writer.begin() as conn:
            last = conn.execute(select(func.max(drill_events.c.seq))
                                .where(drill_events.c.session_id == event.session_id)).scalar()
            stored = event.model_copy(update={"seq": (last or 0) + 1})
            values: dict[str, Any] = {"updated_at": event.real_at}
            if status is not None:
                values["status"] = status.value
            if conn.execute(update(drill_sessions).where(drill_sessions.c.id == event.session_id)
                            .values(values)).rowcount == 0:
                raise KeyError(f"no drill session {event.session_id}")
            conn.execute(insert(drill_events).values(stored.model_dump(mode="python")))
        return stored

    def events(self, session_id: str) -> list[DrillEvent]:
        """A session's events in order."""
        stmt = select(drill_events).where(drill_events.c.session_id == session_id).order_by(drill_events.c.seq)
        with self._engine.connect() as conn:
            return [DrillEvent.model_validate(dict(row)) for row in conn.execute(stmt).mappings()]

    def finish_session(self, session_id: str, score: float, scorecard: dict[str, Any], now: datetime,
                       actions: Sequence[CorrectiveAction]) -> DrillSession:
        """Keep the scoring of an ended session and its corrective actions (replacing those of an earlier scoring
        still open: a re-score never duplicates), in one transaction."""
        with self._writer.begin() as conn:
            if conn.execute(update(drill_sessions).where(drill_sessions.c.id == session_id).values(
                    score=score, scorecard=scorecard, updated_at=now)).rowcount == 0:
                raise KeyError(f"no drill session {session_id}")
            known = {row.id: row.status for row in conn.execute(
                select(drill_actions.c.id, drill_actions.c.status).where(drill_actions.c.session_id == session_id))}
            for action in actions:
                if action.id in known:
                    continue
                conn.execute(insert(drill_actions).values(action.model_dump(mode="json") | {
                    "created_at": action.created_at}))
            row = conn.execute(select(drill_sessions).where(drill_sessions.c.id == session_id)).mappings().one()
        return _session(row)

    def actions(self, session_id: str | None = None, status: ActionStatus | None = None) -> list[CorrectiveAction]:
        """Corrective actions, by due date."""
        stmt = select(drill_actions)
        if session_id is not None:
            stmt = stmt.where(drill_actions.c.session_id == session_id)
        if status is not None:
            stmt = stmt.where(drill_actions.c.status == status.value)
        stmt = stmt.order_by(drill_actions.c.due, drill_actions.c.id)
        with self._engine.connect() as conn:
            return [_action(row) for row in conn.execute(stmt).mappings()]

    def action(self, action_id: str) -> CorrectiveAction | None:
        """One corrective action, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(select(drill_actions).where(drill_actions.c.id == action_id)).mappings().first()
        return None if row is None else _action(row)

    def update_action(self, action_id: str, **values: Any) -> CorrectiveAction:
        """Change an action's columns (status, done_*, confirmed_*); KeyError when unknown."""
        values = {k: (v.value if isinstance(v, ActionStatus) else v) for k, v in values.items()}
        with self._writer.begin() as conn:
            if conn.execute(update(drill_actions).where(drill_actions.c.id == action_id).values(values)
                            ).rowcount == 0:
                raise KeyError(f"no corrective action {action_id}")
            row = conn.execute(select(drill_actions).where(drill_actions.c.id == action_id)).mappings().one()
        return _action(row)


def _action(row: Any) -> CorrectiveAction:
    return CorrectiveAction.model_validate(dict(row))
