"""Benchmark (a): the full assessment of the lab (`soc scan`: TLS, HTTP, trust label, ports, checks,
store, JSON) and the TLS part alone (`--only tls`) vs sslyze's own CLI on the same TLS targets.

Same scan commands and concurrency limits, alternating rounds, one run. Prints each wall time and
the ratios (targets: TLS alone <= 1.3x bare sslyze, full assessment <= 1.5x). Not part of the tests.

    .venv/bin/python bench/scan_vs_sslyze.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench.common import bench_env, measured, soc_command, sslyze_command, tls_case_names
from soc.lab import PortalLab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    args = parser.parse_args()
    env = bench_env()
    times: dict[str, list[float]] = {"sslyze CLI": [], "soc --only tls": [], "soc full": []}
    with tempfile.TemporaryDirectory(prefix="soc-bench-") as tmp, \
            PortalLab(Path(tmp) / "lab", cases=tls_case_names()) as lab:
        work = Path(tmp)
        commands = {"sslyze CLI": sslyze_command(lab, work), "soc --only tls": soc_command(lab, work, "tls"),
                    "soc full": soc_command(lab, work)}
        print(f"{len(lab.cases)} TLS portals on loopback, {args.rounds} rounds, same scan commands and limits")
        for round_number in range(1, args.rounds + 1):
            line = []
            for name, command in commands.items():
                times[name].append(measured(command, env).seconds)
                line.append(f"{name} {times[name][-1]:6.2f} s")
            print(f"  round {round_number}: " + "   ".join(line))
    median = {name: statistics.median(values) for name, values in times.items()}
    print("median wall time: " + ", ".join(f"{name} {value:.2f} s" for name, value in median.items()))
    base = median["sslyze CLI"]
    print(f"ratio soc --only tls / sslyze: {median['soc --only tls'] / base:.2f}  (target <= 1.30)")
    print(f"ratio soc full / sslyze:       {median['soc full'] / base:.2f}  (target <= 1.50)")


if __name__ == "__main__":
    main()
