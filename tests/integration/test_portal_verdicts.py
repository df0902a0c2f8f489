"""What the store says a window of portal assessments means for the portal KPIs, against the definition."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from soc.compliance.kpi import PortalVerdicts
from soc.core.models import PortalScan
from soc.store.protocols import Backend
from tests.conftest import NOW

FULL = {"tls": True, "http": True, "label": True, "ports": True}


def definition(scans: list[PortalScan], start: datetime, end: datetime) -> PortalVerdicts:
    """The portal KPIs' reading of the assessments, as models: assessed = some assessment with TLS and HTTP
    complete; labelled = the newest one with a label verdict (of the same instant, the one stored last) says valid."""
    window = [s for s in sorted(scans, key=lambda s: s.recorded_at) if start <= s.recorded_at <= end]  # stable sort
    newest: dict[str, bool] = {}
    for scan in window:
        if scan.label_valid is not None:
            newest[scan.portal_url] = scan.label_valid
    return PortalVerdicts(
        assessed=frozenset(s.portal_url for s in window if s.collectors.get("tls") and s.collectors.get("http")),
        labelled=frozenset(url for url, valid in newest.items() if valid))


def record(backend: Backend, url: str, at: datetime, collectors: dict[str, bool], label: bool | None) -> PortalScan:
    """One assessment, in a run of its own (two assessments of a portal at one instant come from two runs)."""
    store = backend.findings
    run = store.begin_run("inventory.yaml", 1)
    scan = PortalScan(run_id=run.id, portal_url=url, recorded_at=at, collectors=collectors, label_valid=label)
    store.record_portal(run.id, url, [], [], scan)
    store.finish_run(run.id, complete=True)
    return scan


def test_verdicts_of_a_window(backend: Backend) -> None:
    a, b, c, d, e, f = (f"https://{name}.dongnai.gov.vn/" for name in "abcdef")
    start, end = NOW - timedelta(days=30), NOW
    record(backend, a, start, FULL, True)  # on the window's first instant: counted
    record(backend, a, end - timedelta(days=2), {"tls": True, "http": False}, False)  # the newest verdict
    record(backend, a, end - timedelta(days=1), {"tls": True}, None)  # says nothing about the label
    record(backend, b, start - timedelta(microseconds=1), FULL, True)  # before the window
    record(backend, b, end - timedelta(days=3), {"tls": True, "label": True}, True)  # no HTTP: not assessed
    record(backend, b, end + timedelta(microseconds=1), FULL, False)  # after the window
    record(backend, c, end, {"http": True, "tls": True, "ports": False}, False)  # on the last instant: counted
    record(backend, c, end, FULL, True)  # the same instant, stored last: the newest
    record(backend, d, end - timedelta(days=1), {"compliance": True}, None)  # not a portal: nothing to say
    record(backend, e, end - timedelta(days=5), {"tls": False, "http": True}, True)
    record(backend, e, end - timedelta(days=4), {"tls": True}, None)
    record(backend, f, end - timedelta(days=1), {"tls": True, "http": True}, True)
    record(backend, f, end - timedelta(days=1), {"tls": True, "http": True}, False)
    assert backend.findings.portal_verdicts(start, end) == PortalVerdicts(assessed=frozenset({a, c, f}),
                                                                          labelled=frozenset({b, c, e}))
    after = backend.findings.portal_verdicts(end + timedelta(microseconds=1), end + timedelta(days=1))
    assert after == PortalVerdicts(assessed=frozenset({b}))  # b's only verdict there says not valid
    assert backend.findings.portal_verdicts(end, start) == PortalVerdicts()


def test_verdicts_agree_with_the_definition(backend: Backend) -> None:
    rng = random.Random(30)
    portals = [f"https://p{i}.dongnai.gov.vn/" for i in range(6)]
    instants = [NOW - timedelta(hours=rng.randint(0, 240)) for _ in range(25)]  # few instants: ties happen
    scans = []
    for _ in range(120):
        collectors = {name: rng.random() < 0.7 for name in ("tls", "http", "label", "ports") if rng.random() < 0.8}
        label = rng.choice([None, True, False])
        scans.append(record(backend, rng.choice(portals), rng.choice(instants), collectors, label))
    assert len({(s.portal_url, s.recorded_at) for s in scans}) < len(scans)
    for _ in range(40):
        start, end = sorted(rng.sample(instants, 2))
        start += rng.choice([timedelta(0), timedelta(microseconds=1)])
        assert backend.findings.portal_verdicts(start, end) == definition(scans, start, end), (start, end)
    assert definition(scans, min(instants), NOW).labelled  # the data has both kinds of verdict
    assert definition(scans, min(instants), NOW).labelled != frozenset(portals)
