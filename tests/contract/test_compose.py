"""The deployment files (Dockerfile, docker-compose*.yml, docker/*.sh) are valid and keep the facts that matter.

No Docker engine runs here: Debian's docker-compose validates the files (`config -q`), Python checks the
security facts, and docker/setup.sh runs for real against a loopback stand-in of the cluster and of Kibana.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import typer
import yaml

from soc.cli import app

REPO = Path(__file__).resolve().parents[2]
FILES = {"docker-compose.yml": ("elasticsearch", "kibana",
                                {"ELASTIC_PASSWORD": "Elastic-pw-1", "KIBANA_PASSWORD": "K-pw-1"}),
         "docker-compose.opensearch.yml": ("opensearch", "opensearch-dashboards",
                                           {"OPENSEARCH_INITIAL_ADMIN_PASSWORD": "Os-Admin-pw-1!"})}
SCRIPTS = ("docker/setup.sh", "docker/es-certs.sh")


def compose_bin() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        pytest.fail("docker-compose is missing: run ./dev setup (it installs Debian's docker-compose)")
    return found


def compose(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([compose_bin(), "-f", name, "config", "-q"], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env})


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((REPO / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("name", sorted(FILES))
def test_docker_compose_validates_the_file(name: str) -> None:
    result = compose(name, FILES[name][2])
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", sorted(FILES))
def test_a_missing_password_is_refused(name: str) -> None:
    """Nothing has a default password: without the variable, compose stops with its name."""
    result = compose(name, {})
    assert result.returncode != 0
    assert next(iter(FILES[name][2])) in result.stderr


@pytest.mark.parametrize("name", sorted(FILES))
def test_security_facts(name: str) -> None:
    node, dashboards, _ = FILES[name]
    services: dict[str, Any] = load(name)["services"]
    assert {node, dashboards, "soc-setup", "soc", "soc-worker"} <= set(services)
    for needed in (node, dashboards, "soc"):
        assert services[needed].get("healthcheck", {}).get("test"), f"{needed} has no healthcheck"
    for service_name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{service_name} publishes {port} beyond loopback"
        for dependency, how in (service.get("depends_on") or {}).items():
            if how.get("condition") == "service_healthy":
                assert "healthcheck" in services[dependency], f"{service_name} waits on {dependency}'s health"
    env = services[node]["environment"]
    assert env["discovery.type"] == "single-node"
    if node == "elasticsearch":
        assert env["xpack.security.enabled"] == "true"
        assert env["xpack.security.http.ssl.enabled"] == "true"
        assert "--cacert" in " ".join(services[node]["healthcheck"]["test"])
    else:
        assert "DISABLE_SECURITY_PLUGIN" not in env and "plugins.security.disabled" not in env
        assert env["OPENSEARCH_INITIAL_ADMIN_PASSWORD"].startswith("${")
    flavour = "elasticsearch" if node == "elasticsearch" else "opensearch"
    for soc in ("soc-setup", "soc", "soc-worker"):
        soc_env = services[soc]["environment"]
        assert soc_env["SOC_STORE__BACKEND"] == "search" and soc_env["SOC_STORE__FLAVOUR"] == flavour
        assert soc_env["SOC_STORE__URL"].startswith("https://")
        assert soc_env["SOC_STORE__PASSWORD"].startswith("${") and soc_env["SOC_STORE__CA_CERTS"]
        assert soc_env["SOC_DB"] == "/var/lib/soc/soc.db" and soc_env["SOC_INVENTORY"] == "/etc/soc/inventory.yaml"
    for soc in ("soc", "soc-worker"):
        assert services[soc]["depends_on"]["soc-setup"]["condition"] == "service_completed_successfully"
    assert "socdata:/var/lib/soc" in services["soc"]["volumes"]  # users, tokens, audit: kept across restarts


def shared_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume a service's replicas share: named volumes and bind mounts (an entry
    without a source is an anonymous volume, one per container)."""
    found = []
    for entry in service.get("volumes", []):
        parts = entry.split(":") if isinstance(entry, str) else [entry.get("source") or "", entry["target"]]
        if len(parts) >= 2 and parts[0]:
            found.append((parts[0], parts[1]))
    return found


@pytest.mark.parametrize("name", sorted(FILES))
def test_worker_replicas_each_keep_their_own_sql_file(name: str) -> None:
    """`--scale soc-worker=N` is allowed: the replicas split scan slots through the store, but each needs its
    own SOC_DB (scheduler lease, job history), so no volume shared between replicas may hold it."""
    worker = load(name)["services"]["soc-worker"]
    db = Path(worker["environment"]["SOC_DB"])
    for source, target in shared_mounts(worker):
        assert not db.is_relative_to(target), f"soc-worker's SOC_DB {db} is on {source}, shared between replicas"
    assert str(db.parent) in worker["volumes"]  # an anonymous volume: the file outlives a restart, per container
    assert "container_name" not in worker  # a fixed name would refuse a second replica
    assert not any(":" in str(port) for port in worker.get("ports", []))  # nor would a published host port


@pytest.mark.parametrize("name", sorted(FILES))
def test_setup_service_runs_the_script_on_every_saved_object_file(name: str) -> None:
    setup = load(name)["services"]["soc-setup"]
    assert setup["command"] == ["soc-setup"]
    if setup["environment"]["SOC_STORE__FLAVOUR"] == "elasticsearch":
        assert f"./kibana:{setup['environment']['SOC_KIBANA_DIR']}:ro" in setup["volumes"]
    else:  # the Kibana (Lens) objects are not for OpenSearch Dashboards: docker/setup.sh does not import them
        assert "SOC_KIBANA_DIR" not in setup["environment"]
        assert not any(str(volume).startswith("./kibana:") for volume in setup["volumes"])
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert "COPY docker/setup.sh /usr/local/bin/soc-setup" in dockerfile
    script = (REPO / "docker/setup.sh").read_text(encoding="utf-8")
    assert "soc store setup" in script and '"$objects"/*.ndjson' in script


def commands() -> list[list[str]]:
    """Every soc command line of the Dockerfile's CMD and of the compose files."""
    found = [yaml.safe_load(line.removeprefix("CMD "))
             for line in (REPO / "Dockerfile").read_text(encoding="utf-8").splitlines() if line.startswith("CMD ")]
    for name in FILES:
        found += [service["command"] for service in load(name)["services"].values()
                  if service.get("command", [""])[0] == "soc"]
    return found


def test_the_soc_command_lines_use_options_that_exist() -> None:
    lines = commands()
    assert {line[1] for line in lines} >= {"serve", "worker"}
    group = typer.main.get_command(app)
    for line in lines:
        command = group.commands[line[1]]  # type: ignore[attr-defined]
        command.make_context(line[1], list(line[2:]))  # raises on an unknown option or a bad value


@pytest.mark.parametrize("script", SCRIPTS)
def test_shell_scripts_pass_syntax_and_shellcheck(script: str) -> None:
    result = subprocess.run(["sh", "-n", script], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    if shutil.which("shellcheck"):
        result = subprocess.run(["shellcheck", script], cwd=REPO, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout


class StandIn(BaseHTTPRequestHandler):
    """The cluster and Kibana as docker/setup.sh sees them: 200 to what it asks, recording each request."""

    seen: ClassVar[list[tuple[str, str, dict[str, str], bytes]]] = []

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        StandIn.seen.append((self.command, self.path, dict(self.headers), body))
        reply = b"{}"
        if "_import" in self.path:  # under /refuse/, Kibana refuses the file
            reply = b'{"success":false,"errors":[]}' if self.path.startswith("/refuse/") else b'{"success":true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@pytest.fixture
def stand_in() -> Iterator[str]:
    StandIn.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_setup_script_sets_up_the_store_and_imports_every_ndjson(stand_in: str, tmp_path: Path) -> None:
    objects = tmp_path / "kibana"
    objects.mkdir()
    for stem in ("soc-findings", "soc-runs"):
        (objects / f"{stem}.ndjson").write_text('{"type":"index-pattern"}\n', encoding="utf-8")
    (objects / "README.md").write_text("not a saved object\n", encoding="utf-8")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "soc").write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/soc-calls\n', encoding="utf-8")
    (bin_dir / "soc").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SOC_STORE__URL": stand_in, "SOC_STORE__FLAVOUR": "elasticsearch",
           "SOC_STORE__USERNAME": "elastic", "SOC_STORE__PASSWORD": 'p"w\\1', "KIBANA_PASSWORD": "kib-pw",
           "SOC_KIBANA_URL": stand_in, "SOC_KIBANA_DIR": str(objects), "SOC_SETUP_TIMEOUT": "20"}
    result = subprocess.run(["sh", str(REPO / "docker/setup.sh")], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "soc-calls").read_text(encoding="utf-8") == "store setup\n"
    auth = "Basic " + base64.b64encode(b'elastic:p"w\\1').decode()
    assert all(headers.get("Authorization") == auth for _, _, headers, _ in StandIn.seen)
    password = [body for _, path, _, body in StandIn.seen if path == "/_security/user/kibana_system/_password"]
    assert password == [b'{"password": "kib-pw"}']
    imports = [(headers, body) for method, path, headers, body in StandIn.seen
               if method == "POST" and path == "/api/saved_objects/_import?overwrite=true"]
    assert len(imports) == 2
    assert all(headers.get("kbn-xsrf") == "true" for headers, _ in imports)
    assert {name for name in ("soc-findings.ndjson", "soc-runs.ndjson")
            if any(f'filename="{name}"'.encode() in body for _, body in imports)} == {"soc-findings.ndjson",
                                                                                       "soc-runs.ndjson"}


def test_setup_script_fails_when_an_import_is_refused(stand_in: str, tmp_path: Path) -> None:
    """An answer without success:true stops the script (so soc and soc-worker do not start)."""
    objects = tmp_path / "kibana"
    objects.mkdir()
    (objects / "broken.ndjson").write_text("{}\n", encoding="utf-8")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "soc").write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    (bin_dir / "soc").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SOC_STORE__URL": stand_in, "SOC_STORE__FLAVOUR": "elasticsearch",
           "SOC_STORE__USERNAME": "elastic", "SOC_STORE__PASSWORD": "pw", "SOC_KIBANA_URL": stand_in + "/refuse",
           "SOC_KIBANA_DIR": str(objects), "SOC_SETUP_TIMEOUT": "20"}
    result = subprocess.run(["sh", str(REPO / "docker/setup.sh")], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode != 0
    assert "broken.ndjson" in result.stderr
    assert any(path.startswith("/refuse/api/saved_objects/_import") and headers.get("kbn-xsrf") == "true"
               for _, path, headers, _ in StandIn.seen)


def test_setup_script_on_opensearch_sets_up_the_store_and_imports_nothing(stand_in: str, tmp_path: Path) -> None:
    """The saved objects are Kibana's (Lens): on OpenSearch the script makes the index templates, asks nothing
    of OpenSearch Dashboards and says how to make the index pattern there."""
    objects = tmp_path / "kibana"
    objects.mkdir()
    (objects / "data-views.ndjson").write_text('{"type":"index-pattern"}\n', encoding="utf-8")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "soc").write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/soc-calls\n', encoding="utf-8")
    (bin_dir / "soc").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SOC_STORE__URL": stand_in, "SOC_STORE__FLAVOUR": "opensearch",
           "SOC_STORE__USERNAME": "admin", "SOC_STORE__PASSWORD": "pw", "KIBANA_PASSWORD": "unused",
           "SOC_KIBANA_URL": stand_in + "/dashboards", "SOC_KIBANA_DIR": str(objects), "SOC_SETUP_TIMEOUT": "20"}
    result = subprocess.run(["sh", str(REPO / "docker/setup.sh")], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "soc-calls").read_text(encoding="utf-8") == "store setup\n"
    paths = [path for _, path, _, _ in StandIn.seen]
    assert paths and all(path.startswith("/_cluster/health") for path in paths)  # no kibana_system, no dashboards
    said = [line for line in result.stdout.splitlines() if "soc-*" in line]
    assert len(said) == 1 and "Kibana" in said[0] and "OpenSearch Dashboards" in said[0]
