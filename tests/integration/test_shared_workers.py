"""Two `soc worker` processes, each with its own SQLite file (jobs, lease, history), on one search backend
(osmem-server): at the same scan slot they split the inventory by claiming batches through the store, so
every portal is scanned exactly once, and every finding keeps each of its transitions."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from soc.core.clock import SYSTEM_CLOCK
from soc.core.settings import StoreSettings
from soc.lab import PortalLab
from soc.store import open_backend

SOC = str(Path(sys.executable).parent / "soc")
NEVER = "0 3 1 1 *"
CASES = ("good", "expired", "wrong_host", "self_signed", "rsa1024", "http_bare", "legacy_tls", "label_missing")


def _inventory(lab: PortalLab, tmp_path: Path) -> tuple[Path, list[str]]:
    data = yaml.safe_load(lab.inventory_path.read_text(encoding="utf-8"))
    urls = {lab.case(name).url for name in CASES}
    data["portals"] = [portal for portal in data["portals"] if portal["url"] in urls]
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path, sorted(urls)


def _worker(tmp_path: Path, name: str, inventory: Path, settings: StoreSettings) -> subprocess.Popen[str]:
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "200", "SOC_STORE__BACKEND": "search",
           "SOC_STORE__URL": str(settings.url), "SOC_STORE__FLAVOUR": settings.flavour,
           "SOC_STORE__INDEX_PREFIX": settings.index_prefix, "SOC_STORE__CLAIM_BATCH": "1",
           "SOC_SCHEDULE__PORTAL_SCAN": "* * * * *", "SOC_SCHEDULE__SCAN_WINDOW_MINUTES": "0",
           "SOC_SCHEDULE__REGISTRY_REFRESH": NEVER, "SOC_SCHEDULE__COMPLIANCE": NEVER,
           "SOC_SCHEDULE__FRESHNESS": NEVER, "SOC_SCHEDULE__MONTHLY_REPORT": NEVER}
    env |= {key: value for key, value in os.environ.items() if key.startswith(("FAKETIME", "SOC_STORE__USERNAME",
                                                                             "SOC_STORE__PASSWORD", "SOC_STORE__CA"))}
    return subprocess.Popen([SOC, "worker", "--db", str(tmp_path / f"{name}.db"), "--inventory", str(inventory)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


@pytest.mark.lab
def test_two_workers_on_one_search_store_scan_each_portal_once_per_slot(
        lab: PortalLab, tmp_path: Path, search_settings: StoreSettings) -> None:
    inventory, urls = _inventory(lab, tmp_path)
    workers = [_worker(tmp_path, name, inventory, search_settings) for name in ("a", "b")]
    outputs: dict[int, list[str]] = {0: [], 1: []}

    def read(number: int) -> None:
        stream = workers[number].stdout
        assert stream is not None
        for line in stream:
            outputs[number].append(line)

    readers = [threading.Thread(target=read, args=(number,), daemon=True) for number in (0, 1)]
    for reader in readers:
        reader.start()
    def kill_all() -> None:
        for worker in workers:
            worker.kill()

    watchdog = threading.Timer(150, kill_all)  # bound the test in time
    watchdog.start()
    backend = open_backend(tmp_path / "reader.db", SYSTEM_CLOCK, store=search_settings)
    try:
        deadline = time.monotonic() + 140  # the next minute's slot, then the scans
        scans: list[Any] = []
        while time.monotonic() < deadline:
            runs = [run for run in backend.findings.list_runs(limit=50) if run.status.value != "running"]
            scans = [scan for run in runs for scan in backend.findings.portal_scans(run.id)]
            if len({scan.portal_url for scan in scans}) == len(urls) and all(
                    any("portal_scan" in line for line in outputs[number]) for number in (0, 1)):
                break
            time.sleep(0.5)
        text = "".join(outputs[0]) + "\n----\n" + "".join(outputs[1])
        per_portal = Counter(scan.portal_url for scan in scans)
        assert sorted(per_portal) == urls, text
        assert set(per_portal.values()) == {1}, (per_portal, text)  # each portal once in the slot
        runs = backend.findings.list_runs(limit=50, exclude=("ops", "compliance"))  # health checks, compliance
        assert len(runs) == len(urls) and all(run.portal_count == 1 for run in runs)  # one batch = one portal
        # both workers took part: each printed its portal_scan run as a success
        for number in (0, 1):
            assert any("portal_scan" in line and "success" in line.lower() for line in outputs[number]), text
        # no transition lost: every finding has exactly its one 'opened' event, and the findings of every portal
        findings = backend.findings.list_findings()
        assert findings and {finding.portal_url for finding in findings} <= set(urls)
        for finding in findings:
            events = backend.findings.events(finding.fingerprint)
            assert [event.old_status for event in events] == [None], (finding.check_id, events)
        seen = {fp for run in runs for fp in (f.fingerprint for f in backend.findings.run_findings(run.id))}
        assert seen == {finding.fingerprint for finding in findings}
    finally:
        watchdog.cancel()
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()
        backend.close()
