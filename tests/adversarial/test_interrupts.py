"""Interrupts and kills (issue 14, item 2): Ctrl-C ends `soc scan` within two seconds whatever a collector
is doing; a run left `running` by a killed process is recognised as dead at the next start; a kill leaves
no temporary trust-anchor file behind.

The lab-tier tests run the real `soc` in a subprocess against loopback servers started here (PKI made at
run time): one portal that answers at once, one that completes the TLS handshake and then trickles its
answer a byte at a time, one that accepts and never says a word. The others judge the owner and
heartbeat rules and the orphan sweep on a real store, with real (dead and living) processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from soc.core.clock import FixedClock
from soc.core.models import RunOwner, RunStatus
from soc.core.process import (
    current_process,
    owned_temp_file,
    process_alive,
    remove_owned_temp_file,
    start_token,
    sweep_orphan_files,
)
from soc.core.settings import Settings
from soc.services.context import ABANDONED_AFTER, HEARTBEAT_STALE, open_context
from soc.store import open_backend

SOC = str(Path(sys.executable).parent / "soc")
BASE = "127.0.148."
EXIT_LIMIT = 2.0
"""Seconds from Ctrl-C to the end of the process (the issue's promise)."""
DRIP = 0.5
"""Seconds between two bytes of the trickling portal."""
IDLE_LIMIT = 60.0
"""A test server gives up on a client after this long (bounds its threads)."""
WAIT_LIMIT = 60.0
"""Longest wait for a scan to reach the state a test needs (a loaded machine)."""
PAGE = b"<!doctype html><html><head><title>ok</title></head><body>ok</body></html>"
ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: " + str(len(PAGE)).encode()
          + b"\r\nConnection: close\r\n\r\n" + PAGE)


@dataclass(frozen=True)
class Pki:
    """A CA (its PEM is the inventory's trust store) and one leaf for every portal host."""

    ca_pem: Path
    chain: Path
    key: Path


def make_pki(folder: Path, hosts: list[str]) -> Pki:
    """Generate a CA and a leaf for `hosts` (nothing is committed: made at run time)."""
    now = datetime.now(UTC)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Interrupts test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
          .not_valid_after(now + timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    pki = Pki(folder / "ca.pem", folder / "chain.pem", folder / "leaf.key")
    pki.ca_pem.write_bytes(ca.public_bytes(pem))
    pki.chain.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    pki.key.write_bytes(leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return pki


class Server:
    """A loopback server: `answer` at once, `trickle` (one byte per DRIP once the request is in) or `silent`."""

    def __init__(self, address: str, mode: str, tls: ssl.SSLContext | None) -> None:
        self.mode, self.tls = mode, tls
        self.active = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener = socket.create_server((address, 0))
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, name=f"interrupts-{mode}", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        self._listener.close()

    def _accept(self) -> None:
        end = time.monotonic() + 10 * IDLE_LIMIT
        while not self._stopping.is_set() and time.monotonic() < end:
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            self.active += 1
        try:
            conn.settimeout(5)
            sock = self.tls.wrap_socket(conn, server_side=True) if self.tls and self.mode != "silent" else conn
            with contextlib.suppress(OSError, ValueError):
                self._act(sock)
        except (OSError, ValueError):
            pass
        finally:
            conn.close()
            with self._lock:
                self.active -= 1

    def _act(self, sock: socket.socket) -> None:
        end = time.monotonic() + IDLE_LIMIT
        if self.mode == "silent":
            sock.settimeout(0.2)
            while not self._stopping.is_set() and time.monotonic() < end:
                with contextlib.suppress(TimeoutError):
                    if not sock.recv(4096):
                        return
            return
        sock.recv(16 * 1024)
        if self.mode == "answer":
            sock.sendall(ANSWER)
            return
        for byte in ANSWER * 100:
            if self._stopping.is_set() or time.monotonic() > end:
                return
            sock.sendall(bytes([byte]))
            time.sleep(DRIP)


@dataclass
class Portals:
    inventory: Path
    hostile: list[Server]
    """The trickling and the silent portals' servers (HTTPS and plain HTTP)."""
    total: int

    def held(self) -> int:
        """Connections the hostile servers hold open now (a collector waits on each)."""
        return sum(server.active for server in self.hostile)


@pytest.fixture
def portals(tmp_path: Path) -> Iterator[Portals]:
    """Three portals (fast, trickling, silent) on 127.0.148.x, their inventory trusting the test CA."""
    with serve_portals(tmp_path) as running:
        yield running


@contextlib.contextmanager
def serve_portals(tmp_path: Path) -> Iterator[Portals]:
    """Start the three portals' servers and write their inventory; stop them on leaving."""
    hosts = ["fast.interrupts.test", "trickle.interrupts.test", "silent.interrupts.test"]
    pki = make_pki(tmp_path / "pki", hosts)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.chain, pki.key)
    servers: list[Server] = []
    entries = []
    for slot, (host, mode) in enumerate(zip(hosts, ("answer", "trickle", "silent"), strict=True), start=1):
        address = f"{BASE}{slot}"
        https, plain = Server(address, mode, context), Server(address, mode, None)
        servers += [https, plain]
        entries.append({"url": f"https://{host}:{https.port}/", "agency": "test", "address": address,
                        "http_url": f"http://{host}:{plain.port}/"})
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({
        "agencies": [{"id": "test", "name": "Interrupts"}], "portals": entries,
        "settings": {"trust_stores": [str(pki.ca_pem)], "allowed_networks": ["127.0.0.0/8"]},
    }), encoding="utf-8")
    try:
        yield Portals(inventory, servers[2:], len(entries))
    finally:
        for server in servers:
            server.stop()


def scan(portals: Portals, db: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`soc scan` of the three portals (TLS and HTTP: sslyze, probes and httpx all at work) in a subprocess."""
    return subprocess.Popen([SOC, "scan", "--inventory", str(portals.inventory), "--db", str(db), "--only", "tls,http"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def run_row(db: Path) -> dict[str, object] | None:
    """The store's (only) run as a dict, or None while there is none yet."""
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=5)) as connection:
            connection.row_factory = sqlite3.Row
            row = connection.execute("SELECT * FROM scan_runs").fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else dict(row)


def wait_for(condition: str, test: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    """Poll `test()` until true (bounded); fail if the scan ends first."""
    deadline = time.monotonic() + WAIT_LIMIT
    while time.monotonic() < deadline:
        if test():
            return
        if process.poll() is not None:
            pytest.fail(f"the scan ended before {condition}: {process.stderr.read() if process.stderr else ''}")
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"not within {WAIT_LIMIT} s: {condition}")


@pytest.mark.lab
@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_ends_the_scan_within_two_seconds_while_collectors_are_stuck(
        portals: Portals, tmp_path: Path, presses: int) -> None:
    db = tmp_path / "soc.db"
    process = scan(portals, db)

    def stored_and_stuck() -> bool:
        row = run_row(db)
        beating = presses > 1 or bool(row and row["heartbeat_at"] != row["started_at"])  # once is enough
        return bool(row and int(row["portals_done"]) >= 1 and portals.held() and beating)  # type: ignore[call-overload]

    wait_for("one portal stored while hostile ones hold connections", stored_and_stuck, process)
    pressed = time.monotonic()
    for _ in range(presses):  # a second Ctrl-C must not hang either
        process.send_signal(signal.SIGINT)
        time.sleep(0.05)
    try:
        _out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    elapsed = time.monotonic() - pressed
    assert elapsed < EXIT_LIMIT, f"Ctrl-C took {elapsed:.2f} s to end the process"
    assert process.returncode == 130, err
    assert "Interrupted" in err
    row = run_row(db)
    assert row is not None and row["status"] == "incomplete"
    assert 1 <= int(row["portals_done"]) < portals.total  # type: ignore[call-overload]
    with contextlib.closing(sqlite3.connect(db)) as connection:
        stored = connection.execute("SELECT COUNT(DISTINCT portal_url) FROM observations").fetchone()[0]
    assert stored == row["portals_done"]


@pytest.mark.lab
def test_a_killed_scan_is_abandoned_at_the_next_start_and_leaves_no_anchor_file(
        portals: Portals, tmp_path: Path) -> None:
    db, scratch = tmp_path / "soc.db", tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "COLUMNS": "200"}
    process = scan(portals, db, env)

    def running_with_anchors() -> bool:
        row = run_row(db)
        return bool(row and row["status"] == "running" and list(scratch.glob(f"soc-anchors-{process.pid}-*.pem")))

    wait_for("the run is running with its anchor file written", running_with_anchors, process)
    row = run_row(db)
    assert row is not None and row["owner_pid"] == process.pid and row["owner_host"] == socket.gethostname()
    assert row["owner_started"] == start_token(process.pid)
    process.kill()  # kill -9: no handler runs
    process.wait(timeout=10)
    assert run_row(db)["status"] == "running"  # type: ignore[index]
    assert list(scratch.glob("soc-anchors-*.pem")), "the kill should have left the file (nothing could remove it)"

    started = time.monotonic()
    shown = subprocess.run([SOC, "runs", "--db", str(db)], capture_output=True, text=True, env=env, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert time.monotonic() - started < 15
    assert "incomplete" in shown.stdout and "running" not in shown.stdout
    assert run_row(db)["status"] == "incomplete"  # type: ignore[index]
    with contextlib.closing(sqlite3.connect(db)) as connection:
        notes = connection.execute("SELECT note FROM audit_log WHERE action = 'scan.run.abandoned' AND subject = ?",
                                   (row["id"],)).fetchall()
    assert notes == [(f"its process is gone (pid {process.pid} on {socket.gethostname()})",)]
    assert list(scratch.iterdir()) == []


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait(timeout=30)
    return child.pid


def test_a_run_of_a_dead_process_is_abandoned_at_once_and_audited(db_path: Path, clock: FixedClock) -> None:
    backend = open_backend(db_path, clock)
    pid = dead_pid()
    dead = backend.findings.begin_run("inv", 2, owner=RunOwner(host=socket.gethostname(), pid=pid, started="b:1"))
    reused = backend.findings.begin_run("inv", 2, owner=current_process().model_copy(update={"started": "b:2"}))
    alive = backend.findings.begin_run("inv", 2, owner=current_process())
    backend.close()
    with open_context(Settings(db=db_path), clock, "lan") as context:  # no time has passed
        runs = {run.id: run.status for run in context.backend.findings.list_runs()}
        assert runs == {dead.id: RunStatus.INCOMPLETE, reused.id: RunStatus.INCOMPLETE, alive.id: RunStatus.RUNNING}
        notes = {e.subject: e.note for e in context.backend.audit.entries(action_prefix="scan.run.abandoned")}
    host = socket.gethostname()
    assert notes == {dead.id: f"its process is gone (pid {pid} on {host})",
                     reused.id: f"its process is gone (pid {os.getpid()} on {host})"}


def test_a_living_scan_is_left_alone_until_it_is_silent_for_hours(db_path: Path, clock: FixedClock) -> None:
    backend = open_backend(db_path, clock)
    run = backend.findings.begin_run("inv", 2, owner=current_process())
    backend.close()
    clock.advance(HEARTBEAT_STALE * 3)  # this very process owns it: alive, whatever its heartbeat says
    with open_context(Settings(db=db_path), clock, "lan") as context:
        assert context.backend.findings.running_runs()[0].run.id == run.id
    clock.advance(ABANDONED_AFTER)
    with open_context(Settings(db=db_path), clock, "lan") as context:
        assert context.backend.findings.running_runs() == []
        [entry] = context.backend.audit.entries(action_prefix="scan.run.abandoned")
    assert entry.note is not None and entry.note.startswith(f"no heartbeat for {ABANDONED_AFTER}")


def test_a_run_of_another_host_is_judged_by_its_heartbeat(db_path: Path, clock: FixedClock) -> None:
    backend = open_backend(db_path, clock)
    owner = RunOwner(host="scanner-2.soc.invalid", pid=os.getpid(), started="b:1")
    run = backend.findings.begin_run("inv", 2, owner=owner)
    [running] = backend.findings.running_runs()
    assert (running.owner, running.heartbeat_at) == (owner, clock.now())
    clock.advance(HEARTBEAT_STALE * 0.75)
    backend.findings.heartbeat(run.id)
    clock.advance(HEARTBEAT_STALE * 0.75)  # 1.5 × stale since the start, 0.75 × since the last beat
    backend.close()
    with open_context(Settings(db=db_path), clock, "lan") as context:
        assert [r.run.id for r in context.backend.findings.running_runs()] == [run.id]
    clock.advance(HEARTBEAT_STALE * 0.5)
    with open_context(Settings(db=db_path), clock, "lan") as context:
        stored = context.backend.findings.get_run(run.id)
        assert stored is not None and stored.status is RunStatus.INCOMPLETE
        [entry] = context.backend.audit.entries(action_prefix="scan.run.abandoned")
    assert entry.note is not None and entry.note.startswith(f"no heartbeat for {HEARTBEAT_STALE}")


def test_runs_without_an_owner_keep_the_six_hour_rule(db_path: Path, clock: FixedClock) -> None:
    backend = open_backend(db_path, clock)
    run = backend.findings.begin_run("inv", 1)
    assert backend.findings.running_runs()[0].heartbeat_at is None
    backend.close()
    clock.advance(ABANDONED_AFTER - timedelta(minutes=1))
    with open_context(Settings(db=db_path), clock, "lan") as context:
        assert [r.run.id for r in context.backend.findings.running_runs()] == [run.id]
    clock.advance(timedelta(minutes=2))
    with open_context(Settings(db=db_path), clock, "lan") as context:
        assert context.backend.findings.running_runs() == []


def test_abandon_runs_touches_only_runs_still_running(db_path: Path, clock: FixedClock) -> None:
    backend = open_backend(db_path, clock)
    try:
        store = backend.findings
        done, left = store.begin_run("inv", 1), store.begin_run("inv", 1)
        store.finish_run(done.id, complete=True)
        assert [r.id for r in store.abandon_runs([done.id, left.id, "nope"])] == [left.id]
        assert store.abandon_runs([left.id]) == []
        store.heartbeat(done.id)  # nothing happens to a finished run
        assert {r.id: r.status for r in store.list_runs()} == {done.id: RunStatus.COMPLETE,
                                                               left.id: RunStatus.INCOMPLETE}
    finally:
        backend.close()


def test_orphaned_temporary_files_of_dead_processes_are_swept(tmp_path: Path) -> None:
    mine = owned_temp_file("anchors", b"-----BEGIN CERTIFICATE-----\n", ".pem", tmp_path)
    assert mine.read_bytes().startswith(b"-----BEGIN") and mine.stat().st_mode & 0o777 == 0o600
    me = current_process()
    assert mine.name.startswith(f"soc-anchors-{me.pid}-")
    tag = mine.name.split("-")[3]
    orphan = tmp_path / f"soc-anchors-{dead_pid()}-{tag}-abc123.pem"
    reused = tmp_path / f"soc-anchors-{me.pid}-0123456789ab-abc123.pem"
    foreign = tmp_path / "soc-anchors-notours.pem"
    for path in (orphan, reused, foreign):
        path.write_bytes(b"x")
    assert sorted(sweep_orphan_files(tmp_path)) == sorted([orphan, reused])
    assert sorted(tmp_path.iterdir()) == sorted([mine, foreign])
    remove_owned_temp_file(mine)
    assert not mine.exists()


def test_process_identity_tells_a_reused_pid_from_the_same_process() -> None:
    me = current_process()
    assert me.started is not None and process_alive(me.pid, me.started)
    assert not process_alive(me.pid, "another-boot:1")
    assert not process_alive(dead_pid(), None)
