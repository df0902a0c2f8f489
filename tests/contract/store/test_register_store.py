"""The RegisterStore contract: imports of systems and coverage, and the bitemporal reads, on every backend."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from soc.compliance.history import FieldChange
from soc.compliance.models import ApprovalStatus, CoverageRecord, SystemRecord
from soc.core.clock import FixedClock, start_of_day
from soc.core.errors import ProblemsError
from soc.store import Backend, RegisterStore

DAY = timedelta(days=1)


def system(key: str, name: str = "Hệ thống", agency: str = "stp", **values: Any) -> SystemRecord:
    return SystemRecord(id=key, name=name, agency=agency, **values)


def approved(key: str, level: int = 3, decided: date | None = None, **values: Any) -> SystemRecord:
    return system(key, status=ApprovalStatus.APPROVED, approved_level=level, decision_date=decided, **values)


def coverage(agency: str, total: int, protected: int, as_of: date | None = None) -> CoverageRecord:
    return CoverageRecord(agency=agency, total_computers=total, protected=protected, reporting_to_ncsc=protected // 2,
                          as_of=as_of)


def as_of(register: RegisterStore, moment: datetime, known_at: datetime | None = None) -> dict[str, SystemRecord]:
    records = register.systems_as_of(moment, known_at)
    assert len(records) == len({r.id for r in records})  # one version of a system at a moment
    return {r.id: r for r in records}


def test_added_changed_unchanged_and_systems_not_in_the_file_stay(backend: Backend, clock: FixedClock) -> None:
    register = backend.register
    first = register.apply_systems([system("HT1", "Văn bản"), system("HT2", "Một cửa")], "lan", "a.xlsx")
    assert (first.added, first.changed, first.unchanged, first.fields) == (["HT1", "HT2"], [], [], [])
    clock.advance(DAY)
    same = register.apply_systems([system("HT1", "Văn bản")], "lan", "b.xlsx")
    assert (same.added, same.changed, same.unchanged) == ([], [], ["HT1"])
    clock.advance(DAY)
    changes = register.apply_systems([system("HT1", "Văn bản điện tử"), system("HT3", "Cổng", agency="syt")], "minh",
                                     "c.xlsx")
    assert (changes.added, changes.changed, changes.unchanged) == (["HT3"], ["HT1"], [])
    assert changes.fields == [FieldChange(key="HT1", field="name", old="Văn bản", new="Văn bản điện tử")]
    now = as_of(register, clock.now())
    assert {key: r.name for key, r in now.items()} == {"HT1": "Văn bản điện tử", "HT2": "Một cửa", "HT3": "Cổng"}
    before = as_of(register, clock.now() - timedelta(hours=1))
    assert {key: r.name for key, r in before.items()} == {"HT1": "Văn bản", "HT2": "Một cửa"}
    assert register.systems_as_of(clock.now() - 3 * DAY) == []
    history = register.system_history("HT1")
    assert [(e.source, e.actor, e.valid_to is None) for e in history] == [("a.xlsx", "lan", False),
                                                                           ("c.xlsx", "minh", True)]
    assert history[0].valid_to == history[1].valid_from == clock.now()
    # the part of the first version that stays believed is written again, bounded, when it is split
    assert history[0].recorded_at == history[1].recorded_at == clock.now()
    assert {c.field for c in history[0].changes} == {"id", "name", "agency", "status", "in_operation",
                                                     "environment", "handles_admin_procedures", "layers"}
    assert history[1].changes == changes.fields
    assert register.system_history("HT9") == []


def test_a_fact_of_its_own_dates_a_new_system_back(backend: Backend, clock: FixedClock) -> None:
    register = backend.register
    decided = date(2026, 5, 15)
    changes = register.apply_systems([approved("HT1", decided=decided), system("HT2")], "lan", "a.xlsx")
    assert changes.backdated == {"HT1": decided}
    assert set(as_of(register, start_of_day(decided))) == {"HT1"}
    assert register.systems_as_of(start_of_day(decided) - timedelta(microseconds=1)) == []
    assert register.system_history("HT1")[0].valid_from == start_of_day(decided)
    assert register.system_history("HT2")[0].valid_from == clock.now()


def test_an_effective_date_places_the_version(backend: Backend, clock: FixedClock) -> None:
    register = backend.register
    october = datetime(2026, 10, 1, 0, 0, tzinfo=clock.now().tzinfo)
    register.apply_systems([system("HT1", "A")], "lan", "a.xlsx", at=october)
    assert set(as_of(register, october)) == {"HT1"}
    assert register.systems_as_of(october - timedelta(microseconds=1)) == []
    # a file dated before everything known of the system is placed before it: history kept, not rewritten
    august = october - timedelta(days=61)
    changes = register.apply_systems([system("HT1", "Old name")], "lan", "old.xlsx", at=august)
    assert changes.changed == ["HT1"]
    assert as_of(register, august)["HT1"].name == "Old name"
    assert as_of(register, october)["HT1"].name == "A"
    assert [(e.valid_from, e.valid_to, e.source) for e in register.system_history("HT1")] == [
        (august, october, "old.xlsx"), (october, None, "a.xlsx")]


def test_a_change_splits_the_version_in_force(backend: Backend, clock: FixedClock) -> None:
    register = backend.register
    start = clock.now() - 30 * DAY
    register.apply_systems([system("HT1", "A")], "lan", "a.xlsx", at=start)
    middle = start + 10 * DAY
    register.apply_systems([system("HT1", "B")], "minh", "b.xlsx", at=middle)
    history = register.system_history("HT1")
    assert [(e.valid_from, e.valid_to, e.source, e.actor) for e in history] == [
        (start, middle, "a.xlsx", "lan"), (middle, None, "b.xlsx", "minh")]
    assert [as_of(register, moment)["HT1"].name for moment in (start, middle - DAY, middle, clock.now())] == [
        "A", "A", "B", "B"]
    # a correction inside the first period splits it again, leaving the later version alone
    register.apply_systems([system("HT1", "A2")], "lan", "fix.xlsx", at=start + 5 * DAY)
    assert [(e.valid_from, e.valid_to) for e in register.system_history("HT1")] == [
        (start, start + 5 * DAY), (start + 5 * DAY, middle), (middle, None)]
    assert [as_of(register, moment)["HT1"].name for moment in (start, start + 6 * DAY, middle)] == ["A", "A2", "B"]


def test_as_known_at_an_earlier_moment_is_not_changed_by_a_later_correction(backend: Backend,
                                                                           clock: FixedClock) -> None:
    register = backend.register
    effective = clock.now() - 20 * DAY
    register.apply_systems([system("HT1", status=ApprovalStatus.SUBMITTED)], "lan", "wrong.xlsx", at=effective)
    sent = clock.now()  # a report was sent then
    clock.advance(timedelta(hours=1))
    register.apply_systems([approved("HT1", level=2)], "lan", "right.xlsx", at=effective)
    later = clock.now()
    clock.advance(timedelta(hours=1))
    moment = effective + DAY
    assert as_of(register, moment)["HT1"].status is ApprovalStatus.APPROVED
    assert as_of(register, moment, known_at=later)["HT1"].status is ApprovalStatus.APPROVED
    assert as_of(register, moment, known_at=sent)["HT1"].status is ApprovalStatus.SUBMITTED
    assert as_of(register, moment, known_at=sent + timedelta(minutes=59))["HT1"].status is ApprovalStatus.SUBMITTED
    assert register.systems_as_of(moment, known_at=sent - timedelta(seconds=1)) == []  # not yet imported then
    assert [e.source for e in register.system_history("HT1")] == ["right.xlsx"]  # believed now


def test_a_file_dated_in_the_future_is_refused_whole(backend: Backend, clock: FixedClock) -> None:
    register = backend.register
    register.apply_systems([system("HT1", "A")], "lan", "a.xlsx")
    register.apply_coverage([coverage("stp", 10, 5)], "lan", "c.xlsx")
    history = register.system_history("HT1")
    with pytest.raises(ProblemsError, match="in the future"):
        register.apply_systems([system("HT1", "B"), system("HT2")], "lan", "b.xlsx", at=clock.now() + DAY)
    with pytest.raises(ProblemsError, match="in the future"):
        register.apply_coverage([coverage("syt", 3, 3), coverage("stp", 10, 10, as_of=(clock.now() + 2 * DAY).date())],
                                "lan", "d.xlsx")
    clock.advance(3 * DAY)
    assert {k: r.name for k, r in as_of(register, clock.now()).items()} == {"HT1": "A"}
    assert [(c.agency, c.protected) for c in register.coverage_as_of(clock.now())] == [("stp", 5)]
    assert register.system_history("HT1") == history


def test_a_problem_of_one_record_refuses_the_whole_file(backend: Backend, clock: FixedClock) -> None:
    register = backend.register
    register.apply_systems([system("HT1", "A")], "lan", "a.xlsx")

    def finish(key: str, data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        return data, ([f"{key}: refused"] if data["name"] == "bad" else [])

    with pytest.raises(ProblemsError) as refused:
        register.apply_systems([system("HT1", "B"), system("HT2", "bad"), system("HT3")], "lan", "b.xlsx",
                               finish=finish)
    assert refused.value.problems == ["HT2: refused"]
    assert {k: r.name for k, r in as_of(register, clock.now()).items()} == {"HT1": "A"}
    completed = register.apply_systems([system("HT4", "x")], "lan", "c.xlsx",
                                       finish=lambda key, data: (data | {"name": "done " + key}, []))
    assert completed.added == ["HT4"] and as_of(register, clock.now())["HT4"].name == "done HT4"


def test_columns_the_file_lacks_keep_the_stored_values(backend: Backend, clock: FixedClock) -> None:
    register = backend.register
    register.apply_systems([approved("HT1", level=3, decided=date(2026, 5, 15), requirements="met")], "lan",
                           "full.xlsx")
    clock.advance(DAY)
    changes = register.apply_systems([system("HT1", "Tên mới", status=ApprovalStatus.APPROVED)], "lan", "names.xlsx",
                                     present={"id", "name", "agency", "status"})
    assert changes.changed == ["HT1"] and [c.field for c in changes.fields] == ["name"]
    stored = as_of(register, clock.now())["HT1"]
    assert (stored.name, stored.approved_level, stored.decision_date, stored.requirements) == (
        "Tên mới", 3, date(2026, 5, 15), "met")
    # a nested column: only that layer is set
    register.apply_systems([system("HT1", layers={"monitoring": True})], "lan", "layers.xlsx",
                           present={"id", "layers.monitoring"})
    stored = as_of(register, clock.now())["HT1"]
    assert (stored.name, stored.layers.monitoring, stored.layers.on_site_team, stored.approved_level) == (
        "Tên mới", True, False, 3)
    # a present column, even blank, sets the value
    register.apply_systems([system("HT1", "Tên mới", status=ApprovalStatus.RETURNED)], "lan", "w.xlsx",
                           present={"id", "name", "status", "approved_level"})
    stored = as_of(register, clock.now())["HT1"]
    assert (stored.status, stored.approved_level, stored.decision_date) == (ApprovalStatus.RETURNED, None,
                                                                            date(2026, 5, 15))


def test_coverage_imports_and_reads(backend: Backend, clock: FixedClock) -> None:
    register = backend.register
    nov_20 = date(2026, 11, 20)
    first = register.apply_coverage([coverage("stp", 100, 80, as_of=nov_20), coverage("syt", 50, 10)], "lan",
                                    "cov.xlsx")
    assert (first.added, first.changed) == (["stp", "syt"], [])
    assert first.backdated == {}  # coverage dated by its own "as of": effective then, not backdated past it
    assert {c.agency for c in register.coverage_as_of(start_of_day(nov_20))} == {"stp"}
    assert {c.agency for c in register.coverage_as_of(clock.now())} == {"stp", "syt"}
    sent = clock.now()
    clock.advance(DAY)
    again = register.apply_coverage([coverage("stp", 100, 90, as_of=date(2026, 11, 25)), coverage("syt", 50, 10)],
                                    "lan", "cov2.xlsx")
    assert (again.changed, again.unchanged) == (["stp"], ["syt"])
    assert {c.agency: c.protected for c in register.coverage_as_of(clock.now())} == {"stp": 90, "syt": 10}
    assert {c.agency: c.protected for c in register.coverage_as_of(start_of_day(date(2026, 11, 24)))} == {"stp": 80}
    assert {c.agency: c.protected for c in register.coverage_as_of(clock.now(), known_at=sent)} == {"stp": 80,
                                                                                                  "syt": 10}
    at = clock.now() - timedelta(hours=2)
    dated = register.apply_coverage([coverage("ubnd", 5, 5)], "lan", "cov3.xlsx", at=at)
    assert dated.added == ["ubnd"]
    assert register.coverage_as_of(at - timedelta(microseconds=1), known_at=None) != []  # stp and syt only
    assert "ubnd" not in {c.agency for c in register.coverage_as_of(at - timedelta(microseconds=1))}
    assert "ubnd" in {c.agency for c in register.coverage_as_of(at)}
    kept = {c.agency: c for c in register.coverage_as_of(clock.now())}
    assert kept["stp"] == coverage("stp", 100, 90, as_of=date(2026, 11, 25))


def test_data_since(backend: Backend, clock: FixedClock) -> None:
    register = backend.register
    assert register.data_since() == {}
    register.apply_systems([approved("HT1", decided=date(2026, 5, 15)), system("HT2", agency="syt")], "lan", "a.xlsx")
    first = clock.now()
    clock.advance(DAY)
    register.apply_coverage([coverage("syt", 5, 5, as_of=date(2026, 3, 1)), coverage("ubnd", 1, 1)], "lan", "c.xlsx")
    since = register.data_since()
    assert since == {"stp": start_of_day(date(2026, 5, 15)), "syt": start_of_day(date(2026, 3, 1)),
                     "ubnd": clock.now()}
    assert register.data_since(known_at=first) == {"stp": start_of_day(date(2026, 5, 15)), "syt": first}
    assert register.data_since(known_at=first - timedelta(seconds=1)) == {}
