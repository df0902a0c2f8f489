"""Storage faults are clear, early and safe (issue 14, item 6).

A read-only store (file mode 0444, or a directory the user cannot write) serves every reading command
and makes every writing one say why it cannot; a store with damaged pages is refused before a scan or
an import starts; a store in a missing directory is created only with a message, and refused when its
directory cannot be made. Every refusal is exit 2 naming the file, never a traceback.

Permissions are real: the CLI runs in a child process without the root capabilities that ignore file
modes (`setpriv --bounding-set -dac_override,-dac_read_search`) when the suite runs as root, as itself
otherwise. The damaged store is a real one with garbage written into the middle of its file.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import insert
from typer.testing import CliRunner

from soc.cli import app
from soc.cli.common import CliState
from soc.core.clock import FixedClock
from soc.core.models import AuditEntry
from soc.store import StoreError, open_backend
from soc.store.sqlite.schema import alembic_config, audit_log, create_engine_for, quick_check
from tests.conftest import NOW

REPO = Path(__file__).resolve().parents[2]
DROP_DAC = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--")
"""Root without the capabilities that bypass file permissions: file modes apply as to any user."""

DRIVER = r"""
import json, sys
from typer.testing import CliRunner
from soc.cli import app

results = []
for args in json.loads(sys.argv[1]):
    result = CliRunner().invoke(app, args)
    crash = None if result.exception is None or isinstance(result.exception, SystemExit) else repr(result.exception)
    results.append({"args": args, "code": result.exit_code, "output": result.output, "crash": crash})
print(json.dumps(results))
"""
"""Runs `soc` commands in-process in the child (one interpreter start for many commands)."""

READING = [["runs"], ["findings", "--json"], ["audit"], ["systems", "list"], ["diff", "{run_a}", "{run_b}"],
           ["compliance", "--json", "-i", "{inventory}"]]
"""Commands that only read; `--db` is appended, `{inventory}` and the runs of `filled_store` filled in."""


def unprivileged_prefix() -> tuple[str, ...]:
    """How to run a child that file permissions apply to (skip when that cannot be arranged)."""
    if os.geteuid() != 0:
        return ()
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: file modes cannot be made to apply")
    return DROP_DAC


def soc_unprivileged(commands: Sequence[Sequence[str]], timeout: float = 60) -> list[dict[str, Any]]:
    """Run `soc` commands as a user file modes apply to; their exit codes and outputs."""
    argv = [*unprivileged_prefix(), sys.executable, "-c", DRIVER, json.dumps([list(c) for c in commands])]
    child = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False)
    assert child.returncode == 0, child.stderr
    results: list[dict[str, Any]] = json.loads(child.stdout)
    return results


def one_line(text: str) -> str:
    """Rich wraps long messages: compare on one line."""
    return " ".join(text.split())


@pytest.fixture
def inventory_file(tmp_path: Path) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump({
        "agencies": [{"id": "stp", "name": "Sở Tư pháp"}],
        "portals": [{"url": "https://stp.dongnai.gov.vn/", "agency": "stp"}],
    }, allow_unicode=True), encoding="utf-8")
    return path


def filled_store(path: Path, entries: int = 50) -> Path:
    """A real store with two runs (the second left `running` long ago) and audit entries; `RUN_IDS` has the runs."""
    old = FixedClock(NOW - timedelta(days=3))
    backend = open_backend(path, old)
    try:
        finished = backend.findings.begin_run("inventory.yaml", 2)
        backend.findings.finish_run(finished.id, complete=True)
        abandoned = backend.findings.begin_run("inventory.yaml", 2)  # marking it abandoned would be a write
        RUN_IDS[path] = (finished.id, abandoned.id)
        for i in range(entries):
            backend.audit.append(AuditEntry(at=NOW, actor="tester", action="finding.triage", subject=f"f{i:04d}",
                                            after={"status": "acknowledged", "note": "x" * 400}))
    finally:
        backend.close()
    return path


RUN_IDS: dict[Path, tuple[str, str]] = {}


def damage(path: Path) -> None:
    """Write garbage over the pages of the middle third of the file, as a bad disk would — but not over the header
    or the schema's pages (the schema spans several pages once there are many tables), so the store still opens
    and only its integrity check can tell."""
    with sqlite3.connect(path) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        schema = {row[0] for row in conn.execute("SELECT pageno FROM dbstat WHERE name = 'sqlite_schema'")}
    conn.close()
    with path.open("r+b") as handle:
        for page in range(pages // 3 + 1, 2 * pages // 3 + 1):  # 1-based page numbers
            if page not in schema:
                handle.seek((page - 1) * page_size)
                handle.write(os.urandom(page_size))


def db_args(commands: Sequence[Sequence[str]], db: Path, inventory: Path) -> list[list[str]]:
    run_a, run_b = RUN_IDS.get(db, ("", ""))
    values = {"{inventory}": str(inventory), "{run_a}": run_a, "{run_b}": run_b}
    return [[values.get(part, part) for part in command] + ["--db", str(db)] for command in commands]


def writing_commands(tmp_path: Path, inventory: Path) -> list[list[str]]:
    """One command of each kind that changes the store (the store refuses them before reading anything else)."""
    portals = tmp_path / "portals.csv"
    portals.write_text("url,agency,agency_name,address\nhttps://sct.dongnai.gov.vn/,sct,Sở Công Thương,"
                       "14.160.0.9\n", encoding="utf-8")
    return [["triage", "f0000", "--status", "acknowledged"],
            ["systems", "import", str(tmp_path / "register.xlsx"), "-i", str(inventory)],
            ["inventory", "import", str(portals), "--into", str(tmp_path / "merged.yaml")],
            ["scan", "-i", str(inventory)]]


@pytest.fixture
def store_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory for a store; its permissions are restored afterwards so pytest can clean it."""
    directory = tmp_path / "store"
    directory.mkdir()
    yield directory
    directory.chmod(0o755)
    for child in directory.iterdir():
        child.chmod(0o644)


def test_a_read_only_file_serves_every_reading_command_and_refuses_writing_ones(
        store_dir: Path, inventory_file: Path, tmp_path: Path) -> None:
    db = filled_store(store_dir / "soc.db")
    db.chmod(0o444)
    before = db.read_bytes()

    results = soc_unprivileged(db_args([*READING, *writing_commands(tmp_path, inventory_file)], db, inventory_file))

    reading, writing = results[:len(READING)], results[len(READING):]
    for result in reading:
        assert result["crash"] is None and result["code"] == 0, result
    assert "running" in reading[0]["output"]  # the abandoned run is shown as it is: marking it would write
    assert json.loads(reading[1]["output"])["findings"] == []
    assert "finding.triage" in reading[2]["output"]
    for result in writing:
        message = one_line(result["output"])
        assert result["crash"] is None and result["code"] == 2, result
        assert f"the store {db} is read-only: the file is not writable by this user (mode -r--r--r--" in message
        assert "Traceback" not in result["output"]
    assert db.read_bytes() == before
    assert not (tmp_path / "merged.yaml").exists()


def test_a_read_only_directory_serves_reads_refuses_writes_and_new_stores(store_dir: Path, inventory_file: Path,
                                                                          tmp_path: Path) -> None:
    db = filled_store(store_dir / "soc.db")
    store_dir.chmod(0o555)  # SQLite cannot create soc.db-wal / soc.db-shm here

    results = soc_unprivileged([
        *db_args(READING, db, inventory_file),
        ["triage", "f0000", "--status", "acknowledged", "--db", str(db)],
        ["runs", "--db", str(store_dir / "new" / "soc.db")],
    ])

    for result in results[:len(READING)]:
        assert result["crash"] is None and result["code"] == 0, result
    triage, new_store = (one_line(r["output"]) for r in results[len(READING):])
    assert results[-2]["code"] == 2 and results[-1]["code"] == 2
    assert f"the store {db} is read-only: its directory {store_dir} is not writable by this user" in triage
    assert f"cannot create the store {store_dir / 'new' / 'soc.db'}: the directory {store_dir} is not writable" \
        in new_store
    assert sorted(p.name for p in store_dir.iterdir()) == ["soc.db"]


def test_a_read_only_store_at_an_old_schema_says_a_writer_must_migrate_it(store_dir: Path) -> None:
    from alembic import command

    db = store_dir / "soc.db"
    engine = create_engine_for(db)
    with engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "0005")
    engine.dispose()
    db.chmod(0o444)

    (result,) = soc_unprivileged([["runs", "--db", str(db)]])

    message = one_line(result["output"])
    assert result["crash"] is None and result["code"] == 2, result
    assert f"the store {db} is read-only" in message and "at schema 0005" in message
    assert "needs a migration only a writer can make" in message


def test_a_damaged_store_is_refused_before_a_scan_or_an_import_and_reads_say_so(tmp_path: Path) -> None:
    db = filled_store(tmp_path / "soc.db", entries=600)
    damage(db)
    inventory = tmp_path / "lab.yaml"
    inventory.write_text(yaml.safe_dump({
        "agencies": [{"id": "lab", "name": "Lab"}],
        "portals": [{"url": "https://portal.test:9/", "agency": "lab", "address": "127.0.0.1"}],  # discard port
        "settings": {"allowed_networks": ["127.0.0.0/8"]},
    }), encoding="utf-8")
    runner, state = CliRunner(), CliState(FixedClock(NOW))

    started = time.monotonic()
    scan = runner.invoke(app, ["scan", "-i", str(inventory), "--db", str(db)], obj=state)
    elapsed = time.monotonic() - started
    imported = runner.invoke(app, ["systems", "import", str(tmp_path / "r.xlsx"), "-i", str(inventory),
                                   "--db", str(db)], obj=state)
    read = runner.invoke(app, ["audit", "--limit", "10000", "--db", str(db)], obj=state)

    for result in (scan, imported):
        message = one_line(result.output)
        assert result.exit_code == 2 and not isinstance(result.exception, Exception), result.output
        assert f"the store {db} is damaged (PRAGMA quick_check:" in message and "nothing was done" in message
        assert "Restore it from a backup, or move it aside" in message and f"sqlite3 {db} .recover" in message
    assert elapsed < 5  # refused at open, before any portal is contacted
    assert read.exit_code == 2 and not isinstance(read.exception, Exception), read.output
    assert f"the store {db} is damaged (SQLite: database disk image is malformed)" in one_line(read.output)


def test_a_store_in_a_missing_directory_is_created_only_with_a_message(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "deeper" / "soc.db"
    runner, state = CliRunner(), CliState(FixedClock(NOW))

    first = runner.invoke(app, ["runs", "--db", str(db)], obj=state)
    again = runner.invoke(app, ["runs", "--db", str(db)], obj=state)

    assert first.exit_code == 0 and db.is_file()
    assert f"creating the store {db} (new)" in one_line(first.output)
    assert again.exit_code == 0 and "creating the store" not in again.output


def test_a_store_under_a_file_is_refused_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store's directory should be\n", encoding="utf-8")

    result = CliRunner().invoke(app, ["runs", "--db", str(blocker / "soc.db")], obj=CliState(FixedClock(NOW)))

    assert result.exit_code == 2 and not isinstance(result.exception, Exception), result.output
    assert f"cannot create the store {blocker / 'soc.db'}: {blocker} is a file, not a directory" \
        in one_line(result.output)
    assert blocker.read_text(encoding="utf-8").startswith("a file")


def test_opening_for_writing_checks_the_pages_in_bounded_time_on_a_50_mb_store(tmp_path: Path) -> None:
    """`PRAGMA quick_check` is O(size): measured here on a 50 MB store (0.06 s warm on the dev machine)."""
    db = tmp_path / "big.db"
    backend = open_backend(db)
    backend.close()
    engine = create_engine_for(db)
    rows = [{"at": NOW, "actor": "bench", "action": "scan.portal", "subject": f"https://p{i % 300}.gov.vn/",
             "before": None, "after": {"evidence": "x" * 1000, "i": i}, "note": None} for i in range(5000)]
    with engine.begin() as conn:
        while db.stat().st_size + (db.with_name(db.name + "-wal").stat().st_size) < 50 * 1024 * 1024:
            conn.execute(insert(audit_log), rows)
    engine.dispose()
    assert db.stat().st_size >= 50 * 1024 * 1024

    started = time.monotonic()
    opened = open_backend(db)  # writes=True: the pages are checked
    checked = time.monotonic() - started
    assert not opened.read_only
    opened.close()
    assert checked < 2.0, f"quick_check of {db.stat().st_size >> 20} MiB took {checked:.2f} s"
    engine = create_engine_for(db)
    assert quick_check(engine) == []
    engine.dispose()

    damage(db)
    with pytest.raises(StoreError, match="is damaged"):
        open_backend(db)

