"""Benchmark (b): a generated lab of 200 portals. Full assessment with `soc scan` vs bare sslyze CLI
on the same 200 TLS targets: wall time, portals per second and peak memory of each.

Targets: soc at least 0.75x sslyze's portals per second; soc's peak memory under 1 GiB.
Not part of the tests.

    .venv/bin/python bench/scale_200.py [--portals 200]
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

from bench.common import (
    bench_env,
    measured,
    own_peak_rss_mib,
    soc_command,
    sslyze_command,
    tls_case_names,
    write_inventory,
)
from soc.lab import PortalLab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--portals", type=int, default=200, help="portals in the generated lab (default 200)")
    args = parser.parse_args()
    names = tls_case_names()
    replicas = math.ceil(args.portals / len(names))
    env = bench_env()
    with tempfile.TemporaryDirectory(prefix="soc-bench-") as tmp, \
            PortalLab(Path(tmp) / "lab", cases=names, replicas=replicas, base_address="127.0.60.") as lab:
        del lab.cases[args.portals:]
        write_inventory(lab, lab.cases)
        work = Path(tmp)
        count = len(lab.cases)
        print(f"{count} portals on loopback ({len(names)} lab cases x {replicas}), same limits for both tools")
        sslyze = measured(sslyze_command(lab, work), env)
        soc = measured(soc_command(lab, work), env)
    for name, result in (("sslyze CLI (TLS only)", sslyze), ("soc scan (full)", soc)):
        print(f"  {name:22s} {result.seconds:7.2f} s  {count / result.seconds:6.2f} portals/s  "
              f"peak {result.peak_rss_mib:7.1f} MiB")
    print(f"portals/s ratio soc/sslyze: {sslyze.seconds / soc.seconds:.2f}  (target >= 0.75)")
    print(f"soc peak memory: {soc.peak_rss_mib:.1f} MiB  (target < 1024 MiB); lab process peak "
          f"{own_peak_rss_mib():.1f} MiB")


if __name__ == "__main__":
    main()
