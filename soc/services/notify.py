"""The change e-mail after a scan: gather what the run changed from the store, send it, audit the delivery."""

from __future__ import annotations

import time
from collections.abc import Callable

from soc.core.models import StoredFinding
from soc.findings.sla import SlaState
from soc.notify.mail import ChangeSummary, DeliveryReport, change_message, send_message
from soc.scan.pipeline import ScanReport
from soc.services.context import ServiceContext
from soc.store.query import FindingQuery


def change_summary(context: ServiceContext, report: ScanReport) -> ChangeSummary:
    """What the run of `report` changed, each finding as the store holds it now, and every finding past its
    SLA deadline now (of any portal: the backlog the recipients answer for)."""
    store = context.backend.findings
    run = store.get_run(report.run.id) or report.run
    seen = {finding.fingerprint: finding for finding in store.run_findings(run.id)}

    def stored(fingerprints: list[str]) -> list[StoredFinding]:
        found = (seen.get(fingerprint) or store.finding(fingerprint) for fingerprint in dict.fromkeys(fingerprints))
        return [finding for finding in found if finding is not None]

    def changed(kind: str) -> list[StoredFinding]:
        return stored([fingerprint for portal in report.portals for fingerprint in getattr(portal.changes, kind)])

    breaches = store.query_findings(FindingQuery(sla_states=(SlaState.BREACHED.value,), now=context.clock.now()))
    return ChangeSummary(
        run_id=run.id, inventory=run.inventory, started_at=run.started_at, finished_at=run.finished_at,
        run_status=run.status, portals_scanned=len(report.portals), portal_count=run.portal_count,
        new=changed("new"), reopened=changed("reopened"), resolved=changed("resolved"), breaches=breaches.items,
    )


def send_change_email(context: ServiceContext, report: ScanReport,
                      sleep: Callable[[float], None] = time.sleep) -> DeliveryReport:
    """Send the change e-mail of the run to `settings.smtp.recipients`, audited as `notify.change_email`.

    Delivery problems do not raise: the returned report says what failed (the job records it). Settings
    that cannot make a message (a sender that is not an address) raise MailSettingsError.
    """
    settings = context.settings.smtp
    summary = change_summary(context, report)
    message = change_message(summary, settings, context.clock.now())
    delivery = send_message(message, settings, sleep=sleep)
    context.audit("notify.change_email", report.run.id, after={
        "delivered": delivery.delivered, "attempts": delivery.attempts, "recipients": len(delivery.recipients),
        "refused": len(delivery.refused), "verdict": summary.verdict.value, "message_id": message["Message-ID"],
    }, note="; ".join(delivery.errors) or None)
    return delivery
