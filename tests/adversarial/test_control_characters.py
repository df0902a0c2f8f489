"""No control character from outside reaches a terminal, an export or the JSON unescaped (issue 14, item 3).

Certificate subjects, `Server` and `Location` headers, script URLs, spreadsheet cells, agency names and
file names carry ESC sequences (clear screen, cursor home, window title OSC 0, OSC 8 hyperlinks), the
one-byte C1 CSI 0x9b and bidi overrides. They are stored verbatim (evidence), and every output shows
them as visible escapes (`soc.core.untrusted.visible`): each `soc` command in-process on a store holding
them, then a real `soc scan` of a hostile HTTPS portal on loopback (lab tier).
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl  # type: ignore[import-untyped]
import pytest
import yaml
from typer.testing import CliRunner

from checks.catalogue import make_finding
from soc.cli import app
from soc.cli.common import CliState
from soc.compliance.models import ApprovalStatus, SystemRecord
from soc.core.clock import FixedClock
from soc.core.models import Finding, Observation, PortalScan
from soc.core.untrusted import UNSAFE_RANGES, json_text, safe_json, visible
from soc.store import Backend, open_backend
from tests.conftest import NOW

UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""Controls, format characters (bidi, zero-width, tags), surrogates, line and paragraph separators."""
CLEAR = "\x1b[2J\x1b[H"
"""Clear the screen, cursor home."""
WINDOW_TITLE = "\x1b]0;owned\x07"
"""OSC 0: set the terminal's window title."""
HYPERLINK = "\x1b]8;;http://evil.test/\x1b\\"
"""OSC 8: what follows becomes a link to another address than the one shown."""
CSI = "\x9b2J"
"""The one-byte C1 CSI (0x9b): clear screen on a terminal that takes 8-bit controls."""
RLO = "\u202e"
"""Right-to-left override: 'gpj.exe' is shown as 'exe.jpg'."""
ISOLATE = "\u2066"
VISIBLE_TOKENS = ("\\x1b[2J", "\\x07", "\\x9b2J", "\\u202e", "\\u2066")
"""Short enough never to be folded by a table column."""
PORTAL = "https://stp.dongnai.gov.vn/"
HOSTILE_PORTAL = f"https://syt.dongnai.gov.vn/{CLEAR}{RLO}/"
"""A portal URL in a store written before inventories refused such URLs (tests/adversarial/test_target_policy.py)."""


def hostile(label: str) -> str:
    """A value carrying every kind of sequence, its words short enough for any column."""
    return f"{label} {CLEAR} {WINDOW_TITLE} {HYPERLINK} {CSI} {RLO}gpj.exe {ISOLATE}x"


def raw_unsafe(text: str, keep: str = "\n") -> list[str]:
    """Every raw control/format/separator character of `text` (judged by unicodedata, not by the code)."""
    return sorted({f"U+{ord(c):04X}" for c in text if unicodedata.category(c) in UNSAFE_CATEGORIES and c not in keep})


def assert_safe(output: str, *tokens: str) -> None:
    """No raw unsafe character in what a command printed, and the escapes of the hostile values are there."""
    assert raw_unsafe(output) == [], output
    for token in tokens or VISIBLE_TOKENS:
        assert token in output, (token, output)


# --- the function ----------------------------------------------------------------------------------------------


def test_visible_escapes_every_control_format_and_separator_code_point() -> None:
    """Every code point of Unicode's Cc, Cf, Cs, Zl and Zp is an escape that decodes back; all else is kept.

    (Format characters of a newer Unicode than this Python's, unassigned here, are escaped too.)"""
    newer = {p for low, high in UNSAFE_RANGES for p in range(low, high + 1) if unicodedata.category(chr(p)) == "Cn"}
    started = time.monotonic()
    for point in range(sys.maxunicode + 1):
        char = chr(point)
        shown = visible(char)
        if unicodedata.category(char) in UNSAFE_CATEGORIES or point in newer:
            assert re.fullmatch(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|[nrt])", shown), hex(point)
            assert shown.encode("ascii").decode("unicode_escape", "surrogatepass") == char, hex(point)
        else:
            assert shown == char, hex(point)
    assert time.monotonic() - started < 20


def test_the_table_is_exactly_the_unsafe_categories() -> None:
    """UNSAFE_RANGES covers what this Python calls Cc/Cf/Cs/Zl/Zp, and holds nothing assigned to another category."""
    table = {point for low, high in UNSAFE_RANGES for point in range(low, high + 1)}
    expected = {p for p in range(sys.maxunicode + 1) if unicodedata.category(chr(p)) in UNSAFE_CATEGORIES}
    assert sorted(expected - table) == []
    assert [hex(p) for p in sorted(table - expected) if unicodedata.category(chr(p)) != "Cn"] == []


def test_known_attack_characters_and_the_multiline_mode() -> None:
    assert visible(f"a{CLEAR}b") == "a\\x1b[2J\\x1b[Hb"
    assert visible(CSI) == "\\x9b2J"
    assert visible(f"{RLO}gpj.exe") == "\\u202egpj.exe"
    assert visible("\u200b\u200d\u061c\u200e\u200f\ufeff\U000e0041") == (
        "\\u200b\\u200d\\u061c\\u200e\\u200f\\ufeff\\U000e0041")
    assert visible("\x00\x7f\x85\r") == "\\x00\\x7f\\x85\\r"
    assert visible("dòng 1\n\tdòng 2") == "dòng 1\\n\\tdòng 2"
    assert visible("dòng 1\n\tdòng 2\r\x1b", multiline=True) == "dòng 1\n\tdòng 2\\r\\x1b"
    vietnamese = "Cổng thông tin điện tử tỉnh Đồng Nai"
    decomposed = unicodedata.normalize("NFD", vietnamese)  # combining tone marks (Mn) are letters' parts: kept
    assert visible(vietnamese) == vietnamese and visible(decomposed) == decomposed
    assert visible("nbsp\u00a0[bold]\\x1b") == "nbsp\u00a0[bold]\\x1b"  # markup is Rich's escape()'s job


def test_json_text_is_the_same_data_without_a_raw_unsafe_byte() -> None:
    # Lone surrogates one by one: a high one followed by a low one is, in JSON as in UTF-16, one character.
    every = " ".join(chr(p) for low, high in UNSAFE_RANGES for p in range(low, high + 1))
    document: dict[str, Any] = {"evidence": f"Đồng Nai {every}", "list": [hostile("x"), 1, None], every: True}
    text = json_text(document)
    assert json.loads(text) == document  # verbatim for a JSON reader
    assert raw_unsafe(text) == []  # the indentation's line feeds are the only control characters
    text.encode("utf-8")  # lone surrogates are escaped too: the file can be written
    assert "Đồng Nai" in text and "\\u009b" in text and "\\u202e" in text and "\\udb40\\udc41" in text
    assert safe_json(json.dumps(document, ensure_ascii=True)) == json.dumps(document, ensure_ascii=True)


# --- every command on a store holding hostile values --------------------------------------------------------------


@dataclass
class HostileStore:
    """A store and an inventory whose findings, runs, register and agency names came from hostile sources."""

    db: Path
    inventory: Path
    runs: tuple[str, str]
    findings: list[Finding]
    system_name: str


def _record(backend: Backend, inventory: str, findings: list[Finding]) -> str:
    store = backend.findings
    run = store.begin_run(inventory, 2)
    for url in (PORTAL, HOSTILE_PORTAL):
        observation = Observation(collector="tls", portal_url=url, observed_at=NOW, complete=True)
        assessment = PortalScan(run_id=run.id, portal_url=url, recorded_at=NOW, collectors={"tls": True})
        store.record_portal(run.id, url, [observation], [f for f in findings if f.portal_url == url], assessment)
    store.finish_run(run.id, complete=True)
    return run.id


@pytest.fixture
def hostile_store(tmp_path: Path) -> HostileStore:
    inventory = tmp_path / f"danh-muc {CLEAR}{RLO}.yaml"
    data = {
        "agencies": [{"id": "stp", "name": f"Sở Tư pháp {hostile('agency')}"},
                     {"id": "syt", "name": f"Sở Y tế {RLO}"}],
        "portals": [{"url": PORTAL, "agency": "stp"}, {"url": "https://syt.dongnai.gov.vn/", "agency": "syt"}],
    }
    inventory.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    findings = [
        make_finding(PORTAL, "tls.cert.self_signed", f"self-signed: CN={hostile('subject')}", "leaf-sha256"),
        make_finding(PORTAL, "http.server_version_disclosed", f"server: nginx/1.2.3 {hostile('server')}"),
        make_finding(HOSTILE_PORTAL, "http.no_https_redirect",
                     f"http chain: http://syt/ [302] → http://syt/{hostile('location')} [200]"),
        make_finding(HOSTILE_PORTAL, "http.mixed_content",
                     f"loaded over http: http://cdn.test/{CLEAR}{CSI}.js :white_check_mark:"),
    ]
    db = tmp_path / "state" / "soc.db"
    clock = FixedClock(NOW)
    backend = open_backend(db, clock)
    try:
        first = _record(backend, str(inventory), findings[:2])
        clock.advance(timedelta(hours=1))
        second = _record(backend, str(inventory), findings)
        name = f"Quản lý văn bản {hostile('cell')}"
        record = SystemRecord(id="HT1", name=name, agency="stp", approved_level=2, proposed_level=2,
                              status=ApprovalStatus.APPROVED, decision_number=f"12/QĐ {CSI}",
                              decision_date=date(2026, 1, 10), in_operation=True)
        at = NOW - timedelta(days=30)
        backend.register.apply_systems([record.model_copy(update={"name": "Tên cũ"})], actor=f"lan {RLO}",
                                       source=f"thang-1 {CLEAR}.xlsx", at=at)
        backend.register.apply_systems([record], actor=f"minh {WINDOW_TITLE}", source=f"thang-2 {CSI}.xlsx",
                                       at=at + timedelta(days=1))
    finally:
        backend.close()
    return HostileStore(db, inventory, (first, second), findings, name)


def soc(*args: str) -> str:
    """`soc …` in-process on the suite's clock; its output (stdout and stderr) once it exited 0."""
    result = CliRunner().invoke(app, list(args), obj=CliState(FixedClock(NOW)))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_findings_triage_runs_diff_and_audit_show_escapes(hostile_store: HostileStore) -> None:
    db = str(hostile_store.db)
    assert_safe(soc("findings", "--db", db), *VISIBLE_TOKENS, ":white_check_mark:")  # no emoji codes either
    fingerprint = hostile_store.findings[0].fingerprint
    assert_safe(soc("triage", fingerprint[:8], "--status", "acknowledged", "--note", hostile("note"), "--db", db))
    assert_safe(soc("runs", "--db", db), "\\x1b[2J", "\\u202e")
    first, second = hostile_store.runs
    assert_safe(soc("diff", first, second, "--db", db), "\\x1b[2J", "\\u202e")
    assert_safe(soc("audit", "--db", db), "\\u202e", "\\u009b2J", "\\u001b[2J")  # the JSON of before → after


def test_json_outputs_parse_and_carry_the_evidence_verbatim_without_raw_bytes(hostile_store: HostileStore) -> None:
    db = str(hostile_store.db)
    listed = soc("findings", "--json", "--db", db)
    assert raw_unsafe(listed) == []
    evidence = {f["evidence"] for f in json.loads(listed)["findings"]}
    assert evidence == {f.evidence for f in hostile_store.findings}  # machines get what was seen
    first, second = hostile_store.runs
    changes = soc("diff", first, second, "--json", "--db", db)
    assert raw_unsafe(changes) == [] and HOSTILE_PORTAL in {f["portal_url"] for f in json.loads(changes)["new"]}
    soc("triage", hostile_store.findings[0].fingerprint, "--status", "acknowledged", "--note", hostile("n"), "--db", db)
    audit = soc("audit", "--json", "--db", db)
    assert raw_unsafe(audit) == [] and hostile("n") in [e["note"] for e in json.loads(audit)["entries"]]
    compliance = soc("compliance", "--json", "-i", str(hostile_store.inventory), "--db", db)
    assert raw_unsafe(compliance) == []
    assert f"Sở Tư pháp {hostile('agency')}" in [a["name"] for a in json.loads(compliance)["agencies"]]


def test_register_list_history_compliance_and_errors_show_escapes(hostile_store: HostileStore) -> None:
    db, inventory = str(hostile_store.db), str(hostile_store.inventory)
    assert_safe(soc("systems", "list", "--db", db))
    assert_safe(soc("systems", "history", "HT1", "--db", db))
    assert_safe(soc("compliance", "-i", inventory, "--db", db))
    assert_safe(soc("inventory", "check", inventory), "\\x1b[2J", "\\u202e")
    refused = CliRunner().invoke(app, ["triage", f"zz{CLEAR}{RLO}", "--status", "acknowledged", "--db", db],
                                 obj=CliState(FixedClock(NOW)))
    assert refused.exit_code == 2
    assert_safe(refused.output, "\\x1b[2J", "\\u202e")


def test_exports_escape_cells_visibly_and_xlsx_never_fails(hostile_store: HostileStore, tmp_path: Path) -> None:
    db, inventory = str(hostile_store.db), str(hostile_store.inventory)
    workbook = tmp_path / "export.xlsx"
    assert_safe(soc("systems", "export", str(workbook), "-i", inventory, "--db", db), "export.xlsx")
    sheet = openpyxl.load_workbook(workbook).active
    cells = [str(cell.value) for row in sheet.iter_rows() for cell in row if cell.value is not None]
    assert visible(hostile_store.system_name, multiline=True) in cells
    assert any(cell.startswith("Sở Tư pháp agency \\x1b[2J") for cell in cells)
    assert all(raw_unsafe(cell) == [] for cell in cells)
    table = tmp_path / "export.csv"
    soc("systems", "export", str(table), "-i", inventory, "--db", db, "--english")
    text = table.read_text(encoding="utf-8-sig")
    assert raw_unsafe(text, keep="\n\r") == []  # the csv module ends rows with CRLF
    rows = list(csv.reader(text.splitlines()))
    assert visible(hostile_store.system_name, multiline=True) in rows[1]
    for token in VISIBLE_TOKENS:
        assert token in text


# --- a real scan of a hostile portal ------------------------------------------------------------------------------


@dataclass
class HostilePortal:
    """An HTTPS portal on loopback whose certificate, headers and page are hostile, and its http:// listener."""

    inventory: Path
    url: str


def _self_signed(directory: Path, host: str) -> tuple[Path, Path]:
    """A self-signed certificate whose subject CN carries ESC sequences, CSI and a bidi override (made now)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{host} {CLEAR} {CSI} {RLO}gpj.exe"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"Org {WINDOW_TITLE} {HYPERLINK}")])
    start = datetime.now().astimezone() - timedelta(days=1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "hostile.pem", directory / "hostile.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def _answer(status: str, headers: list[bytes], body: bytes = b"") -> bytes:
    head = [f"HTTP/1.1 {status}".encode(), *headers, b"Content-Length: " + str(len(body)).encode(),
            b"Connection: close"]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


HOSTILE_PAGE = (f"<html><head><title>Cổng {CLEAR}{WINDOW_TITLE}{HYPERLINK}{CSI}{RLO}</title>"
                f'<script src="http://cdn.hostile.test/{CLEAR}{CSI}{RLO}.js"></script></head>'
                "<body>Xin chào</body></html>").encode()
HOSTILE_SERVER = "nginx/1.2.3 \u009b2J \u202egpj.exe".encode()
"""obs-text in a header is allowed by HTTP parsers: valid UTF-8, httpx decodes it to U+009B and U+202E."""
HOSTILE_LOCATION = "/next/\u009b2J\u202e".encode()


@pytest.fixture
def hostile_portal(tmp_path: Path) -> Iterator[HostilePortal]:
    import ssl

    from soc.lab.servers import ConnectionTracker, LabServer, Waker, plain_http_handler, tls_handler

    address, host = "127.0.71.1", "hostile.test"
    cert, key = _self_signed(tmp_path, host)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def https(path: str) -> bytes:
        return _answer("200 OK", [b"Server: " + HOSTILE_SERVER, b"Content-Type: text/html; charset=utf-8"],
                       HOSTILE_PAGE)

    def http(path: str) -> bytes:
        if path == "/":
            return _answer("302 Found", [b"Location: " + HOSTILE_LOCATION, b"Server: " + HOSTILE_SERVER])
        return _answer("200 OK", [b"Content-Type: text/html"], b"<html>http only</html>")

    tracker, waker = ConnectionTracker(), Waker()
    servers = [LabServer(address, 0, tls_handler(context, https), tracker, waker),
               LabServer(address, 0, plain_http_handler(http), tracker, waker)]
    for server in servers:
        server.start()
    url = f"https://{host}:{servers[0].port}/"
    portal = {"agency": "lab", "address": address, "http_url": f"http://{host}:{servers[1].port}/"}
    data = {
        "agencies": [{"id": "lab", "name": f"Cơ quan {hostile('agency')}"}],
        "portals": [{"url": url, **portal}],
        "settings": {"allowed_networks": ["127.0.0.0/8"],
                     "trustlabel": {"registry_url": None, "min_interval_s": 0, "cache_hours": 0}},
    }
    inventory = tmp_path / "hostile.yaml"
    inventory.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    try:
        yield HostilePortal(inventory, url)
    finally:
        deadline = time.monotonic() + 5
        waker.fire()
        tracker.stop(deadline)
        for server in servers:
            server.stop(deadline)
        waker.close()


def _soc_process(*args: str) -> str:
    """The real `soc` command, its stdout and stderr as the bytes a terminal would get (decoded strictly)."""
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "200", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([str(Path(sys.executable).parent / "soc"), *args], capture_output=True, timeout=120,
                            env=env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return (result.stdout + result.stderr).decode("utf-8")


@pytest.mark.lab
def test_a_real_scan_of_a_hostile_portal_prints_and_writes_only_escapes(
        hostile_portal: HostilePortal, tmp_path: Path) -> None:
    db, out = tmp_path / "soc.db", tmp_path / "scan.json"
    started = time.monotonic()
    printed = _soc_process("scan", "-i", str(hostile_portal.inventory), "--only", "tls,http", "--db", str(db),
                           "--json", str(out))
    assert time.monotonic() - started < 90
    assert raw_unsafe(printed) == [], printed  # the hostile values are in the evidence, listed below
    report_text = out.read_text(encoding="utf-8")
    assert raw_unsafe(report_text) == []
    report = json.loads(report_text)
    [portal] = [p for p in report["portals"] if p["url"] == hostile_portal.url]
    evidence = {f["check_id"]: f["evidence"] for f in portal["findings"]}
    assert f"{CLEAR} {CSI} {RLO}gpj.exe" in evidence["tls.cert.self_signed"]  # stored and written verbatim
    assert "\u009b2J \u202egpj.exe" in evidence["http.server_version_disclosed"]
    assert f"{CLEAR}{CSI}{RLO}.js" in evidence["http.mixed_content"]
    assert "\u009b2J\u202e" in evidence["http.no_https_redirect"]
    listed = _soc_process("findings", "--db", str(db))
    assert_safe(listed, "\\x1b[2J", "\\x9b2J", "\\u202egpj.exe")
    assert_safe(_soc_process("findings", "--json", "--db", str(db)), "\\u001b[2J", "\\u009b2J", "\\u202e")
