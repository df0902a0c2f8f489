"""End to end: `soc scan` against the portal lab (real TLS servers on loopback), through the real CLI.

Every lab case must yield exactly its expected check ids; findings persist and follow their
lifecycle across scans; Ctrl-C keeps what was stored and leaves the run incomplete.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from soc.lab import PortalLab
from soc.lab.cases import UNREACHABLE

SOC = str(Path(sys.executable).parent / "soc")
pytestmark = pytest.mark.lab
CLEAN_ENV = {"PATH": "/usr/bin:/bin", "COLUMNS": "200", "PYTHONWARNINGS": "ignore"} | {
    name: value for name, value in os.environ.items() if name.startswith(("FAKETIME", "LD_PRELOAD"))}
"""A minimal environment for `soc`, keeping a moved clock (libfaketime) so the CLI and the lab agree on the date."""


def soc(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([SOC, *args], capture_output=True, text=True, timeout=300,
                            env=CLEAN_ENV)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def first_scan(lab: PortalLab, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    work = tmp_path_factory.mktemp("scan")
    db, out = work / "soc.db", work / "out.json"
    soc("scan", "--inventory", str(lab.inventory_path), "--db", str(db), "--json", str(out))
    return db, json.loads(out.read_text(encoding="utf-8"))


def by_url(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {portal["url"]: portal for portal in report["portals"]}


def test_the_scan_is_in_the_audit_log(first_scan: tuple[Path, Any]) -> None:
    db, report = first_scan
    rows = sqlite3.connect(db).execute("SELECT action, subject, after FROM audit_log ORDER BY id").fetchall()
    assert [(action, subject) for action, subject, _ in rows] == [("scan.run.start", report["run"]["id"]),
                                                                  ("scan.run.finish", report["run"]["id"])]
    finish = json.loads(rows[1][2])
    assert finish["status"] == "complete" and finish["new"] == sum(p["changes"]["new"] for p in report["portals"])


def test_every_lab_case_yields_exactly_its_expected_check_ids(lab: PortalLab, first_scan: tuple[Path, Any]) -> None:
    _db, report = first_scan
    portals = by_url(report)
    got = {case.name: {f["check_id"] for f in portals[case.url]["findings"]} for case in lab.cases}
    want = {case.name: set(case.expected) for case in lab.cases}
    assert got == want
    assert report["run"]["status"] == "complete"


def test_good_portal_has_no_high_or_medium_finding(lab: PortalLab, first_scan: tuple[Path, Any]) -> None:
    good = by_url(first_scan[1])[lab.case("good").url]
    assert good["reachable"] and good["complete"]
    assert not [f for f in good["findings"] if f["severity"] in ("critical", "high", "medium")]
    assert good["protocols"] == {"SSLv2": False, "SSLv3": False, "TLSv1.0": False, "TLSv1.1": False,
                                 "TLSv1.2": True, "TLSv1.3": True}


def test_json_report_has_the_documented_shape(lab: PortalLab, first_scan: tuple[Path, Any]) -> None:
    report = first_scan[1]
    assert report["schema"] == "soc.scan/1"
    assert {"id", "started_at", "finished_at", "status", "inventory", "portal_count"} <= set(report["run"])
    case = lab.case("expired")
    portal = by_url(report)[case.url]
    assert (portal["host"], portal["address"], portal["port"]) == (case.host, case.address, case.port)
    finding = portal["findings"][0]
    assert {"check_id", "severity", "title", "title_en", "evidence", "remediation", "fingerprint", "change"} <= set(
        finding)
    assert finding["title"] == "Chứng thư số đã hết hạn" and finding["change"] == "new"


def test_unreachable_portals_cost_seconds_and_are_classified(lab: PortalLab, first_scan: tuple[Path, Any]) -> None:
    db = first_scan[0]
    rows = sqlite3.connect(db).execute(
        "SELECT portal_url, complete, data FROM observations WHERE collector = 'tls'").fetchall()
    data = {url: (complete, json.loads(raw)) for url, complete, raw in rows}
    kinds = {}
    for case in lab.cases:
        if case.expected == UNREACHABLE:
            complete, obs = data[case.url]
            assert not complete
            assert obs["duration_s"] < 10, (case.name, obs["duration_s"])
            kinds[case.name] = obs["unreachable"]
    assert kinds == {"refused": "refused", "silent": "timeout", "garbage": "not_tls", "reset": "reset"}


def test_findings_persist_and_are_queryable(lab: PortalLab, first_scan: tuple[Path, Any]) -> None:
    db, report = first_scan
    stored = json.loads(soc("findings", "--json", "--db", str(db)).stdout)["findings"]
    reported = {f["fingerprint"] for p in report["portals"] for f in p["findings"]}
    assert {f["fingerprint"] for f in stored} == reported
    assert all(f["status"] == "open" for f in stored)
    weak = json.loads(soc("findings", "--json", "--db", str(db), "--check", "tls.cert.weak_key").stdout)["findings"]
    assert [f["portal_url"] for f in weak] == [lab.case("rsa1024").url]
    table = soc("findings", "--db", str(db), "--severity", "high").stdout
    assert "tls.cert.expired" in table and "tls.protocol.tls10" not in table


def write_inventory(lab: PortalLab, path: Path, address_of: dict[str, str]) -> Path:
    """The lab inventory with some portals pointed at another case's address."""
    data = yaml.safe_load(lab.inventory_path.read_text(encoding="utf-8"))
    for portal in data["portals"]:
        for case_name, other in address_of.items():
            if portal["url"] == lab.case(case_name).url:
                portal["address"] = lab.case(other).address
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def statuses(db: Path, url: str) -> dict[str, str]:
    rows = sqlite3.connect(db).execute("SELECT check_id, status FROM findings WHERE portal_url = ?", (url,))
    return dict(rows.fetchall())


def test_lifecycle_open_resolved_reopened_against_real_servers(lab: PortalLab, tmp_path: Path) -> None:
    db, url = tmp_path / "life.db", lab.case("expired").url
    scan = ("scan", "--db", str(db), "--portal", url, "--only", "tls", "--inventory")
    soc(*scan, str(lab.inventory_path))
    assert statuses(db, url) == {"tls.cert.expired": "open"}

    # Unreachable: an incomplete scan resolves nothing.
    soc(*scan, str(write_inventory(lab, tmp_path / "down.yaml", {"expired": "refused"})))
    assert statuses(db, url) == {"tls.cert.expired": "open", "tls.unreachable": "open"}

    # The portal now answers with the good server's certificate: expired resolves, a mismatch opens.
    soc(*scan, str(write_inventory(lab, tmp_path / "moved.yaml", {"expired": "good"})))
    assert statuses(db, url) == {"tls.cert.expired": "resolved", "tls.unreachable": "resolved",
                                 "tls.cert.hostname_mismatch": "open"}

    # Back to the expired certificate: reopened, and the mismatch resolves.
    out = tmp_path / "back.json"
    soc(*scan, str(lab.inventory_path), "--json", str(out))
    assert statuses(db, url) == {"tls.cert.expired": "open", "tls.unreachable": "resolved",
                                 "tls.cert.hostname_mismatch": "resolved"}
    portal = json.loads(out.read_text(encoding="utf-8"))["portals"][0]
    assert portal["collectors"] == {"tls": True}
    assert [f["change"] for f in portal["findings"]] == ["reopened"]
    assert len(portal["resolved"]) == 1


def test_rescan_keeps_findings_open_with_first_seen(lab: PortalLab, first_scan: tuple[Path, Any]) -> None:
    db = first_scan[0]
    url = lab.case("legacy_tls").url
    before = dict(sqlite3.connect(db).execute("SELECT check_id, first_seen FROM findings WHERE portal_url=?", (url,)))
    out = db.parent / "again.json"
    soc("scan", "--inventory", str(lab.inventory_path), "--db", str(db), "--portal", url, "--json", str(out))
    after = dict(sqlite3.connect(db).execute("SELECT check_id, first_seen FROM findings WHERE portal_url=?", (url,)))
    assert before == after and {"tls.protocol.tls10", "tls.protocol.tls11"} <= set(after)
    changes = {f["change"] for f in json.loads(out.read_text(encoding="utf-8"))["portals"][0]["findings"]}
    assert changes == {"still_open"}


def test_ctrl_c_keeps_stored_portals_and_marks_the_run_incomplete(lab: PortalLab, tmp_path: Path) -> None:
    db = tmp_path / "int.db"
    process = subprocess.Popen([SOC, "scan", "--inventory", str(lab.inventory_path), "--db", str(db)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    done = 0
    while time.monotonic() < deadline and not done:
        time.sleep(0.05)
        try:
            row = sqlite3.connect(db).execute("SELECT portals_done FROM scan_runs").fetchone()
        except sqlite3.Error:
            continue
        done = row[0] if row else 0
    assert done >= 1, "no portal was stored within 60 s"
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Interrupted" in err
    connection = sqlite3.connect(db)
    query = "SELECT status, portals_done, portal_count FROM scan_runs"
    status, portals_done, total = connection.execute(query).fetchone()
    assert status == "incomplete" and 1 <= portals_done < total
    stored = connection.execute("SELECT COUNT(DISTINCT portal_url) FROM observations").fetchone()[0]
    assert stored == portals_done


GRADES = {
    "good": "A+", "expiring_soon": "A", "no_tls13": "A-", "legacy_tls": "B", "dhe1024": "B", "rsa1024": "B",
    "incomplete_chain": "B", "sha1_leaf": "C", "md5_leaf": "C", "many_sans": "A+", "cert_too_large": None,
    "null_anon_static_rsa": "F", "expired": "T", "wrong_host": "T",
    "self_signed": "T", "untrusted_root": "T", "http_bare": "A", "http_short_hsts": "A", "refused": None,
    "silent": None, "revoked": "T", "revoked_ocsp": "T",
}


def test_grades_follow_the_rubric(lab: PortalLab, first_scan: tuple[Path, Any]) -> None:
    portals = by_url(first_scan[1])
    assert {name: portals[lab.case(name).url]["grade"] for name in GRADES} == GRADES
    legacy = portals[lab.case("legacy_tls").url]
    assert "capped at B: TLS 1.0 enabled" in " ".join(legacy["grade_reasons"])
    tls10 = next(f for f in legacy["findings"] if f["check_id"] == "tls.protocol.tls10")
    assert "capped at B: TLS 1.0 enabled" in tls10["evidence"]
    expired = portals[lab.case("expired").url]
    assert expired["grade_without_trust"] == "A" and "grade T: certificate expired" in expired["grade_reasons"][0]
    good = portals[lab.case("good").url]
    assert good["score"] == 100 and good["category_scores"] == {"tls": 100, "http": 100, "label": 100, "ports": 100}
    assert portals[lab.case("ports_exposed").url]["category_scores"]["ports"] < 100
    for name in ("label_missing", "label_other_domain"):  # certain verdicts without the registry: scored
        assert portals[lab.case(name).url]["category_scores"]["label"] < 100, name
        assert portals[lab.case(name).url]["collectors"]["label"] is True, name
    assert portals[lab.case("refused").url]["score"] is None


def test_big_certificates_are_judged_whole_and_stored_bounded(lab: PortalLab, first_scan: tuple[Path, Any]) -> None:
    rows = sqlite3.connect(first_scan[0]).execute(
        "SELECT portal_url, complete, data FROM observations WHERE collector = 'tls'").fetchall()
    tls = {url: (complete, json.loads(raw)) for url, complete, raw in rows}
    complete, many = tls[lab.case("many_sans").url]
    leaf = many["chain"][0]
    assert complete and many["hostname_matches"] is True and (len(leaf["san_dns"]), leaf["san_dns_total"]) == (100, 500)
    complete, big = tls[lab.case("cert_too_large").url]
    assert not complete and big["unreachable"] is None
    assert big["oversized_certificate"]["message_bytes"] > big["oversized_certificate"]["client_limit_bytes"] == 102400
    assert big["hostname_matches"] is True and big["trust"]["anchored"] and big["chain"][0]["pem"] == ""
    oversized = next(f for f in by_url(first_scan[1])[lab.case("cert_too_large").url]["findings"]
                     if f["check_id"] == "tls.cert.oversized")
    assert "accept 102400 at most" in oversized["evidence"]


def test_redirect_to_a_non_public_address_is_recorded_not_followed(
    lab: PortalLab, first_scan: tuple[Path, Any]
) -> None:
    db = first_scan[0]
    url = lab.case("http_redirect_metadata").url
    raw = sqlite3.connect(db).execute(
        "SELECT data FROM observations WHERE collector = 'http' AND portal_url = ?", (url,)).fetchone()[0]
    hops = json.loads(raw)["redirects"]
    assert hops[-1]["url"].startswith("http://169.254.169.254/")
    assert "outside the allowed addresses" in hops[-1]["refused"]


def test_trust_label_badges_and_registry(lab: PortalLab, first_scan: tuple[Path, Any]) -> None:
    db = first_scan[0]
    rows = sqlite3.connect(db).execute("SELECT portal_url, data FROM observations WHERE collector = 'label'")
    labels = {url: json.loads(raw) for url, raw in rows}
    good = labels[lab.case("good").url]
    assert good["registry"]["found"] is True and good["registry"]["level"] == "advanced"
    assert [b["how"] for b in labels[lab.case("label_lazy").url]["badges"]] == ["link+data-src"]
    assert [b["how"] for b in labels[lab.case("label_script").url]["badges"]] == ["script"]
    assert labels[lab.case("label_revoked").url]["registry"]["status"] == "revoked"


def test_scan_summary_and_json_carry_changes(lab: PortalLab, tmp_path: Path) -> None:
    db, out = tmp_path / "changes.db", tmp_path / "second.json"
    names = ["good", "http_bare", "expired"]
    portals = [arg for name in names for arg in ("--portal", lab.case(name).url)]
    first = soc("scan", "--inventory", str(lab.inventory_path), "--db", str(db), *portals)
    assert "Total:" in first.stdout and "new" in first.stdout
    soc("scan", "--inventory", str(lab.inventory_path), "--db", str(db), *portals, "--json", str(out))
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["changes"]["new"] == 0 and report["changes"]["still_open"] == 7
    runs = [line.split()[1] for line in soc("runs", "--db", str(db)).stdout.splitlines()
            if line.startswith("│") and len(line.split()) > 2 and len(line.split()[1]) == 12]
    assert len(runs) == 2
    diff = json.loads(soc("diff", runs[1], runs[0], "--json", "--db", str(db)).stdout)
    assert diff["counts"] == {"new": 0, "still_open": 7, "resolved": 0}


def test_a_failed_or_partial_collector_resolves_nothing_of_its_own(lab: PortalLab, tmp_path: Path) -> None:
    db, url = tmp_path / "scoped.db", lab.case("label_revoked").url
    soc("scan", "--inventory", str(lab.inventory_path), "--db", str(db), "--portal", url)
    assert statuses(db, url) == {"trustlabel.revoked": "open"}
    # The registry becomes unreachable: the label cannot be verified, and the revoked finding stays open.
    data = yaml.safe_load(lab.inventory_path.read_text(encoding="utf-8"))
    data["settings"]["trustlabel"]["registry_url"] = "http://127.0.20.252:9"  # nothing listens there
    dead = tmp_path / "dead-registry.yaml"
    dead.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    soc("scan", "--inventory", str(dead), "--db", str(db), "--portal", url)
    assert statuses(db, url) == {"trustlabel.revoked": "open", "trustlabel.unverified": "open"}
    # A TLS-only scan speaks for tls.* only: the label findings are untouched.
    soc("scan", "--inventory", str(lab.inventory_path), "--db", str(db), "--portal", url, "--only", "tls")
    assert statuses(db, url) == {"trustlabel.revoked": "open", "trustlabel.unverified": "open"}
    # The registry answers again: unverified resolves, revoked stays.
    soc("scan", "--inventory", str(lab.inventory_path), "--db", str(db), "--portal", url)
    assert statuses(db, url) == {"trustlabel.revoked": "open", "trustlabel.unverified": "resolved"}


def test_only_rejects_an_unknown_collector(lab: PortalLab, tmp_path: Path) -> None:
    result = soc("scan", "--inventory", str(lab.inventory_path), "--db", str(tmp_path / "x.db"), "--only", "tls,smtp",
                 check=False)
    assert result.returncode == 2 and "unknown collector 'smtp'" in result.stderr



def test_unusable_trust_stores_are_bad_input_for_check_and_scan(tmp_path: Path) -> None:
    """Garbage, a key without a certificate, a missing file: exit 2 naming each, before anything is scanned."""
    root = tmp_path / "root.pem"
    trustme.CA().cert_pem.write_to_path(str(root))
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"not a certificate at all\n")
    key_only = tmp_path / "key-only.pem"
    trustme.CA().private_key_pem.write_to_path(str(key_only))
    bad = tmp_path / "bad-stores.yaml"
    bad.write_text(yaml.safe_dump({
        "agencies": [{"id": "lab", "name": "Lab"}],
        "portals": [{"url": "https://good.lab.soc.test/", "agency": "lab", "address": "127.0.20.250"}],
        "settings": {"trust_stores": [str(root), str(garbage), str(key_only), str(tmp_path / "missing.pem")],
                     "allowed_networks": ["127.0.0.0/8"]},
    }), encoding="utf-8")
    db = tmp_path / "never.db"

    for args in (("inventory", "check", str(bad)), ("scan", "--inventory", str(bad), "--db", str(db))):
        result = soc(*args, check=False)
        assert result.returncode == 2, result.stdout + result.stderr
        message = " ".join(result.stderr.split())  # Rich wraps long lines
        assert f"bad-stores.yaml: settings.trust_stores[1]: not a PEM file: no '-----BEGIN …-----' block: {garbage}" \
            in message
        assert "settings.trust_stores[2]: no X.509 certificate in it (only " in message and str(key_only) in message
        assert f"settings.trust_stores[3]: file not found: {tmp_path / 'missing.pem'}" in message
        assert "settings.trust_stores[0]" not in message  # a real CA certificate is a usable store
    assert not db.exists()
