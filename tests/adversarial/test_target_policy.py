"""Where a scan may go is the operator's decision (issue 14, item 7).

A portal's inventory `address`, the IP-literal hosts of its `url` and `http_url`, and the DNS answer
for its host follow the address policy of redirects and AIA: public, or inside the inventory's
`settings.allowed_networks`. Written in an inventory (YAML, or an agency's CSV), a non-public target is
refused when the file is loaded — `soc inventory check`, `soc inventory import`, `soc scan` — with exit 2
naming the file, the entry, the field and the portal, before any socket exists. A DNS answer that is not
allowed keeps the portal from being contacted at all and is reported (`tls.unreachable` "not_allowed",
`http.unreachable`), and an allowed one is pinned: every collector connects to it, nobody asks DNS again.

No test sends anything off loopback: the non-public addresses (10/8, link-local, metadata…) are only
ever refused, and an audit hook fails the test on any connection or name lookup it does not expect.
The scan-time tests use `localhost` (answered by /etc/hosts, no DNS query) and a counting listener.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml
from typer.testing import CliRunner

from soc.cli import app
from soc.cli.common import CliState
from soc.core.clock import FixedClock
from soc.core.net import address_refusal
from soc.inventory import InventoryError, Portal, load_inventory
from soc.lab.cases import LabCase, inventory_yaml
from soc.scan.job import resolve_address
from tests.conftest import NOW

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


class Guard:
    """Records sockets, connections, name lookups and processes started while a test runs."""

    def __init__(self) -> None:
        self.active = False
        self.lock = threading.Lock()
        self.events: list[tuple[str, str]] = []

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        """sys.addaudithook callback; refuses a connection off loopback and any lookup but `localhost`."""
        if not self.active or event not in ("socket.__new__", "socket.connect", "socket.getaddrinfo",
                                            "subprocess.Popen"):
            return
        detail = ""
        if event == "socket.connect" and isinstance(args[1], tuple) and args[1] and isinstance(args[1][0], str):
            detail = args[1][0]
            if not _is_loopback(detail):
                raise PermissionError(f"test guard: connect to {detail} refused")
        elif event == "socket.getaddrinfo":
            detail = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
            if detail != "localhost" and not _is_literal(detail):
                raise socket.gaierror(socket.EAI_NONAME, f"test guard: lookup of {detail} refused")
        elif event == "subprocess.Popen":
            detail = str(args[0])
        with self.lock:
            self.events.append((event, detail))

    def seen(self, event: str) -> list[str]:
        with self.lock:
            return [detail for name, detail in self.events if name == event]


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    return _is_literal(host) and ipaddress.ip_address(host.split("%", 1)[0]) in LOOPBACK


GUARD = Guard()
sys.addaudithook(GUARD.audit)


@pytest.fixture
def guard() -> Iterator[Guard]:
    """Record what the code under test does on the network (and which processes it starts)."""
    with GUARD.lock:
        GUARD.events.clear()
    GUARD.active = True
    try:
        yield GUARD
    finally:
        GUARD.active = False


def inventory(tmp_path: Path, portals: list[dict[str, Any]], allowed: list[str] | None = None,
              name: str = "inventory.yaml") -> Path:
    """A YAML inventory of one agency; no trust-label registry (nothing to contact)."""
    settings: dict[str, Any] = {"trustlabel": {"registry_url": None}}
    if allowed is not None:
        settings["allowed_networks"] = allowed
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"agencies": [{"id": "stp", "name": "Sở Tư pháp"}], "portals": portals,
                                    "settings": settings}, allow_unicode=True), encoding="utf-8")
    return path


def one_line(text: str) -> str:
    return " ".join(text.split())


HOSTILE_ADDRESSES = [
    ("10.0.0.1", "a private address"),
    ("192.168.1.20", "a private address"),
    ("172.16.5.5", "a private address"),
    ("169.254.169.254", "a link-local address"),  # the cloud metadata service
    ("127.0.0.1", "a loopback address"),
    ("0.0.0.0", "an unspecified address"),
    ("100.64.0.1", "a non-public address"),  # carrier-grade NAT
    ("224.0.0.1", "a multicast address"),
    ("::1", "a loopback address"),
    ("fe80::1", "a link-local address"),
    ("fd00::1", "a private address"),
    ("::ffff:169.254.169.254", "a link-local address"),  # IPv4-mapped: judged as what it reaches
]


@pytest.mark.parametrize(("address", "kind"), HOSTILE_ADDRESSES)
def test_a_non_public_address_is_refused_at_load_naming_the_entry_before_any_socket(
        tmp_path: Path, guard: Guard, address: str, kind: str) -> None:
    path = inventory(tmp_path, [{"url": "https://www.dongnai.gov.vn/", "agency": "stp"},
                                {"url": "https://stp.dongnai.gov.vn/", "agency": "stp", "address": address}])

    started = time.monotonic()
    with pytest.raises(InventoryError) as refused:
        load_inventory(path)
    elapsed = time.monotonic() - started

    (problem,) = refused.value.problems
    assert problem.startswith(f"inventory.yaml: portals[1].address: {ipaddress.ip_address(address)}")
    assert kind in problem and "settings.allowed_networks" in problem
    assert problem.endswith("— portal https://stp.dongnai.gov.vn/")
    assert guard.events == []  # no socket was even created: the refusal is arithmetic on the address
    assert elapsed < 0.1


@pytest.mark.parametrize(("field", "value", "shown"), [
    ("url", "https://10.0.0.1/", "10.0.0.1 is a private address"),
    ("url", "https://[fd00::1]:8443/", "fd00::1 is a private address"),
    ("url", "https://0x7f.1/", "127.0.0.1 is a loopback address"),  # spellings a resolver reads as IPv4
    ("url", "https://2130706433/", "127.0.0.1 is a loopback address"),
    ("http_url", "http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
])
def test_an_ip_literal_host_is_judged_like_an_address(tmp_path: Path, guard: Guard, field: str, value: str,
                                                      shown: str) -> None:
    portal = {"url": "https://stp.dongnai.gov.vn/", "agency": "stp", field: value}
    with pytest.raises(InventoryError) as refused:
        load_inventory(inventory(tmp_path, [portal]))
    (problem,) = refused.value.problems
    assert problem.startswith(f"inventory.yaml: portals[0].{field}: {shown}"), problem
    assert guard.events == []


def test_allowed_networks_and_public_addresses_pass(tmp_path: Path, guard: Guard) -> None:
    portals = [{"url": "https://stp.dongnai.gov.vn/", "agency": "stp", "address": "10.20.30.40"},
               {"url": "https://syt.dongnai.gov.vn/", "agency": "stp", "address": "fd00::7"},
               {"url": "https://www.dongnai.gov.vn/", "agency": "stp", "address": "14.160.0.5"},  # public
               {"url": "https://dichvucong.dongnai.gov.vn/", "agency": "stp"}]  # a name: judged when scanned
    loaded = load_inventory(inventory(tmp_path, portals, allowed=["10.20.0.0/16", "fd00::/8"]))
    assert [str(p.address) for p in loaded.portals] == ["10.20.30.40", "fd00::7", "14.160.0.5", "None"]
    assert guard.events == []


def test_the_address_policy_in_one_table() -> None:
    allowed = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("10.1.0.0/16")]
    verdicts = {text: address_refusal(ipaddress.ip_address(text), allowed) for text in (
        "8.8.8.8", "127.0.0.5", "::ffff:127.0.0.5", "10.1.2.3", "10.2.0.1", "::1", "239.1.1.1", "2001:db8::1")}
    assert verdicts == {
        "8.8.8.8": None, "127.0.0.5": None, "::ffff:127.0.0.5": None, "10.1.2.3": None,
        "10.2.0.1": "10.2.0.1 is a private address", "::1": "::1 is a loopback address",
        "239.1.1.1": "239.1.1.1 is a multicast address", "2001:db8::1": "2001:db8::1 is a private address",
    }


def test_soc_inventory_check_and_soc_scan_refuse_with_exit_2_and_create_nothing(tmp_path: Path,
                                                                               guard: Guard) -> None:
    path = inventory(tmp_path, [{"url": "https://stp.dongnai.gov.vn/", "agency": "stp", "address": "10.0.0.1"}])
    db = tmp_path / "never" / "soc.db"
    runner = CliRunner()

    checked = runner.invoke(app, ["inventory", "check", str(path)])
    started = time.monotonic()
    scanned = runner.invoke(app, ["scan", "-i", str(path), "--db", str(db)], obj=CliState(FixedClock(NOW)))
    elapsed = time.monotonic() - started

    for result in (checked, scanned):
        assert result.exit_code == 2, result.output
        assert ("inventory.yaml: portals[0].address: 10.0.0.1 is a private address, not a scan target unless "
                "settings.allowed_networks lists its network (e.g. 10.0.0.1/32) — portal "
                "https://stp.dongnai.gov.vn/") in one_line(result.output)
    assert not db.parent.exists()  # refused before the store is opened
    assert guard.seen("socket.connect") == [] and guard.seen("subprocess.Popen") == []
    assert elapsed < 2


CSV_HEADER = "url,agency,agency_name,address\n"


def test_an_agencys_csv_cannot_point_the_scanner_at_internal_hosts(tmp_path: Path, guard: Guard) -> None:
    """`soc inventory import`: the row is refused (all or nothing), unless the target YAML allows its network."""
    target = inventory(tmp_path, [{"url": "https://www.dongnai.gov.vn/", "agency": "stp"}])
    before = target.read_text(encoding="utf-8")
    csv_path = tmp_path / "portals.csv"
    csv_path.write_text(CSV_HEADER + "https://sct.dongnai.gov.vn/,sct,Sở Công Thương,14.160.0.9\n"
                        "https://skhcn.dongnai.gov.vn/,skhcn,Sở KH&CN,169.254.169.254\n", encoding="utf-8")
    db = tmp_path / "soc.db"
    runner = CliRunner()

    refused = runner.invoke(app, ["inventory", "import", str(csv_path), "--into", str(target), "--db", str(db)])
    as_inventory = runner.invoke(app, ["inventory", "check", str(csv_path)])

    for result in (refused, as_inventory):
        assert result.exit_code == 2, result.output
        assert ("portals.csv: row 3: address: 169.254.169.254 is a link-local address, not a scan target unless "
                "settings.allowed_networks") in one_line(result.output)
        assert "row 2" not in result.output  # the public row is fine
    assert target.read_text(encoding="utf-8") == before  # all or nothing

    allowing = inventory(tmp_path, [{"url": "https://www.dongnai.gov.vn/", "agency": "stp"}],
                         allowed=["169.254.169.254/32"], name="allowing.yaml")
    accepted = runner.invoke(app, ["inventory", "import", str(csv_path), "--into", str(allowing), "--db", str(db)])
    assert accepted.exit_code == 0, accepted.output
    assert [str(p.address) for p in load_inventory(allowing).portals] == ["None", "14.160.0.9", "169.254.169.254"]
    assert guard.seen("socket.connect") == []


def test_the_example_and_the_lab_inventories_keep_working(tmp_path: Path) -> None:
    """examples/dongnai.yaml names its portals (judged on DNS when scanned for real); the lab allows loopback."""
    example = load_inventory(Path(__file__).resolve().parents[2] / "examples" / "dongnai.yaml")
    assert example.portals and all(p.address is None for p in example.portals)
    root = tmp_path / "root.pem"
    trustme.CA().cert_pem.write_to_path(str(root))
    cases = [LabCase("good", "good.lab.soc.test", "127.0.10.1", 8443, frozenset(), "Good", "http://good.lab.soc.test:8080/")]
    lab = tmp_path / "lab.yaml"
    lab.write_text(inventory_yaml(cases, root), encoding="utf-8")
    assert str(load_inventory(lab).portals[0].address) == "127.0.10.1"
    lab.write_text(inventory_yaml(cases, root).replace('allowed_networks: ["127.0.0.0/8"]', "allowed_networks: []"),
                   encoding="utf-8")
    with pytest.raises(InventoryError, match=r"portals\[0\]\.address: 127\.0\.10\.1 is a loopback address"):
        load_inventory(lab)


# --- at scan time: the DNS answer ------------------------------------------------------------------------


class Listener:
    """A loopback TCP port that counts the connections it accepts (and closes them)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    running = Listener()
    try:
        yield running
    finally:
        running.close()


def scan(tmp_path: Path, path: Path, only: str) -> tuple[int, dict[str, Any], float]:
    out, db = tmp_path / "out.json", tmp_path / "soc.db"
    started = time.monotonic()
    result = CliRunner().invoke(app, ["scan", "-i", str(path), "--db", str(db), "--json", str(out), "--only", only],
                                obj=CliState(FixedClock(NOW)))
    elapsed = time.monotonic() - started
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}, elapsed


@pytest.mark.lab
def test_a_dns_answer_outside_the_allowed_networks_is_never_contacted_and_is_reported(
        tmp_path: Path, guard: Guard, listener: Listener) -> None:
    portal = {"url": f"https://localhost:{listener.port}/", "agency": "stp",
              "http_url": f"http://localhost:{listener.port}/"}
    path = inventory(tmp_path, [portal])  # no allowed_networks: localhost's answer (127.0.0.1) is not allowed

    code, output, elapsed = scan(tmp_path, path, "tls,http,ports")

    assert code == 0
    (result,) = output["portals"]
    refusal = "address not allowed: localhost → 127.0.0.1 is a loopback address; not contacted"
    assert all(refusal in result["errors"][c] for c in ("tls", "http", "ports")), result["errors"]
    findings = {f["check_id"]: f["evidence"] for f in result["findings"]}
    assert findings["tls.unreachable"].startswith(f"not_allowed: {refusal}")
    assert findings["http.unreachable"].startswith(refusal)
    assert result["complete"] is False  # incomplete: resolves nothing
    assert listener.accepted == 0
    assert guard.seen("socket.connect") == [] and guard.seen("subprocess.Popen") == []  # no TLS, HTTP or nmap
    assert guard.seen("socket.getaddrinfo") == ["localhost"]  # asked once, for the whole scan
    assert elapsed < 10


@pytest.mark.lab
def test_an_allowed_dns_answer_is_pinned_for_every_collector(tmp_path: Path, guard: Guard,
                                                            listener: Listener) -> None:
    portal = {"url": f"https://localhost:{listener.port}/", "agency": "stp",
              "http_url": f"http://localhost:{listener.port}/"}
    path = inventory(tmp_path, [portal], allowed=["127.0.0.0/8"])

    code, output, _ = scan(tmp_path, path, "tls,http")

    assert code == 0
    (result,) = output["portals"]
    assert "address not allowed" not in json.dumps(result["errors"])
    assert listener.accepted >= 2  # the TLS probe and the HTTP collector reached the listener
    assert set(guard.seen("socket.connect")) == {"127.0.0.1"}
    assert guard.seen("socket.getaddrinfo").count("localhost") == 1  # resolved once, then pinned


def test_resolve_address_keeps_the_inventory_address_and_judges_it_again() -> None:
    """An inventory built in code (not loaded from a file) is still held to the policy at scan time."""
    portal = Portal(url="https://stp.dongnai.gov.vn/", agency="stp", address=ipaddress.ip_address("10.0.0.1"))
    refused = resolve_address(portal, [])
    assert refused.address is None and refused.refused is not None
    assert refused.refused.startswith("address not allowed: its inventory address → 10.0.0.1 is a private address")
    assert resolve_address(portal, [ipaddress.ip_network("10.0.0.0/8")]).address == "10.0.0.1"


@pytest.mark.parametrize("url", ["https://stp.dongnai.gov.vn/\x1b[2J", "https://stp.dongnai.gov.vn/a b",
                                 "https://stp.dongnai.gov.vn/\u202eexe"])
def test_a_portal_url_with_a_control_or_invisible_character_is_refused(url: str) -> None:
    from soc.inventory import normalise_portal_url

    with pytest.raises(ValueError, match="control, invisible or space character"):
        normalise_portal_url(url)
