"""Benchmark: `soc scan` (full pipeline: probe, sslyze, AIA, checks, store, JSON) vs sslyze's own CLI.

Both scan the same TLS-serving lab portals (loopback only) with the same scan commands and the
same concurrency limits, alternately, in one run. Prints each wall time and the ratio
soc/sslyze (target: at most 1.3). Not part of the test suite.

    .venv/bin/python bench/scan_vs_sslyze.py [--rounds 3] [--replicas 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from soc.lab import PortalLab
from soc.lab.cases import CASE_NAMES, UNREACHABLE, select_cases

VENV_BIN = Path(sys.executable).parent
SSLYZE_COMMANDS = ["--certinfo", "--sslv2", "--sslv3", "--tlsv1", "--tlsv1_1", "--tlsv1_2", "--tlsv1_3",
                   "--heartbleed", "--robot", "--openssl_ccs", "--compression", "--reneg", "--fallback"]
SSLYZE_CONCURRENT_SERVERS = 10  # sslyze's Scanner default (concurrent_server_scans_limit)
SSLYZE_CONNECTIONS_PER_SERVER = 5  # sslyze's default per-server limit
RUN_TIMEOUT = 900


def tls_case_names() -> list[str]:
    """Lab cases that speak TLS (the unreachable ones would only measure timeouts)."""
    return [spec.name for spec in select_cases(list(CASE_NAMES)) if spec.expected != UNREACHABLE]


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, timeout=RUN_TIMEOUT)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--replicas", type=int, default=1, help="copies of each lab case (default 1)")
    args = parser.parse_args()
    env = dict(os.environ, SOC_CONCURRENT_PORTALS=str(SSLYZE_CONCURRENT_SERVERS),
               SOC_CONNECTIONS_PER_HOST=str(SSLYZE_CONNECTIONS_PER_SERVER), PYTHONWARNINGS="ignore")
    with tempfile.TemporaryDirectory(prefix="soc-bench-") as tmp, \
            PortalLab(Path(tmp) / "lab", cases=tls_case_names(), replicas=args.replicas) as lab:
        targets = [f"{c.host}:{c.port}{{{c.address}}}" for c in lab.cases]
        soc_cmd = [str(VENV_BIN / "soc"), "scan", "--inventory", str(lab.inventory_path),
                   "--db", f"{tmp}/bench.db", "--json", f"{tmp}/soc.json"]
        sslyze_cmd = [sys.executable, "-m", "sslyze", *SSLYZE_COMMANDS, f"--certinfo_ca_file={lab.trust_store_path}",
                      "--quiet", f"--json_out={tmp}/sslyze.json", *targets]
        print(f"{len(targets)} TLS portals on loopback, {args.rounds} rounds, same scan commands and limits")
        soc_times, sslyze_times = [], []
        for round_number in range(1, args.rounds + 1):
            sslyze_times.append(timed(sslyze_cmd, env))
            soc_times.append(timed(soc_cmd, env))
            print(f"  round {round_number}: sslyze CLI {sslyze_times[-1]:6.2f} s   soc scan {soc_times[-1]:6.2f} s")
    soc_median, sslyze_median = statistics.median(soc_times), statistics.median(sslyze_times)
    print(f"median wall time: sslyze CLI {sslyze_median:.2f} s, soc scan {soc_median:.2f} s")
    print(f"ratio soc/sslyze: {soc_median / sslyze_median:.2f}  (target <= 1.30)")


if __name__ == "__main__":
    main()
