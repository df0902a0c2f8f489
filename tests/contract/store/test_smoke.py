from __future__ import annotations

from datetime import timedelta

from soc.core.clock import FixedClock
from soc.core.models import Finding, FindingStatus, Observation, Severity
from soc.store import Backend


def _finding(url: str, check: str, severity: Severity = Severity.HIGH) -> Finding:
    return Finding(check_id=check, portal_url=url, severity=severity, title_vi="t", title_en="t", evidence="e",
                   remediation_vi="r", remediation_en="r")


def test_smoke(backend: Backend, clock: FixedClock) -> None:
    store = backend.findings
    url = "https://a.gov.vn/"
    run = store.begin_run("inv", 1)
    obs = [Observation(collector="tls", portal_url=url, observed_at=clock.now(), complete=True, data={"x": 1})]
    changes = store.record_portal(run.id, url, obs, [_finding(url, "tls.protocol.tls10")])
    assert len(changes.new) == 1
    store.finish_run(run.id, True)
    assert [f.status for f in store.list_findings()] == [FindingStatus.OPEN]
    clock.advance(timedelta(hours=1))
    run2 = store.begin_run("inv", 1)
    changes = store.record_portal(run2.id, url, obs, [])
    assert len(changes.resolved) == 1
    store.finish_run(run2.id, True)
    assert [f.status for f in store.list_findings()] == [FindingStatus.RESOLVED]
    assert store.run_change_counts(run2.id)["resolved"] == 1
    assert len(store.events(changes.resolved[0])) == 2
