"""Benchmark: the monthly report for 500 portals and 1,000 information systems (generated, in a temporary store).

Writes a register (October, then November with a share of systems moving along the approval workflow),
anti-malware coverage per agency, two complete assessments per portal (20 October, 20 November, each with
a TLS observation and findings for some portals), then times `soc.services.reports.monthly_data` for
November and `render_pdf` separately. No network. Target: under 10 s in all. Not part of the tests.

    .venv/bin/python -m bench.monthly_report [--portals 500] [--systems 1000] [--out PDF]
"""

from __future__ import annotations

import argparse
import io
import random
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import yaml
from pypdf import PdfReader

from soc.compliance.models import ApprovalStatus, CoverageRecord, SystemRecord
from soc.core.clock import LOCAL_ZONE, FixedClock
from soc.core.models import Finding, Observation, PortalScan, Severity
from soc.core.observations import CertificateInfo, TlsObservation
from soc.core.settings import Settings
from soc.inventory import load_inventory
from soc.services import reports
from soc.services.context import open_context

AGENCIES = 100
GRADES = ("A+", "A", "A", "A-", "B", "B", "C", "F", "T")


def write_inventory(path: Path, portals: int) -> None:
    agencies = [{"id": f"ag{i:03d}", "name": f"Cơ quan số {i:03d}"} for i in range(AGENCIES)]
    items = [{"url": f"https://portal{i:04d}.example.gov.vn/", "agency": f"ag{i % AGENCIES:03d}",
              "name": f"Cổng thông tin {i:04d}"} for i in range(portals)]
    path.write_text(yaml.safe_dump({"agencies": agencies, "portals": items}, allow_unicode=True), encoding="utf-8")


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 9, tzinfo=LOCAL_ZONE)


def _tls(url: str, at: datetime, expires: datetime) -> Observation:
    leaf = CertificateInfo(subject=f"CN={url.split('/')[2]}", issuer="CN=Bench CA", serial="01", sha256="ab" * 32,
                           not_before=expires - timedelta(days=365), not_after=expires, key_type="RSA",
                           key_size=2048, signature_hash="sha256", self_signed=False, pem="-" * 1500)
    data = TlsObservation(portal_url=url, host=url.split("/")[2], port=443, address=None, observed_at=at,
                          chain=[leaf]).model_dump(mode="json")
    return Observation(collector="tls", portal_url=url, observed_at=at, complete=True, data=data)


def build(db: Path, inventory_path: Path, systems: int, clock: FixedClock) -> None:
    rng = random.Random(2026)
    inventory = load_inventory(inventory_path)
    records = [SystemRecord(id=f"HT{i:05d}", name=f"Hệ thống thông tin {i}", agency=f"ag{i % AGENCIES:03d}",
                            proposed_level=rng.choice([1, 2, 2, 3, 4]), in_operation=True) for i in range(systems)]
    with open_context(Settings(db=db), clock, "bench") as context:
        register, store = context.backend.register, context.backend.findings
        clock.advance(_at(date(2026, 11, 25)) - clock.now())  # the register refuses facts dated in the future
        for month in (10, 11):
            at = _at(date(2026, month, 1))
            records = [r.model_copy(update={"status": ApprovalStatus.APPROVED, "approved_level": r.proposed_level,
                                            "decision_date": at.date(), "decision_number": "1/QĐ"})
                       if rng.random() < 0.3 else r for r in records]
            register.apply_systems(records, actor="bench", source=f"2026-{month}.csv", at=at)
            total = [rng.randint(20, 400) for _ in range(AGENCIES)]
            register.apply_coverage([CoverageRecord(agency=f"ag{i:03d}", total_computers=t, protected=t,
                                                    reporting_to_ncsc=t - rng.randint(0, 5))
                                     for i, t in enumerate(total)], actor="bench", source="pcmd.csv", at=at)
        for month in (10, 11):
            clock.advance(_at(date(2026, month, 20)) - clock.now())
            run = store.begin_run("bench", len(inventory.portals))
            for portal in inventory.portals:
                at = clock.now()
                expires = at + timedelta(days=rng.randint(5, 400))
                findings = [Finding(portal_url=portal.url, check_id="tls.protocol_tls10", severity=Severity.HIGH,
                                    title_vi="Còn bật TLS 1.0", title_en="TLS 1.0 enabled", evidence="bench")
                            ] if rng.random() < 0.2 else []
                observations = [_tls(portal.url, at, expires),
                                Observation(collector="http", portal_url=portal.url, observed_at=at, complete=True),
                                Observation(collector="label", portal_url=portal.url, observed_at=at, complete=True)]
                store.record_portal(run.id, portal.url, observations, findings, PortalScan(
                    run_id=run.id, portal_url=portal.url, recorded_at=at,
                    collectors={"tls": True, "http": True, "label": True}, tls_grade=rng.choice(GRADES),
                    score=rng.randint(20, 100), label_valid=rng.random() < 0.7))
            store.finish_run(run.id, complete=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--portals", type=int, default=500)
    parser.add_argument("--systems", type=int, default=1000)
    parser.add_argument("--out", type=Path, help="Also write the PDF here (to look at it).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="soc-bench-") as tmp:
        db, inventory_path = Path(tmp) / "report.db", Path(tmp) / "inventory.yaml"
        write_inventory(inventory_path, args.portals)
        clock = FixedClock(_at(date(2026, 10, 1)))
        started = time.perf_counter()
        build(db, inventory_path, args.systems, clock)
        print(f"store: {args.portals} portals x 2 assessments, {args.systems} systems x 2 months, "
              f"written in {time.perf_counter() - started:.1f} s")
        clock.advance(_at(date(2026, 12, 2)) - clock.now())
        inventory = load_inventory(inventory_path)
        with open_context(Settings(db=db), clock, "bench", writes=False) as context:
            started = time.perf_counter()
            data = reports.monthly_data(context, inventory, date(2026, 11, 1))
            gathered = time.perf_counter() - started
        started = time.perf_counter()
        pdf = reports.render_pdf(data)
        rendered = time.perf_counter() - started
    approved = data.current.province.kpis[0]
    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    if args.out is not None:
        args.out.write_bytes(pdf)
    print(f"data (monthly_data, 11/2026): {gathered:.2f} s; PDF render: {rendered:.2f} s "
          f"({len(pdf) / 1024:.0f} KiB, {pages} pages); "
          f"total {gathered + rendered:.2f} s (target < 10 s)")
    print(f"approved {approved.numerator}/{approved.denominator}; {len(data.findings)} open high findings; "
          f"{len(data.portals.expiring)} certificates expiring; {len(data.recommendations)} recommendations")


if __name__ == "__main__":
    main()
