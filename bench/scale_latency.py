"""Benchmark (c): scale at real latency. 200 lab portals behind a latency-injecting loopback proxy
(100 ms RTT, a little jitter, rare stalls, 10% of the portals silent): the full assessment (`soc scan`,
every collector, the product's own settings) vs sslyze's CLI (its own defaults) on the same targets
through the same proxy. Prints portals per second and peak memory of each, the ratio, and the wall
time of a 10,000-portal inventory at each measured rate.

Target: soc >= 1.0x sslyze's portals per second while doing the full assessment. Not part of the tests.

    .venv/bin/python -m bench.scale_latency [--portals 200] [--rtt-ms 100] [--silent-percent 10]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import (
    FrontedLab,
    Measure,
    front_lab,
    measured,
    own_peak_rss_mib,
    soc_command,
    sslyze_command,
    tls_case_names,
    write_inventory,
)
from soc.core.settings import Settings
from soc.lab import PortalLab
from soc.lab.cases import UNREACHABLE
from soc.lab.latency import Latency, LatencyProxy

BACKEND_BASE = "127.0.100."
"""Where the lab's servers really listen."""
PUBLIC_BASE = "127.0.110."
"""Where the scanners connect: the proxy, on the same ports."""
INVENTORY_SIZE = 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--portals", type=int, default=200, help="portals in the generated lab (default 200)")
    parser.add_argument("--rtt-ms", type=float, default=100.0, help="round-trip time added (default 100)")
    parser.add_argument("--jitter-ms", type=float, default=5.0, help="± one-way jitter (default 5)")
    parser.add_argument("--stall-probability", type=float, default=0.001, help="per chunk (default 0.001)")
    parser.add_argument("--stall-ms", type=float, default=300.0, help="length of a stall (default 300)")
    parser.add_argument("--silent-percent", type=float, default=10.0, help="silent portals (default 10)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per tool run (default 1800)")
    parser.add_argument("--skip-sslyze", action="store_true", help="measure soc only (e.g. while tuning)")
    args = parser.parse_args()
    latency = Latency(rtt_s=args.rtt_ms / 1000, jitter_s=args.jitter_ms / 1000,
                      stall_probability=args.stall_probability, stall_s=args.stall_ms / 1000)
    silent_every = round(100 / args.silent_percent) if args.silent_percent > 0 else 0
    names = tls_case_names()
    env = dict(os.environ, PYTHONWARNINGS="ignore")  # each tool with its own defaults
    with tempfile.TemporaryDirectory(prefix="soc-bench-") as tmp, \
            PortalLab(Path(tmp) / "lab", port=8443, cases=names, replicas=math.ceil(args.portals / len(names)),
                      base_address=BACKEND_BASE) as lab, \
            LatencyProxy(latency, seed=1) as proxy:
        del lab.cases[args.portals:]
        fronted = front_lab(lab, proxy, PUBLIC_BASE, silent_every)
        write_inventory(lab, fronted.cases, fronted.registry_url)
        work = Path(tmp)
        _describe(fronted, latency)
        results: dict[str, Measure] = {}
        if not args.skip_sslyze:
            results["sslyze CLI (TLS only)"] = _run("sslyze", sslyze_command(lab, work, fronted.cases), env,
                                                    args.timeout, proxy)
            scanned, missed = _sslyze_outcome(fronted, work / "sslyze.json")
            print(f"  sslyze: {scanned} of {len(fronted.cases)} servers scanned; not scanned besides the silent "
                  f"ones: {missed or 'none'}")
        results["soc scan (full)"] = _run("soc", soc_command(lab, work), env, args.timeout, proxy)
        exact, complete, partial = _soc_outcome(fronted, work / "soc.json")
        print(f"  soc: {exact} of {len(fronted.cases)} portals with exactly the lab's expected check ids; "
              f"{complete} complete (every collector); incomplete besides the silent ones: {partial or 'none'}")
    _report(len(fronted.cases), results)


def _describe(fronted: FrontedLab, latency: Latency) -> None:
    settings = Settings()
    print(f"{len(fronted.cases)} lab portals behind the latency proxy: RTT {latency.rtt_s * 1000:g} ms "
          f"(±{latency.jitter_s * 1000:g} ms jitter each way, stalls of {latency.stall_s * 1000:g} ms "
          f"with p={latency.stall_probability:g} per chunk), {len(fronted.silent)} silent (accept, never answer)")
    print("  behind the proxy: every portal's HTTPS, http:// and extra open ports, the trust-label registry")
    print(f"  direct: {'; '.join(fronted.direct)}; TCP connects complete locally, so nmap's connect scan "
          "and closed ports see no latency")
    print("  sslyze CLI defaults: 10 servers at once, 5 connections each, 5 s network timeout, 3 retries")
    print(f"  soc settings: {settings.concurrent_portals} portals at once, {settings.connections_per_host} "
          f"connections per address, probe timeout {settings.probe_timeout:g} s, network timeout "
          f"{settings.network_timeout} s, {settings.network_retries} retry, HTTP timeout {settings.http_timeout:g} s")


def _run(name: str, command: list[str], env: dict[str, str], timeout: float, proxy: LatencyProxy) -> Measure:
    proxy.reset_stats()
    result = measured(command, env, timeout)
    stats = proxy.stats()
    late = 100 * stats.late / stats.deliveries if stats.deliveries else 0.0
    print(f"  {name}: {result.seconds:.1f} s; proxy relayed {stats.connections} connections, "
          f"{stats.bytes_relayed / 2**20:.1f} MiB; deliveries late by > 20 ms: {late:.2f}% "
          f"(mean lag {stats.mean_lag_s * 1000:.1f} ms, max {stats.max_lag_s * 1000:.0f} ms)")
    return result


def _sslyze_outcome(fronted: FrontedLab, path: Path) -> tuple[int, str]:
    """(servers sslyze scanned, lab cases of the reachable servers it did not scan)."""
    report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    by_host = {case.host: case for case in fronted.cases}
    missed: Counter[str] = Counter()
    scanned = 0
    for server in report["server_scan_results"]:
        case = by_host[server["server_location"]["hostname"]]
        if server["scan_status"] == "COMPLETED":
            scanned += 1
        elif case.url not in fronted.silent:
            missed[case.name] += 1
    return scanned, _counted(missed)


def _soc_outcome(fronted: FrontedLab, path: Path) -> tuple[int, int, str]:
    """(portals with exactly their expected check ids, portals complete, incomplete collectors of the others)."""
    report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    portals = {portal["url"]: portal for portal in report["portals"]}
    exact = complete = 0
    partial: Counter[str] = Counter()
    for case in fronted.cases:
        portal, expected = portals[case.url], set(case.expected)
        if case.url in fronted.silent:  # its open ports still accept: the ports findings remain
            expected = set(UNREACHABLE) | {check for check in expected if check.startswith("ports.")}
        exact += {f["check_id"] for f in portal["findings"]} == expected
        complete += bool(portal["complete"])
        if not portal["complete"] and case.url not in fronted.silent:
            missing = ",".join(name for name, done in portal["collectors"].items() if not done)
            partial[f"{case.name} ({missing})"] += 1
    return exact, complete, _counted(partial)


def _counted(counter: Counter[str]) -> str:
    return ", ".join(f"{name} x{count}" for name, count in counter.most_common())


def _report(count: int, results: dict[str, Measure]) -> None:
    rates = {name: count / result.seconds for name, result in results.items()}
    for name, result in results.items():
        hours = INVENTORY_SIZE / rates[name] / 3600
        print(f"  {name:22s} {result.seconds:7.1f} s  {rates[name]:6.2f} portals/s  "
              f"peak {result.peak_rss_mib:7.1f} MiB  {INVENTORY_SIZE:,} portals: ~{hours:.1f} h")
    if len(rates) == 2:
        soc, sslyze = rates["soc scan (full)"], rates["sslyze CLI (TLS only)"]
        print(f"portals/s ratio soc/sslyze: {soc / sslyze:.2f}  (target >= 1.0)")
    print(f"lab + proxy process peak {own_peak_rss_mib():.1f} MiB")


if __name__ == "__main__":
    main()
