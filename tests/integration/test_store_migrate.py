"""`soc store migrate --to search`: an embedded store copied into the search backend (osmem-server), interrupted
half-way and resumed from its checkpoint, then compared table by table (counts, checksums) and through the CLI
(`soc findings --json` answers the same on both)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from soc.compliance.models import SystemRecord
from soc.core.clock import FixedClock
from soc.core.models import Finding, Observation, PortalScan, Severity
from soc.core.settings import StoreSettings
from soc.store import open_backend
from soc.store.admin import checkpoint_path, migrate_to_search
from soc.store.search import open_indices
from soc.store.search.shapes import FINDINGS

SOC = str(Path(sys.executable).parent / "soc")
PORTALS = [f"https://p{number:02d}.dongnai.gov.vn/" for number in range(30)]
CHECKS = ["tls.protocol.tls10", "http.hsts.missing", "ports.rdp.exposed"]


def _build(db: Path, clock: FixedClock) -> None:
    """Three nightly runs over 30 portals (findings opened, kept, resolved), a register import."""
    backend = open_backend(db, clock)
    try:
        store = backend.findings
        for night in range(3):
            run = store.begin_run("inventory", len(PORTALS))
            for number, url in enumerate(PORTALS):
                checks = CHECKS[: 1 + (number + night) % 3]
                findings = [Finding(portal_url=url, check_id=check, severity=Severity.HIGH, title_vi="Lỗi",
                                    title_en="Issue", evidence=f"night {night}") for check in checks]
                observations = [Observation(collector=name, portal_url=url, observed_at=clock.now(), complete=True,
                                            data={"night": night, "text": "Sở Tư pháp"})
                                for name in ("tls", "http", "ports")]
                scan = PortalScan(run_id=run.id, portal_url=url, recorded_at=clock.now(),
                                  collectors={"tls": True, "http": True}, tls_grade="B", score=80, label_valid=True)
                store.record_portal(run.id, url, observations, findings, scan)
            store.finish_run(run.id, True)
            clock.advance(timedelta(days=1))
        backend.register.apply_systems([SystemRecord(id=f"he-thong-{n}", name=f"Hệ thống {n}", agency="stp",
                                                     proposed_level=2) for n in range(5)],
                                       actor="tester", source="he-thong.csv", at=clock.now())
    finally:
        backend.close()


def _env(settings: StoreSettings) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "COLUMNS": "200", "SOC_STORE__BACKEND": "search",
            "SOC_STORE__URL": str(settings.url), "SOC_STORE__FLAVOUR": settings.flavour,
            "SOC_STORE__INDEX_PREFIX": settings.index_prefix}


def test_an_interrupted_migration_resumes_and_the_copy_matches(tmp_path: Path, clock: FixedClock,
                                                               search_settings: StoreSettings) -> None:
    db = tmp_path / "soc.db"
    _build(db, clock)
    batches: list[str] = []

    def interrupt(name: str, done: int, total: int) -> None:
        batches.append(name)
        if name == "observations" and 0 < done < total:
            raise KeyboardInterrupt  # as a Ctrl-C or a lost connection half-way through a table

    with pytest.raises(KeyboardInterrupt):
        migrate_to_search(db, search_settings, batch=50, progress=interrupt)
    saved = json.loads(checkpoint_path(db, search_settings).read_text(encoding="utf-8"))["tables"]
    assert saved["findings"]["done"] is True and saved["observations"]["done"] is False
    copied_before = saved["observations"]["copied"]
    assert 0 < copied_before < 270

    answer = subprocess.run([SOC, "store", "migrate", "--to", "search", "--db", str(db), "--batch", "50"],
                            capture_output=True, text=True, env=_env(search_settings), timeout=120)
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert "resuming" in answer.stdout and "differs" not in answer.stdout
    saved = json.loads(checkpoint_path(db, search_settings).read_text(encoding="utf-8"))["tables"]
    assert saved["observations"]["copied"] == 270  # resumed after its checkpoint: nothing copied twice
    assert saved["findings"]["copied"] == len(PORTALS) * len(CHECKS)
    rows = {line.split("│")[1].strip(): line for line in answer.stdout.splitlines() if line.count("│") == 5}
    assert len(rows) == 14 and all("equal" in line for line in rows.values()), answer.stdout
    assert rows["observations"].split("│")[2].strip() == "270"

    local = tmp_path / "local.db"  # the search backend's own file: users, audit, jobs
    sqlite_json = subprocess.run([SOC, "findings", "--json", "--db", str(db)], capture_output=True, text=True,
                                 env={"PATH": "/usr/bin:/bin"}, timeout=60)
    search_json = subprocess.run([SOC, "findings", "--json", "--db", str(local)], capture_output=True, text=True,
                                 env=_env(search_settings), timeout=60)
    assert sqlite_json.returncode == 0 and search_json.returncode == 0, search_json.stderr
    assert json.loads(sqlite_json.stdout) == json.loads(search_json.stdout)
    assert len(json.loads(search_json.stdout)["findings"]) == len(PORTALS) * len(CHECKS)


def test_a_copy_into_an_index_holding_other_documents_is_reported(tmp_path: Path, clock: FixedClock,
                                                                  search_settings: StoreSettings) -> None:
    db = tmp_path / "soc.db"
    _build(db, clock)
    indices = open_indices(search_settings)
    indices.setup()
    indices.client.index(index=indices.read(FINDINGS), id="stranger", refresh=True, document=FINDINGS.document({
        "fingerprint": "stranger", "portal_url": "https://other/", "check_id": "x", "severity": "low",
        "status": "open", "first_seen": "2026-01-01T00:00:00+00:00", "last_seen": "2026-01-01T00:00:00+00:00"}))
    indices.client.close()
    answer = subprocess.run([SOC, "store", "migrate", "--to", "search", "--db", str(db)], capture_output=True,
                            text=True, env=_env(search_settings), timeout=120)
    assert answer.returncode == 1, answer.stdout + answer.stderr
    assert "differs" in answer.stdout and "findings" in answer.stderr


def test_migrate_refuses_what_it_cannot_do(tmp_path: Path, search_settings: StoreSettings) -> None:
    env = _env(search_settings)
    gone = subprocess.run([SOC, "store", "migrate", "--to", "search", "--db", str(tmp_path / "gone.db")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert gone.returncode == 2 and "gone.db: no such store file" in gone.stderr
    wrong = subprocess.run([SOC, "store", "migrate", "--to", "mysql", "--db", str(tmp_path / "x.db")],
                           capture_output=True, text=True, env=env, timeout=60)
    assert wrong.returncode == 2 and "--to 'mysql'" in wrong.stderr
    nowhere = subprocess.run([SOC, "store", "setup"], capture_output=True, text=True, timeout=60,
                             env={"PATH": "/usr/bin:/bin", "SOC_STORE__BACKEND": "search"})
    assert nowhere.returncode == 2 and "SOC_STORE__URL" in nowhere.stderr


def test_soc_store_setup_is_idempotent(search_settings: StoreSettings) -> None:
    env = _env(search_settings)
    for _ in range(2):
        answer = subprocess.run([SOC, "store", "setup"], capture_output=True, text=True, env=env, timeout=60)
        assert answer.returncode == 0, answer.stderr
        assert "soc-findings" in answer.stdout and "soc-kpis" in answer.stdout
