"""Shared pieces of the benchmarks: the lab targets, the two commands, timing with peak memory."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from soc.lab import PortalLab
from soc.lab.cases import CASE_NAMES, UNREACHABLE, select_cases

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


def measured(command: list[str], env: dict[str, str]) -> Measure:
    """Run a command; its wall time and its peak resident memory (through a wrapper process)."""
    wrapper = [sys.executable, str(Path(__file__).with_name("peak_rss.py")), *command]
    start = time.perf_counter()
    done = subprocess.run(wrapper, check=True, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True, timeout=RUN_TIMEOUT)
    seconds = time.perf_counter() - start
    return Measure(seconds, float(done.stdout.strip().splitlines()[-1]))


def soc_command(lab: PortalLab, workdir: Path, only: str | None = None) -> list[str]:
    """`soc scan` of the lab inventory (all collectors unless `only`)."""
    command = [str(VENV_BIN / "soc"), "scan", "--inventory", str(lab.inventory_path),
               "--db", str(workdir / "bench.db"), "--json", str(workdir / "soc.json")]
    return command + (["--only", only] if only else [])


def sslyze_command(lab: PortalLab, workdir: Path) -> list[str]:
    """sslyze's own CLI on the same targets with the same scan commands."""
    targets = [f"{c.host}:{c.port}{{{c.address}}}" for c in lab.cases]
    return [sys.executable, "-m", "sslyze", *SSLYZE_COMMANDS, f"--certinfo_ca_file={lab.trust_store_path}",
            "--quiet", f"--json_out={workdir / 'sslyze.json'}", *targets]


def own_peak_rss_mib() -> float:
    """This process's peak resident memory (the lab's servers run here)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
