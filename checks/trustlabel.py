"""Trust-label (Tín nhiệm mạng) checks: a `LabelObservation` in, findings out. Pure."""

from __future__ import annotations

from datetime import date

from checks.catalogue import make_finding
from checks.tls import listed
from soc.core.clock import local_date
from soc.core.models import Finding
from soc.core.observations import LabelObservation, TrustBadge, TrustLabelStatus

"""Registry dates are Vietnamese calendar dates."""


def _names(host: str) -> set[str]:
    host = host.lower().rstrip(".")
    return {host, host.removeprefix("www.")}


def badge_matches_host(badge: TrustBadge, host: str) -> bool:
    """Was this badge issued for `host`? Image id names the host, or the slug is the host without dots.

    Both must agree when both are present; a self-hosted image without a registry link proves nothing.
    """
    names = _names(host)
    checks = []
    if badge.image_host:
        checks.append(badge.image_host.lower().rstrip(".") in names)
    if badge.slug_domain:
        checks.append(badge.slug_domain.lower() in {n.replace(".", "") for n in names})
    return bool(checks) and all(checks)


def _describe(badge: TrustBadge) -> str:
    parts = [badge.how]
    if badge.image_host:
        parts.append(f"id={badge.image_host}")
    if badge.slug:
        parts.append(f"slug={badge.slug}")
    return " ".join(parts)


def _registry_findings(obs: LabelObservation, status: TrustLabelStatus | None, today: date) -> list[Finding]:
    url = obs.portal_url
    if status is None or status.found is None:
        reason = status.error if status and status.error else "no registry source configured or reachable"
        return [make_finding(url, "trustlabel.unverified", f"badge present; registry: {reason}")]
    if status.found is False:
        return [make_finding(url, "trustlabel.unverified",
                             f"badge present but the {status.source} lists no label for {status.domain}")]
    label = (f"label {status.label_id or '?'} ({status.source}, issued {status.issued or '?'}, "
             f"level {status.level or '?'})")
    if status.status == "revoked":
        return [make_finding(url, "trustlabel.revoked", f"{label}: revoked", status.label_id or "")]
    if status.status == "expired" or (status.expires is not None and status.expires < today):
        return [make_finding(url, "trustlabel.expired", f"{label}: expired {status.expires or ''}".strip(),
                             status.label_id or "")]
    return []


def evaluate_label(obs: LabelObservation) -> list[Finding]:
    """Trust-label findings; nothing when the homepage could not be read, or was read only in part and shows no
    badge for this portal (the label is then unknown)."""
    if not obs.page_read:
        return []
    matching = [b for b in obs.badges if badge_matches_host(b, obs.host)]
    if obs.page_cut is not None and not matching:  # the badge may be in the part not read: no verdict
        return []
    if not obs.badges:
        known = obs.registry is not None and obs.registry.found
        hint = f"; the {obs.registry.source} lists a label for this domain" if known and obs.registry else ""
        return [make_finding(obs.portal_url, "trustlabel.missing", f"no Tín nhiệm mạng badge on the homepage{hint}")]
    if not matching:
        evidence = f"badge issued for another site: {listed(_describe(b) for b in obs.badges)}"
        return [make_finding(obs.portal_url, "trustlabel.domain_mismatch", evidence)]
    return _registry_findings(obs, obs.registry, local_date(obs.observed_at))


def label_slug(obs_badges: list[TrustBadge], host: str) -> str | None:
    """The registry slug to look up: from the first badge that matches the host."""
    for badge in obs_badges:
        if badge.slug and badge_matches_host(badge, host):
            return badge.slug
    return None
