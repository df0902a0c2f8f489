"""Atomic writes: all or nothing, durable, and new files readable by their owner only unless asked."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from soc.core.files import atomic_write, atomic_write_json, atomic_write_text


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_files_are_owner_only_and_existing_files_keep_their_mode(tmp_path: Path) -> None:
    report = tmp_path / "out" / "report.json"
    atomic_write_json(report, {"schema": "x/1", "tên": "Sở Tư pháp"})
    assert mode(report) == 0o600 and report.read_text(encoding="utf-8").endswith("}\n")
    assert "Sở Tư pháp" in report.read_text(encoding="utf-8")
    report.chmod(0o640)
    atomic_write_text(report, "again\n")
    assert mode(report) == 0o640 and report.read_text(encoding="utf-8") == "again\n"
    shared = tmp_path / "export.csv"
    atomic_write(shared, lambda tmp: tmp.write_text("a,b\n", encoding="utf-8"), new_mode=0o644)
    assert mode(shared) == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "inventory.yaml"
    target.write_text("old\n", encoding="utf-8")

    def broken(tmp: Path) -> None:
        tmp.write_text("half", encoding="utf-8")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inventory.yaml"]
