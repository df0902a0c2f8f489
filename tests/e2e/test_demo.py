"""`soc demo` (the README's `./dev demo`) through the real command: the lab, a first scan, then either the end
(`--no-serve`, for scripts) or the dashboard with the scheduler and a demo operator until Ctrl-C.

Two lab cases and ephemeral ports keep it to seconds and clear of a demo someone is running (127.0.10.x).
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx
import pytest
import yaml

from soc.cli.scan import demo_operator
from soc.core.models import Role
from soc.services.context import ServiceContext
from soc.services.users import AuthError, login, set_disabled

SOC = str(Path(sys.executable).parent / "soc")
CASES = ("--case", "good", "--case", "expired")
ENV = {"PATH": "/usr/bin:/bin", "COLUMNS": "200", "PYTHONWARNINGS": "ignore"} | {
    name: value for name, value in os.environ.items() if name.startswith(("FAKETIME", "LD_PRELOAD"))}
LOGIN = re.compile(r"Sign in: (?P<address>http://127\.0\.0\.1:\d+/)login — .*user (?P<user>\S+) \((?P<role>\w+)\), "
                   r".*password (?P<password>\S+) ")


def lab_endpoints(workdir: Path) -> list[tuple[str, int]]:
    """Every (address, port) the demo's lab listened on: each portal's https and http:// listeners."""
    inventory = yaml.safe_load((workdir / "lab" / "inventory.yaml").read_text(encoding="utf-8"))
    endpoints = []
    for portal in inventory["portals"]:
        for url in (portal["url"], portal["http_url"]):
            endpoints.append((portal["address"], int(url.rsplit(":", 1)[1].strip("/"))))
    return endpoints


def refused(address: str, port: int) -> bool:
    """Nothing listens there any more."""
    try:
        socket.create_connection((address, port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.lab
def test_no_serve_scans_the_lab_shows_the_findings_and_ends(tmp_path: Path) -> None:
    db, out = tmp_path / "soc.db", tmp_path / "demo.json"
    result = subprocess.run([SOC, "demo", "--no-serve", "--port", "0", "--db", str(db), "--json", str(out), *CASES],
                            capture_output=True, text=True, timeout=120, env=ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tls.cert.expired" in result.stdout and "Sign in" not in result.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert {portal["url"].split(".")[0].removeprefix("https://"): {f["check_id"] for f in portal["findings"]}
            for portal in report["portals"]} == {"good": set(), "expired": {"tls.cert.expired"}}
    assert all(refused(*endpoint) for endpoint in lab_endpoints(tmp_path))


def lines_of(stream: IO[str]) -> queue.Queue[str | None]:
    """The stream's lines as they come (None at its end), read by a daemon thread."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def wait_for(lines: queue.Queue[str | None], pattern: re.Pattern[str], seen: list[str], seconds: float
             ) -> re.Match[str]:
    """The first line matching `pattern` within `seconds` (every line read is kept in `seen`)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if (match := pattern.search(line)) is not None:
            return match
    raise AssertionError("the demo never printed its login:\n" + "".join(seen))


@pytest.mark.lab
def test_the_demo_serves_the_dashboard_with_a_demo_operator_until_ctrl_c(tmp_path: Path) -> None:
    db = tmp_path / "soc.db"
    process = subprocess.Popen([SOC, "demo", "--port", "0", "--web-port", "0", "--db", str(db), *CASES],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    seen: list[str] = []
    try:
        login = wait_for(lines_of(process.stdout), LOGIN, seen, 120)  # type: ignore[arg-type]
        address = login["address"]
        assert (login["user"], login["role"]) == ("demo", "operator")
        assert any("tls.cert.expired" in line for line in seen)  # the first scan was shown before serving
        with httpx.Client(base_url=address, timeout=10, trust_env=False) as client:
            deadline = time.monotonic() + 30
            while (health := client.get("/healthz")).status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.2)  # the scheduler's start-up check may still be running
            assert health.status_code == 200, health.text
            assert health.json()["scheduler"]["running"] is True
            form = client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert token is not None
            wrong = client.post("/login", data={"username": "demo", "password": "not-" + login["password"],
                                                "csrf_token": token[1]})
            assert wrong.status_code == 401
            signed_in = client.post("/login", data={"username": "demo", "password": login["password"],
                                                    "csrf_token": token[1], "next": "/"})
            assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"
            overview = client.get("/")
            assert overview.status_code == 200 and "demo · vận hành" in overview.text
            assert client.get("/api/v1/session").json()["user"] == "demo"
        endpoints = lab_endpoints(tmp_path)
        assert not any(refused(*endpoint) for endpoint in endpoints)  # the lab runs while the dashboard does
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err
    port = int(address.rsplit(":", 1)[1].strip("/"))
    assert refused("127.0.0.1", port)
    assert all(refused(*endpoint) for endpoint in endpoints)


def test_the_demo_operator_gets_a_new_password_each_time_and_is_enabled(context: ServiceContext) -> None:
    user, first = demo_operator(context)
    assert (user.name, user.role, user.disabled) == ("demo", Role.OPERATOR, False) and len(first) >= 12
    set_disabled(context, "demo")
    again, second = demo_operator(context)
    assert second != first and not again.disabled and again.role is Role.OPERATOR
    assert login(context, "demo", second).name == "demo"
    with pytest.raises(AuthError):
        login(context, "demo", first)
