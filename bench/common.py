"""Shared pieces of the benchmarks: the lab targets, the two commands, timing with peak memory."""

from __future__ import annotations

import dataclasses
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from soc.lab import LabCase, PortalLab
from soc.lab.cases import (
    CASE_NAMES,
    CASES_BY_NAME,
    UNREACHABLE,
    inventory_yaml,
    registry_address,
    select_cases,
    slot_address,
)
from soc.lab.latency import LatencyProxy

VENV_BIN = Path(sys.executable).parent
SSLYZE_COMMANDS = ["--certinfo", "--sslv2", "--sslv3", "--tlsv1", "--tlsv1_1", "--tlsv1_2", "--tlsv1_3",
                   "--heartbleed", "--robot", "--openssl_ccs", "--compression", "--reneg", "--fallback"]
SSLYZE_CONCURRENT_SERVERS = 10  # sslyze's Scanner default (concurrent_server_scans_limit)
SSLYZE_CONNECTIONS_PER_SERVER = 5  # sslyze's default per-server limit
RUN_TIMEOUT = 1800


@dataclass(frozen=True)
class Measure:
    """One timed run of a command."""

    seconds: float
    peak_rss_mib: float


def tls_case_names() -> list[str]:
    """Lab cases that speak TLS (the unreachable ones would only measure timeouts)."""
    return [spec.name for spec in select_cases(list(CASE_NAMES)) if spec.expected != UNREACHABLE]


def bench_env() -> dict[str, str]:
    """Same concurrency limits for both tools."""
    return dict(os.environ, SOC_CONCURRENT_PORTALS=str(SSLYZE_CONCURRENT_SERVERS),
                SOC_CONNECTIONS_PER_HOST=str(SSLYZE_CONNECTIONS_PER_SERVER), PYTHONWARNINGS="ignore")


def measured(command: list[str], env: dict[str, str], timeout: float = RUN_TIMEOUT) -> Measure:
    """Run a command; its wall time and its peak resident memory (through a wrapper process)."""
    wrapper = [sys.executable, str(Path(__file__).with_name("peak_rss.py")), *command]
    start = time.perf_counter()
    done = subprocess.run(wrapper, check=True, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    return Measure(seconds, float(done.stdout.strip().splitlines()[-1]))


def soc_command(lab: PortalLab, workdir: Path, only: str | None = None) -> list[str]:
    """`soc scan` of the lab inventory (all collectors unless `only`)."""
    command = [str(VENV_BIN / "soc"), "scan", "--inventory", str(lab.inventory_path),
               "--db", str(workdir / "bench.db"), "--json", str(workdir / "soc.json")]
    return command + (["--only", only] if only else [])


def sslyze_command(lab: PortalLab, workdir: Path, cases: list[LabCase] | None = None) -> list[str]:
    """sslyze's own CLI on the same targets (the lab's, or `cases`) with the same scan commands."""
    targets = [f"{c.host}:{c.port}{{{c.address}}}" for c in (lab.cases if cases is None else cases)]
    return [sys.executable, "-m", "sslyze", *SSLYZE_COMMANDS, f"--certinfo_ca_file={lab.trust_store_path}",
            "--quiet", f"--json_out={workdir / 'sslyze.json'}", *targets]


def own_peak_rss_mib() -> float:
    """This process's peak resident memory (the lab's servers run here)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def lab_registry_url(lab: PortalLab) -> str:
    """The trust-label registry URL the lab wrote into its inventory."""
    inventory = yaml.safe_load(lab.inventory_path.read_text(encoding="utf-8"))
    return str(inventory["settings"]["trustlabel"]["registry_url"])


def write_inventory(lab: PortalLab, cases: list[LabCase], registry_url: str | None = None) -> None:
    """Rewrite the lab's inventory for `cases` (a subset of the lab's, or the same behind a proxy)."""
    text = inventory_yaml(cases, lab.trust_store_path, registry_url or lab_registry_url(lab))
    lab.inventory_path.write_text(text, encoding="utf-8")


@dataclass(frozen=True)
class FrontedLab:
    """A running lab as the scanner sees it behind a `LatencyProxy`."""

    cases: list[LabCase]
    """The lab's cases at the proxy's addresses (same host names and ports)."""
    silent: frozenset[str]
    """URLs of the portals whose every listener is a silent route."""
    registry_url: str
    """The trust-label registry, behind the proxy too."""
    direct: tuple[str, ...]
    """What the scanner still reaches without the proxy."""


def front_lab(lab: PortalLab, proxy: LatencyProxy, public_base: str, silent_every: int = 0) -> FrontedLab:
    """Put the proxy in front of every portal-facing listener of `lab`, on the addresses of `public_base`.

    Portal n of the lab (HTTPS, http://, its extra open ports) is relayed from the same ports on
    slot n of `public_base`; every `silent_every`-th portal gets silent routes (0: none). The AIA
    server (.250) stays direct: its URLs are written into the certificates (caIssuers are fetched once
    per run, cached).
    """
    cases: list[LabCase] = []
    silent: set[str] = set()
    for index, case in enumerate(lab.cases):
        public = slot_address(public_base, index + 1)
        latency = proxy.latency
        if silent_every and index % silent_every == silent_every - 1:
            latency = dataclasses.replace(latency, silent=True)
            silent.add(case.url)
        ports = [case.port, *CASES_BY_NAME[case.name].http.open_ports]
        if case.http_url:
            ports.append(urlsplit(case.http_url).port or 80)
        for port in ports:
            proxy.add((public, port), (case.address, port), latency)
        cases.append(dataclasses.replace(case, address=public))
    registry = urlsplit(lab_registry_url(lab))
    assert registry.hostname is not None and registry.port is not None
    public_registry = registry_address(public_base)
    proxy.add((public_registry, registry.port), (registry.hostname, registry.port))
    direct = (f"the AIA server {lab.aia_url.rsplit('/', 1)[0]}/ (its URLs are in the certificates)",)
    return FrontedLab(cases, frozenset(silent), f"http://{public_registry}:{registry.port}", direct)
