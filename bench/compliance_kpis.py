"""Benchmark: 5,000 information systems with 24 months of history; `soc compliance --as-of` per month.

Builds the register month by month (each month a share of the systems move along the approval
workflow), then times the KPI computation for several months, in-process and through the real
`soc compliance --as-of … --json` command. Target: under 1 s per month on the embedded store.
Not part of the tests.

    .venv/bin/python -m bench.compliance_kpis [--systems 5000] [--months 24]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime
from datetime import time as clock_time
from pathlib import Path

import yaml

from soc.compliance.kpi import month_before
from soc.compliance.models import ApprovalStatus, RequirementStatus, SystemRecord
from soc.core.clock import LOCAL_ZONE, FixedClock
from soc.core.settings import Settings
from soc.inventory import load_inventory
from soc.services.compliance import kpis
from soc.services.context import ServiceContext
from soc.store import open_backend

AGENCIES = 120
FLOW = [ApprovalStatus.NOT_STARTED, ApprovalStatus.DOSSIER_DRAFTED, ApprovalStatus.SUBMITTED,
        ApprovalStatus.APPRAISED, ApprovalStatus.APPROVED]


def write_inventory(path: Path) -> None:
    agencies = [{"id": f"ag{i:03d}", "name": f"Cơ quan {i:03d}"} for i in range(AGENCIES)]
    portals = [{"url": f"https://portal{i:03d}.example.gov.vn/", "agency": f"ag{i:03d}"} for i in range(AGENCIES)]
    path.write_text(yaml.safe_dump({"agencies": agencies, "portals": portals}, allow_unicode=True), encoding="utf-8")


def month_starts(last: date, months: int) -> list[date]:
    days = [last]
    for _ in range(months - 1):
        days.append(month_before(days[-1]))
    return list(reversed(days))


def advance(record: SystemRecord, day: date, rng: random.Random) -> SystemRecord:
    step = FLOW.index(record.status) + 1 if record.status in FLOW else 0
    if step >= len(FLOW):
        met = rng.random() < 0.5
        return record.model_copy(update={"requirements": RequirementStatus.MET if met else RequirementStatus.PARTLY,
                                         "requirements_assessed": day})
    update: dict[str, object] = {"status": FLOW[step]}
    if FLOW[step] is ApprovalStatus.APPROVED:
        update |= {"approved_level": record.proposed_level, "decision_date": day,
                   "decision_number": f"{rng.randint(1, 999)}/QĐ-UBND"}
    return record.model_copy(update=update)


def build(db: Path, systems: int, months: list[date]) -> float:
    rng = random.Random(85)
    records = [SystemRecord(id=f"HT{i:05d}", name=f"Hệ thống {i}", agency=f"ag{i % AGENCIES:03d}",
                            proposed_level=rng.choice([1, 2, 2, 3, 3, 4]), in_operation=rng.random() < 0.7)
               for i in range(systems)]
    started = time.perf_counter()
    backend = open_backend(db)
    try:
        register = backend.register
        for day in months:
            records = [advance(r, day, rng) if rng.random() < 0.25 else r for r in records]
            at = datetime.combine(day, clock_time(9), LOCAL_ZONE)
            register.apply_systems(records, actor="bench", source=f"{day:%Y-%m}.xlsx", at=at)
    finally:
        backend.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", type=int, default=5000)
    parser.add_argument("--months", type=int, default=24)
    args = parser.parse_args()
    months = month_starts(date(2026, 11, 1), args.months)
    with tempfile.TemporaryDirectory(prefix="soc-bench-") as tmp:
        db, inventory_path = Path(tmp) / "register.db", Path(tmp) / "inventory.yaml"
        write_inventory(inventory_path)
        built = build(db, args.systems, months)
        with sqlite3.connect(db) as connection:
            versions = connection.execute("SELECT COUNT(*) FROM system_versions").fetchone()[0]
        print(f"{args.systems} systems x {args.months} months: {versions} versions written in {built:.1f} s")
        inventory = load_inventory(inventory_path)
        in_process, commands = [], []
        probe = [months[0], months[len(months) // 2], months[-1]]
        clock = FixedClock(datetime.combine(months[-1], clock_time(23), LOCAL_ZONE))
        with ServiceContext(Settings(db=db), open_backend(db, clock), clock, actor="bench") as context:
            for day in months:
                started = time.perf_counter()
                result = kpis(context, inventory, day)
                in_process.append(time.perf_counter() - started)
        for day in probe:
            started = time.perf_counter()
            subprocess.run([str(Path(sys.executable).parent / "soc"), "compliance", "--as-of", day.isoformat(),
                            "--json", "--inventory", str(inventory_path), "--db", str(db)],
                           check=True, stdout=subprocess.DEVNULL, timeout=120)
            commands.append(time.perf_counter() - started)
        approved = result.province.kpis[0]
    print(f"KPIs in-process, per month ({len(months)} months): median {statistics.median(in_process) * 1000:.0f} ms, "
          f"max {max(in_process) * 1000:.0f} ms")
    print("`soc compliance --as-of D --json` (whole command, Python start-up included): "
          + ", ".join(f"{d:%Y-%m}: {t:.2f} s" for d, t in zip(probe, commands, strict=True)))
    print(f"max {max(commands):.2f} s  (target < 1 s); "
          f"last month approved: {approved.numerator}/{approved.denominator}")


if __name__ == "__main__":
    main()
