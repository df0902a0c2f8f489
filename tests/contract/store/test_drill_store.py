"""The DrillStore contract: sessions, their append-only logs and corrective actions, on every backend."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from soc.core.clock import FixedClock
from soc.core.drill_records import (
    ActionStatus,
    CorrectiveAction,
    DrillEvent,
    DrillSession,
    Participant,
    SessionStatus,
)
from soc.store import Backend


def session(key: str, when: date, created: datetime, status: SessionStatus = SessionStatus.PLANNED,
            **values: Any) -> DrillSession:
    return DrillSession(id=key, scenario_id="ransomware", scenario_version=2, title_vi="Mã độc tống tiền",
                        title_en="Ransomware", scenario_text="id: ransomware\nversion: 2\n", source="scen.yaml",
                        drill_date=when, ruleset="nd85-2016", facilitator="lan",
                        participants=[Participant(name="Minh", role="lead", agency="stp", contact="m@x.vn")],
                        status=status, created_at=created, updated_at=created, target_system="HT1", target_level=3,
                        target_agency="stp", **values)


def event(session_id: str, at: datetime, kind: str = "inject", **data: Any) -> DrillEvent:
    return DrillEvent(session_id=session_id, kind=kind, real_at=at, exercise_seconds=12.5, actor="lan", data=data)


def action(key: str, session_id: str, due: date, created: datetime, **values: Any) -> CorrectiveAction:
    fields: dict[str, Any] = {"text_vi": "Cập nhật quy trình", "text_en": "Update the procedure"} | values
    return CorrectiveAction(id=key, session_id=session_id, scenario_id="ransomware", expectation_id=f"exp-{key}",
                            owner_agency="stp", due=due, created_at=created, **fields)


def test_create_and_read_a_session(backend: Backend, clock: FixedClock) -> None:
    drills = backend.drills
    kept = session("s1", date(2026, 12, 3), clock.now())
    assert drills.create_session(kept) == kept
    assert drills.session("s1") == kept
    assert drills.session("s2") is None
    with pytest.raises(ValueError):
        drills.create_session(session("s1", date(2026, 12, 4), clock.now()))
    assert drills.session("s1") == kept


def test_sessions_filters_order_and_limit(backend: Backend, clock: FixedClock) -> None:
    drills = backend.drills
    now = clock.now()
    drills.create_session(session("old", date(2026, 1, 10), now))
    drills.create_session(session("mid-a", date(2026, 6, 1), now, SessionStatus.ENDED))
    drills.create_session(session("mid-b", date(2026, 6, 1), now + timedelta(hours=1), SessionStatus.ENDED))
    drills.create_session(session("new", date(2026, 12, 1), now, SessionStatus.RUNNING))
    assert [s.id for s in drills.sessions()] == ["new", "mid-b", "mid-a", "old"]
    assert [s.id for s in drills.sessions(limit=2)] == ["new", "mid-b"]
    assert [s.id for s in drills.sessions(status=SessionStatus.ENDED)] == ["mid-b", "mid-a"]
    assert [s.id for s in drills.sessions(since=date(2026, 6, 1))] == ["new", "mid-b", "mid-a"]
    assert [s.id for s in drills.sessions(until=date(2026, 6, 1))] == ["mid-b", "mid-a", "old"]
    assert [s.id for s in drills.sessions(since=date(2026, 6, 2), until=date(2026, 12, 1))] == ["new"]
    assert drills.sessions(status=SessionStatus.PAUSED) == []


def test_append_event_numbers_the_log_and_sets_the_status(backend: Backend, clock: FixedClock) -> None:
    drills = backend.drills
    drills.create_session(session("s1", date(2026, 12, 3), clock.now()))
    drills.create_session(session("s2", date(2026, 12, 3), clock.now()))
    stored = []
    for number in range(1, 6):
        clock.advance(timedelta(minutes=1))
        status = SessionStatus.RUNNING if number == 1 else None
        stored.append(drills.append_event(event("s1", clock.now(), step=number, nested={"a": [1, "ư"]}), status))
    other = drills.append_event(event("s2", clock.now(), kind="start"), SessionStatus.PAUSED)
    assert [e.seq for e in stored] == [1, 2, 3, 4, 5] and other.seq == 1
    assert drills.events("s1") == stored
    assert [e.data["step"] for e in drills.events("s1")] == [1, 2, 3, 4, 5]
    assert drills.events("s2") == [other]
    assert drills.events("nope") == []
    kept = drills.session("s1")
    assert kept is not None and (kept.status, kept.updated_at) == (SessionStatus.RUNNING, clock.now())
    assert drills.session("s2").status is SessionStatus.PAUSED  # type: ignore[union-attr]
    with pytest.raises(KeyError):
        drills.append_event(event("nope", clock.now()))
    assert drills.events("nope") == []


def test_finish_session_keeps_actions_once(backend: Backend, clock: FixedClock) -> None:
    drills = backend.drills
    drills.create_session(session("s1", date(2026, 12, 3), clock.now(), SessionStatus.ENDED))
    now = clock.now()
    first = [action("a1", "s1", date(2027, 1, 31), now), action("a2", "s1", date(2027, 1, 15), now)]
    finished = drills.finish_session("s1", 72.5, {"items": [{"id": "x", "met": True}]}, now, first)
    assert (finished.score, finished.scorecard, finished.updated_at) == (72.5, {"items": [{"id": "x", "met": True}]},
                                                                         now)
    assert drills.session("s1") == finished
    drills.update_action("a1", status=ActionStatus.DONE, done_at=now, done_by="minh", done_note="xong")
    clock.advance(timedelta(hours=1))
    rescored = [action("a1", "s1", date(2027, 3, 1), clock.now(), text_en="changed"),
                action("a3", "s1", date(2027, 2, 1), clock.now())]
    again = drills.finish_session("s1", 80.0, {"items": []}, clock.now(), rescored)
    assert (again.score, again.updated_at) == (80.0, clock.now())
    kept = drills.actions(session_id="s1")
    assert [a.id for a in kept] == ["a2", "a1", "a3"]  # by due date; a1 once, as it was kept
    a1 = drills.action("a1")
    assert a1 is not None and (a1.due, a1.text_en, a1.status) == (date(2027, 1, 31), "Update the procedure",
                                                                  ActionStatus.DONE)
    with pytest.raises(KeyError):
        drills.finish_session("nope", 1.0, {}, clock.now(), [])


def test_actions_filters_order_and_update(backend: Backend, clock: FixedClock) -> None:
    drills = backend.drills
    now = clock.now()
    for key in ("s1", "s2"):
        drills.create_session(session(key, date(2026, 12, 3), now))
    drills.finish_session("s1", 50.0, {}, now, [action("b", "s1", date(2027, 1, 1), now),
                                                action("a", "s1", date(2027, 1, 1), now),
                                                action("c", "s1", date(2026, 12, 20), now)])
    drills.finish_session("s2", 60.0, {}, now, [action("d", "s2", date(2027, 6, 1), now,
                                                       confirm_findings=["fp1", "fp2"])])
    assert [a.id for a in drills.actions()] == ["c", "a", "b", "d"]
    assert [a.id for a in drills.actions(session_id="s2")] == ["d"]
    done = drills.update_action("a", status=ActionStatus.DONE, done_at=now, done_by="minh", done_note="đã làm")
    assert (done.status, done.done_at, done.done_by, done.done_note) == (ActionStatus.DONE, now, "minh", "đã làm")
    assert drills.action("a") == done
    confirmed = drills.update_action("c", status=ActionStatus.CONFIRMED, confirmed_at=now, confirmed_by="session:s2")
    assert (confirmed.status, confirmed.confirmed_by) == (ActionStatus.CONFIRMED, "session:s2")
    assert [a.id for a in drills.actions(status=ActionStatus.OPEN)] == ["b", "d"]
    assert [a.id for a in drills.actions(session_id="s1", status=ActionStatus.DONE)] == ["a"]
    assert drills.actions(session_id="nope") == []
    assert drills.action("d") == action("d", "s2", date(2027, 6, 1), now, confirm_findings=["fp1", "fp2"])
    assert drills.action("nope") is None
    with pytest.raises(KeyError):
        drills.update_action("nope", status=ActionStatus.DONE)
