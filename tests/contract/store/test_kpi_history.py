"""KpiHistory and claims, on every backend: a day's figures replaced when evaluated again, filters and order;
a claim taken once."""

from __future__ import annotations

from datetime import date, timedelta

from soc.compliance.kpi import KpiSnapshot
from soc.core.clock import FixedClock
from soc.store import Backend


def _row(day: date, scope: str, kpi: str, numerator: int, clock: FixedClock) -> KpiSnapshot:
    return KpiSnapshot(as_of=day, scope=scope, kpi_id=kpi, title_vi="Tỷ lệ", title_en="Rate", kind="rate",
                       target="> 80%", target_percent=80.0, numerator=numerator, denominator=10,
                       percent=numerator * 10.0, status="met" if numerator > 8 else "not_met",
                       ruleset="nd85-2016", recorded_at=clock.now())


def test_a_day_evaluated_again_replaces_its_figures(backend: Backend, clock: FixedClock) -> None:
    kpis = backend.kpis
    day = date(2026, 11, 26)
    assert kpis.record([_row(day, "province", "approved", 7, clock), _row(day, "stp", "approved", 9, clock)]) == 2
    clock.advance(timedelta(hours=2))
    assert kpis.record([_row(day, "province", "approved", 8, clock)]) == 1
    kpis.record([_row(day + timedelta(days=1), "province", "approved", 9, clock),
                 _row(day + timedelta(days=1), "province", "assessed", 4, clock)])
    rows = kpis.history()
    assert [(r.as_of, r.scope, r.kpi_id, r.numerator) for r in rows] == [
        (day, "province", "approved", 8), (day, "stp", "approved", 9),
        (day + timedelta(days=1), "province", "approved", 9), (day + timedelta(days=1), "province", "assessed", 4)]
    assert rows[0].recorded_at == clock.now() and rows[0].percent == 80.0 and rows[0].target_percent == 80.0
    assert [r.numerator for r in kpis.history(kpi_id="approved", scope="province")] == [8, 9]
    assert [r.kpi_id for r in kpis.history(since=day + timedelta(days=1))] == ["approved", "assessed"]
    assert [r.scope for r in kpis.history(until=day)] == ["province", "stp"]
    assert kpis.record([]) == 0


def test_a_claim_is_taken_once(backend: Backend) -> None:
    store = backend.findings
    assert store.claim("portal_scan:20261127T0100Z:abc:1/2", "host-a:1") is True
    assert store.claim("portal_scan:20261127T0100Z:abc:1/2", "host-b:2") is False
    assert store.claim("portal_scan:20261127T0100Z:abc:1/2", "host-a:1") is False  # not even by its holder
    assert store.claim("portal_scan:20261127T0100Z:abc:2/2", "host-b:2") is True
