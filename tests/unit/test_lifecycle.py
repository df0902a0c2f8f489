"""The finding lifecycle as pure rules: sightings, which observations resolve what, and what input is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from soc.core.models import Finding, FindingStatus, Observation, Severity
from soc.findings.lifecycle import (
    AUTO_RESOLVABLE,
    Sighting,
    check_portal,
    plan_sightings,
    resolves,
    resolving_prefixes,
    sighting,
    unjudged_checks,
)

PORTAL = "https://stp.dongnai.gov.vn/"
OTHER_PORTAL = "https://syt.dongnai.gov.vn/"
OBSERVED = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def finding(check_id: str = "tls.cert.expired", detail: str = "", portal: str = PORTAL) -> Finding:
    return Finding(
        portal_url=portal,
        check_id=check_id,
        severity=Severity.HIGH,
        title_vi="Chứng chỉ TLS đã hết hạn",
        title_en="TLS certificate expired",
        evidence="notAfter=2026-01-01",
        detail=detail,
    )


def observation(
    collector: str = "tls", complete: bool = True, portal: str = PORTAL, observed_at: datetime = OBSERVED
) -> Observation:
    return Observation(collector=collector, portal_url=portal, observed_at=observed_at, complete=complete)


# --- sighting -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (None, Sighting.NEW),
        (FindingStatus.RESOLVED, Sighting.REOPENED),
        (FindingStatus.OPEN, Sighting.STILL_OPEN),
        (FindingStatus.ACKNOWLEDGED, Sighting.STILL_OPEN),
        (FindingStatus.FALSE_POSITIVE, Sighting.STILL_OPEN),
        (FindingStatus.RISK_ACCEPTED, Sighting.STILL_OPEN),
    ],
)
def test_sighting(current: FindingStatus | None, expected: Sighting) -> None:
    assert sighting(current) is expected


@pytest.mark.parametrize("current", sorted(set(FindingStatus) - {FindingStatus.RESOLVED}))
def test_sighting_of_any_unresolved_status_keeps_it_open(current: FindingStatus) -> None:
    """Triage stands: only a resolved finding changes when seen again."""
    assert sighting(current) is Sighting.STILL_OPEN


# --- plan_sightings -------------------------------------------------------------------------------------------


def test_plan_sightings_sorts_by_transition_keeping_order() -> None:
    fresh_1 = finding(detail="fresh-1")
    fresh_2 = finding(detail="fresh-2")
    back = finding(detail="back")
    triaged = finding(detail="triaged")
    open_ = finding(detail="open")
    known = {
        back.fingerprint: FindingStatus.RESOLVED,
        triaged.fingerprint: FindingStatus.FALSE_POSITIVE,
        open_.fingerprint: FindingStatus.OPEN,
        finding(detail="not seen").fingerprint: FindingStatus.OPEN,
    }

    plan = plan_sightings([fresh_1, open_, back, fresh_2, triaged], known)

    assert plan.new == [fresh_1, fresh_2]
    assert plan.reopened == [back]
    assert plan.still_open == [open_, triaged]


def test_plan_sightings_of_nothing_is_empty() -> None:
    plan = plan_sightings([], {finding().fingerprint: FindingStatus.OPEN})
    assert (plan.new, plan.reopened, plan.still_open) == ([], [], [])


def test_plan_sightings_with_empty_store_is_all_new() -> None:
    seen = [finding(detail=str(i)) for i in range(3)]
    plan = plan_sightings(iter(seen), {})
    assert plan.new == seen
    assert (plan.reopened, plan.still_open) == ([], [])


# --- resolving_prefixes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("observations", "expected"),
    [
        ([], ()),
        ([observation("tls")], ("tls.",)),
        ([observation("tls", complete=False)], ()),
        ([observation("http"), observation("tls")], ("http.", "tls.")),
        ([observation("http", complete=False), observation("tls")], ("tls.",)),
        ([observation("label")], ("trustlabel.",)),
        ([observation("ports")], ("ports.",)),
        ([observation("compliance")], ("approval.", "malware.")),
        ([observation("tls"), observation("tls")], ("tls.",)),
        ([observation("ports"), observation("http"), observation("compliance")],
         ("approval.", "http.", "malware.", "ports.")),
    ],
)
def test_resolving_prefixes(observations: list[Observation], expected: tuple[str, ...]) -> None:
    assert resolving_prefixes(observations) == expected


@pytest.mark.parametrize("complete", [True, False])
def test_resolving_prefixes_refuses_unknown_collector(complete: bool) -> None:
    """A typo must not silently resolve nothing (or everything), even in an incomplete observation."""
    with pytest.raises(ValueError, match="unknown collector 'tsl'"):
        resolving_prefixes([observation("tls"), observation("tsl", complete=complete)])


# --- resolves -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [FindingStatus.FALSE_POSITIVE, FindingStatus.RESOLVED])
@pytest.mark.parametrize("check_id", ["tls.cert.expired", "http.hsts.missing"])
def test_resolves_never_for_false_positive_or_resolved(status: FindingStatus, check_id: str) -> None:
    assert resolves(check_id, status, ("tls.", "http.")) is False


@pytest.mark.parametrize("status", [FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED, FindingStatus.RISK_ACCEPTED])
@pytest.mark.parametrize(
    ("check_id", "prefixes", "expected"),
    [
        ("tls.cert.expired", ("tls.",), True),
        ("tls.cert.expired", ("http.", "tls."), True),
        ("approval.missing", ("approval.", "malware."), True),
        ("malware.detected", ("approval.", "malware."), True),
        ("http.hsts.missing", ("tls.",), False),
        ("tls.cert.expired", (), False),
        ("tlsx.cert.expired", ("tls.",), False),
        ("trustlabel.invalid", ("tls.",), False),
    ],
)
def test_resolves_resolvable_status_only_under_a_prefix(
    status: FindingStatus, check_id: str, prefixes: tuple[str, ...], expected: bool
) -> None:
    assert resolves(check_id, status, prefixes) is expected


def test_resolves_accepts_a_list_of_prefixes() -> None:
    assert resolves("ports.open.23", FindingStatus.OPEN, ["tls.", "ports."]) is True


# --- unjudged checks --------------------------------------------------------------------------------------------


def unjudging(collector: str, *unjudged: str, complete: bool = True) -> Observation:
    return Observation(collector=collector, portal_url=PORTAL, observed_at=OBSERVED, complete=complete,
                       unjudged=list(unjudged))


@pytest.mark.parametrize(
    ("observations", "expected"),
    [
        ([], ()),
        ([observation("tls")], ()),
        ([unjudging("tls", "tls.cert.revoked")], ("tls.cert.revoked",)),
        ([unjudging("tls", "tls.cert.revoked"), unjudging("http", "http.hsts.")], ("http.hsts.", "tls.cert.revoked")),
        ([unjudging("tls", "tls.cert.revoked", "tls.cert.revoked")], ("tls.cert.revoked",)),
    ],
)
def test_unjudged_checks_are_gathered(observations: list[Observation], expected: tuple[str, ...]) -> None:
    assert unjudged_checks(observations) == expected


@pytest.mark.parametrize(
    ("check_id", "expected"),
    [
        ("tls.cert.revoked", False),          # the check the observation could not judge: left as it is
        ("tls.cert.expired", True),           # everything else the complete observation speaks for resolves
        ("tls.cert.revoked_soon", True),      # an id, not a prefix: a longer id is another check
        ("tls.protocol.tls10", True),
    ],
)
def test_an_unjudged_check_is_not_resolved_by_a_complete_observation(check_id: str, expected: bool) -> None:
    observations = [unjudging("tls", "tls.cert.revoked")]
    prefixes, unjudged = resolving_prefixes(observations), unjudged_checks(observations)
    assert resolves(check_id, FindingStatus.OPEN, prefixes, unjudged) is expected


def test_an_unjudged_prefix_covers_its_checks() -> None:
    assert resolves("http.hsts.missing", FindingStatus.OPEN, ("http.",), ("http.hsts.",)) is False
    assert resolves("http.hstsx", FindingStatus.OPEN, ("http.",), ("http.hsts.",)) is True


def test_check_portal_refuses_unjudged_checks_of_another_collector() -> None:
    check_portal(PORTAL, [unjudging("tls", "tls.cert.revoked")], [])
    with pytest.raises(ValueError, match=r"observation 'tls' leaves \['http.hsts.missing'\] unjudged"):
        check_portal(PORTAL, [unjudging("tls", "http.hsts.missing")], [])


def test_auto_resolvable_statuses() -> None:
    assert frozenset({FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED, FindingStatus.RISK_ACCEPTED}) == AUTO_RESOLVABLE


# --- check_portal ---------------------------------------------------------------------------------------------


def test_check_portal_accepts_own_input() -> None:
    check_portal(PORTAL, [observation("tls"), observation("http", complete=False)], [finding(), finding("http.x")])
    check_portal(PORTAL, [], [])


def test_check_portal_refuses_foreign_finding() -> None:
    with pytest.raises(ValueError, match=r"\['https://syt\.dongnai\.gov\.vn/'\] passed for portal") as info:
        check_portal(PORTAL, [observation()], [finding(), finding(portal=OTHER_PORTAL)])
    assert repr(PORTAL) in str(info.value)


def test_check_portal_refuses_foreign_observation() -> None:
    with pytest.raises(ValueError, match=r"\['https://syt\.dongnai\.gov\.vn/'\] passed for portal"):
        check_portal(PORTAL, [observation(portal=OTHER_PORTAL)], [finding()])


def test_check_portal_names_every_foreign_portal_sorted() -> None:
    third = "https://a.dongnai.gov.vn/"
    with pytest.raises(ValueError) as info:
        check_portal(PORTAL, [observation(portal=OTHER_PORTAL)], [finding(portal=third)])
    assert f"{sorted([third, OTHER_PORTAL])}" in str(info.value)


def test_check_portal_refuses_naive_observed_at() -> None:
    naive = observation("http", observed_at=datetime(2026, 11, 27, 9, 0))
    with pytest.raises(ValueError, match="observation 'http' has a naive observed_at"):
        check_portal(PORTAL, [observation("tls"), naive], [])


def test_check_portal_refuses_unknown_collector() -> None:
    with pytest.raises(ValueError, match="unknown collector 'nope'"):
        check_portal(PORTAL, [observation("nope", complete=False)], [])
