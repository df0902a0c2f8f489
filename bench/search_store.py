"""Benchmark: the search backend's writer against a bulk floor, its KPI queries against SQLite's, its size.

1. Writer vs floor: portals (4 observations — tls, http, label, ports — a few findings, an assessment) go
   through `SearchFindingStore.record_portal` until N findings + observations are written; then the very
   documents it wrote (read back, pre-serialised outside the timing) go through `elasticsearch.helpers.bulk`
   into indices of a fresh prefix with the same templates. Target: writer >= 0.8x the floor. Every request
   of the writer is timed, to split its time by request kind.
2. KPI queries: the same portals written through `record_portal` on SQLite too, a second day's scan of a
   share of them (resolving, reopening, new findings), deadlines applied on both; then `kpis()` through a
   ServiceContext and the store calls it makes, timed on each backend (median of a few runs).
3. Sizing: documents per portal per scan and bytes per document (the engine's store size when it reports
   one, else the JSON sources), projected to a year of daily scans of 500 and 5,000 portals.

Runs against osmem-server (an in-memory OpenSearch-compatible server) with N = 20,000, or against the
cluster of `SOC_TEST_SEARCH_URL` (see tests/search_fixtures.py) with N = 1,000,000. Not part of the tests.

    .venv/bin/python -m bench.search_store [--docs N] [--second-share 0.1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from elasticsearch import helpers
from pydantic import SecretStr

from checks.catalogue import catalogue
from soc.core.clock import LOCAL_ZONE, FixedClock, end_of_day
from soc.core.models import Finding, FindingStatus, Observation, PortalScan
from soc.core.settings import Settings, StoreSettings
from soc.inventory import Inventory, load_inventory
from soc.services.compliance import kpis
from soc.services.context import ServiceContext
from soc.services.sla import SLA_WINDOW, apply_deadlines
from soc.store import open_backend
from soc.store.query import FindingQuery, FindingSort
from soc.store.search import SearchBackend, SearchIndices, open_indices
from soc.store.search.shapes import FINDING_EVENTS, FINDINGS, OBSERVATIONS, PORTAL_SCANS, RUN_FINDINGS, Shape

REAL_URL = os.environ.get("SOC_TEST_SEARCH_URL")
DOCS_OSMEM = 20_000
"""osmem-server bulk-indexes ~600 documents/s and grows to ~1.7 GB at 100k: 20k keeps the run in minutes."""
DOCS_REAL = 1_000_000
FLOOR_CAP = 300_000
"""At most this many of the writer's documents are replayed as the floor (held in memory, pre-serialised)."""
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=LOCAL_ZONE)
"""The first scan's moment; the second is a day later, the KPIs are asked ten days later."""
AGENCIES = 100
RUNS_OF_KPIS = 3
CHUNK = 500
"""Documents per bulk request, the writer's (`soc.store.search.indices.BULK_CHUNK`)."""
PREFIXES = ("tls.", "http.", "ports.", "trustlabel.")
COLLECTORS = ("tls", "http", "label", "ports")
HISTORY: tuple[Shape, ...] = (FINDING_EVENTS, OBSERVATIONS, RUN_FINDINGS, PORTAL_SCANS)
ISSUERS = ("CN=R11,O=Let's Encrypt,C=US", "CN=GlobalSign GCC R6 AlphaSSL CA 2023,O=GlobalSign nv-sa,C=BE",
           "CN=VNPT Certification Authority,O=VNPT Group,C=VN")


# --- the portals ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PortalInput:
    """What one portal's scan hands the store."""

    url: str
    observations: list[Observation]
    findings: list[Finding]
    assessment: PortalScan


def portal_url(index: int) -> str:
    """Portal n (a public-looking name, never contacted: nothing is scanned here)."""
    return f"https://p{index:05d}.dongnai.gov.vn/"


def observations_of(url: str, at: datetime, rng: random.Random) -> list[Observation]:
    """The four collectors' observations of a portal, with small JSON data like theirs."""
    host = url.split("/")[2]
    data: dict[str, dict[str, Any]] = {
        "tls": {"host": host, "port": 443, "protocols": {"tls1_0": rng.random() < 0.2, "tls1_2": True,
                                                         "tls1_3": rng.random() < 0.6},
                "ciphers": rng.sample(["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
                                       "AES256-SHA", "DES-CBC3-SHA"], 2),
                "certificate": {"subject": f"CN={host}", "issuer": rng.choice(ISSUERS),
                                "not_after": "2027-02-01T00:00:00Z", "sha256": f"{rng.getrandbits(256):064x}"},
                "ocsp": "good"},
        "http": {"status": 200, "final_url": url, "redirects_http": rng.random() < 0.7,
                 "headers": {"server": "nginx", "strict-transport-security": "max-age=31536000",
                             "x-frame-options": "SAMEORIGIN", "content-security-policy": None}},
        "label": {"found": rng.random() < 0.8, "code": f"TL-{rng.randint(1000, 9999)}", "valid": rng.random() < 0.6},
        "ports": {"open": sorted(rng.sample([22, 80, 443, 3306, 3389, 8080, 8443], 3)), "probed": 20},
    }
    return [Observation(collector=name, portal_url=url, observed_at=at, complete=True, data=data[name])
            for name in COLLECTORS]


def findings_of(url: str, checks: list[Any], rng: random.Random, count: int) -> list[Finding]:
    """`count` findings of distinct portal checks, with ~200 characters of evidence."""
    return [Finding(portal_url=url, check_id=spec.id, severity=spec.severity, title_vi=spec.title.vi,
                    title_en=spec.title.en, remediation_vi=spec.remediation.vi, remediation_en=spec.remediation.en,
                    evidence=f"{spec.id} observed on {url}: " + "server answered with a weak setting; " * 4)
            for spec in rng.sample(checks, count)]


def assessment_of(url: str, at: datetime, rng: random.Random, label: bool) -> PortalScan:
    return PortalScan(run_id="", portal_url=url, recorded_at=at, collectors=dict.fromkeys(COLLECTORS, True),
                      tls_grade=rng.choice("ABBCF"), grade_without_trust=rng.choice("ABC"), score=rng.randint(40, 98),
                      category_scores={"tls": rng.randint(40, 100), "http": rng.randint(40, 100)},
                      reasons=["TLS 1.0 enabled"] if rng.random() < 0.2 else [], label_valid=label)


def portals_for(documents: int, start: int, at: datetime, seed: int) -> list[PortalInput]:
    """Portals from number `start` until their findings + observations reach `documents` (2–4 findings each)."""
    rng = random.Random(seed)
    checks = [spec for check_id, spec in catalogue().items() if check_id.startswith(PREFIXES)]
    out: list[PortalInput] = []
    written = 0
    index = start
    while written < documents:
        url = portal_url(index)
        observations = observations_of(url, at, rng)
        findings = findings_of(url, checks, rng, rng.choice((2, 3, 4)))
        out.append(PortalInput(url, observations, findings,
                               assessment_of(url, at, rng, bool(observations[2].data["valid"]))))
        written += len(observations) + len(findings)
        index += 1
    return out


def second_scan(portals: list[PortalInput], at: datetime, seed: int) -> list[PortalInput]:
    """The next day's scan of these portals: one finding fixed on a third of them, a new one on a fifth."""
    rng = random.Random(seed)
    checks = [spec for check_id, spec in catalogue().items() if check_id.startswith(PREFIXES)]
    out = []
    for portal in portals:
        findings = list(portal.findings)
        if rng.random() < 0.33:
            findings.pop(rng.randrange(len(findings)))
        if rng.random() < 0.2:
            known = {f.check_id for f in findings}
            findings += findings_of(portal.url, [c for c in checks if c.id not in known], rng, 1)
        observations = [o.model_copy(update={"observed_at": at}) for o in portal.observations]
        out.append(PortalInput(portal.url, observations, findings,
                               portal.assessment.model_copy(update={"recorded_at": at})))
    return out


def record(store: Any, run_id: str, portals: list[PortalInput], times: list[float] | None = None) -> None:
    """Each portal through `record_portal`, one at a time as a scan does (`times`: each one's seconds)."""
    for portal in portals:
        started = time.perf_counter()
        assessment = portal.assessment.model_copy(update={"run_id": run_id})
        store.record_portal(run_id, portal.url, portal.observations, portal.findings, assessment)
        if times is not None:
            times.append(time.perf_counter() - started)


def write_inventory(path: Path, urls: list[str]) -> Inventory:
    agencies = [{"id": f"ag{i:03d}", "name": f"Cơ quan {i:03d} tỉnh Đồng Nai"} for i in range(AGENCIES)]
    items = [{"url": url, "agency": f"ag{i % AGENCIES:03d}", "name": f"Cổng {i}"} for i, url in enumerate(urls)]
    path.write_text(yaml.safe_dump({"agencies": agencies, "portals": items}, allow_unicode=True), encoding="utf-8")
    return load_inventory(path)


# --- the engine ----------------------------------------------------------------------------------------------

def engine_settings(url: str, prefix: str) -> StoreSettings:
    """Settings of the search store under `prefix` (the real cluster's credentials from the test variables)."""
    if not REAL_URL:
        return StoreSettings(backend="search", url=url, flavour="opensearch", index_prefix=prefix)
    return StoreSettings(
        backend="search", url=REAL_URL, flavour=os.environ.get("SOC_TEST_SEARCH_FLAVOUR", "elasticsearch"),  # type: ignore[arg-type]
        username=os.environ.get("SOC_TEST_SEARCH_USER"),
        password=SecretStr(os.environ["SOC_TEST_SEARCH_PASSWORD"]) if "SOC_TEST_SEARCH_PASSWORD" in os.environ
        else None,
        ca_certs=Path(os.environ["SOC_TEST_SEARCH_CA"]) if "SOC_TEST_SEARCH_CA" in os.environ else None,
        index_prefix=prefix)


def fresh_prefix(role: str) -> str:
    return f"socbench-{role}-{uuid.uuid4().hex[:8]}"


@dataclass
class RequestLog:
    """Wall time of every request the client sent, by kind (the transport is shared by `client.options()`)."""

    prefix: str
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def kind(self, method: str, target: str, body: Any) -> str:
        path = target.split("?")[0]
        if path.endswith("/_bulk"):
            first = body[0] if isinstance(body, list | tuple) and body else body
            text = first if isinstance(first, bytes) else str(first).encode()
            return "bulk: findings" if f'"{self.prefix}-findings"'.encode() in text else "bulk: history"
        if path.endswith("/_mget"):
            return "mget findings"
        if "_search" in path:
            return "search (stale findings)"
        if "-runs/_doc/" in path:
            return "run: read" if method == "GET" else "run: write (portals_done)"
        if "_refresh" in path:
            return "refresh"
        return f"other {method} {path}"

    def install(self, indices: SearchIndices) -> Callable[[], None]:
        transport = indices.client.transport
        original = transport.perform_request

        def timed(method: str, target: str, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(method, target, **kwargs)
            finally:
                name = self.kind(method, target, kwargs.get("body"))
                self.seconds[name] += time.perf_counter() - started
                self.counts[name] += 1

        transport.perform_request = timed  # type: ignore[method-assign]
        return lambda: setattr(transport, "perform_request", original)


def read_back(indices: SearchIndices, into: str, cap: int) -> tuple[list[dict[str, Any]], int]:
    """The writer's documents (findings and history) as bulk actions into prefix `into`, sources pre-serialised;
    and their total bytes of JSON source."""
    sorts = [(FINDINGS, "fingerprint"), (FINDING_EVENTS, "sequence"), (OBSERVATIONS, "sequence"),
             (RUN_FINDINGS, "fingerprint"), (PORTAL_SCANS, "sequence")]  # unique within one run's documents
    create = {FINDINGS.name, FINDING_EVENTS.name}
    actions: list[dict[str, Any]] = []
    size = 0
    for shape, name in sorts:
        for hit in indices.hits(shape, sort=[{shape.path(name): {"order": "asc"}}], limit=cap - len(actions)):
            source = json.dumps(hit["_source"], ensure_ascii=False, separators=(",", ":"))
            size += len(source.encode())
            actions.append({"_op_type": "create" if shape.name in create else "index", "_id": hit["_id"],
                            "_index": into + hit["_index"][len(indices.prefix):], "_source": source})
        if len(actions) >= cap:
            break
    return actions, size


def shape_counts(indices: SearchIndices) -> dict[str, int]:
    indices.refresh(FINDINGS, *HISTORY)
    return {shape.name: indices.count(shape) for shape in (FINDINGS, *HISTORY)}


def store_bytes(indices: SearchIndices) -> tuple[int | None, str]:
    """The engine's store size of the prefix's indices, and what answered (None: it reports no size)."""
    pattern = f"{indices.prefix}-*"
    try:
        rows: Any = indices.client.cat.indices(index=pattern, bytes="b", format="json")
        sizes = [row.get("store.size") for row in rows]
        if sizes and all(size not in (None, "", "0") for size in sizes):
            return sum(int(size) for size in sizes), "_cat/indices store.size"
    except Exception as exc:  # an engine without _cat: try the stats
        print(f"  (_cat/indices: {type(exc).__name__}: {str(exc)[:120]})")
    try:
        stats = indices.client.indices.stats(index=pattern, metric="store")
        total = stats["_all"]["primaries"]["store"]["size_in_bytes"]
        if total:
            return int(total), "indices.stats primaries store.size_in_bytes"
    except Exception as exc:
        print(f"  (indices.stats: {type(exc).__name__}: {str(exc)[:120]})")
    return None, "none"


# --- the three measures -----------------------------------------------------------------------------------------

def timed_write(settings: StoreSettings, local: Path, clock: FixedClock, portals: list[PortalInput],
                log: RequestLog, times: list[float]) -> float:
    """Write the portals in one run through the backend's writer; its wall time (run begin to finish).
    Every request is timed by `log` (a clock read and a dict update each: microseconds against milliseconds)."""
    backend = open_backend(local, clock, store=settings)
    assert isinstance(backend, SearchBackend)
    undo = log.install(backend.indices)
    try:
        started = time.perf_counter()
        run = backend.findings.begin_run("bench", len(portals))
        record(backend.findings, run.id, portals, times)
        backend.findings.finish_run(run.id, complete=True)
        return time.perf_counter() - started
    finally:
        undo()
        backend.close()


def print_breakdown(log: RequestLog, seconds: float, portals: int) -> None:
    """Where the writer's time went: each request kind's share, and the rest (Python in this process)."""
    for name in sorted(log.seconds, key=lambda k: -log.seconds[k]):
        print(f"    {name:<28} {log.counts[name]:>6} requests  {log.seconds[name]:6.1f} s  "
              f"{log.seconds[name] / portals * 1000:6.2f} ms/portal  {log.seconds[name] / seconds * 100:5.1f} %")
    rest = seconds - sum(log.seconds.values())
    print(f"    {'client-side Python':<28} {'':>6}           {rest:6.1f} s  {rest / portals * 1000:6.2f} ms/portal  "
          f"{rest / seconds * 100:5.1f} %")


def tenths(times: list[float]) -> str:
    """Median ms per portal in the first and the last tenth of a run (does the cost grow with the index?)."""
    tenth = max(1, len(times) // 10)
    return (f"first tenth {statistics.median(times[:tenth]) * 1000:.1f} ms/portal, "
            f"last tenth {statistics.median(times[-tenth:]) * 1000:.1f} ms/portal")


def floor_write(settings: StoreSettings, actions: list[dict[str, Any]]) -> float:
    """The same documents through `helpers.bulk`, pre-serialised, into a prefix with the same templates."""
    indices = open_indices(settings)
    try:
        indices.setup()
        started = time.perf_counter()
        ok, errors = helpers.bulk(indices.client, actions, chunk_size=CHUNK, refresh=False, raise_on_error=False,
                                  stats_only=False)
        indices.refresh(FINDINGS, *HISTORY)
        seconds = time.perf_counter() - started
        if isinstance(errors, list) and errors:
            raise SystemExit(f"the floor's bulk refused {len(errors)} documents; first: {errors[0]}")
        assert ok == len(actions), (ok, len(actions))
        return seconds
    finally:
        indices.drop()
        indices.client.close()


def median_ms(call: Callable[[], Any], runs: int = RUNS_OF_KPIS) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, result


def kpi_queries(context: ServiceContext, inventory: Inventory, day: date) -> dict[str, tuple[float, Any]]:
    """Each KPI query's median time (ms) and a digest of its answer (to check both backends agree)."""
    store = context.backend.findings
    moment, now = end_of_day(day), context.clock.now()
    window_start = moment - timedelta(days=30) + timedelta(microseconds=1)
    first_page = FindingQuery(statuses=(FindingStatus.OPEN,), sort=FindingSort.SEVERITY, limit=50)
    second = store.query_findings(first_page).next_cursor

    def page(cursor: str | None) -> Callable[[], Any]:
        query = first_page.model_copy(update={"cursor": cursor})
        return lambda: [f.fingerprint for f in store.query_findings(query).items]

    def verdicts() -> Any:
        found = store.portal_verdicts(window_start, moment)
        return len(found.assessed), len(found.labelled)

    def tally() -> Any:
        rows = store.sla_tally(moment - SLA_WINDOW, moment, now)
        return sum(r.met for r in rows), sum(r.missed for r in rows), sum(r.breached for r in rows)

    def open_counts() -> Any:
        return sum(sum(by.values()) for by in store.open_counts_by_subject().values())

    def whole() -> Any:
        report = kpis(context, inventory, day)
        return [(k.numerator, k.denominator) for k in report.province.kpis], report.province.sla

    return {"kpis() (whole, province + 100 agencies)": median_ms(whole),
            "portal_verdicts (30-day window)": median_ms(verdicts),
            "sla_tally (met, missed, breached)": median_ms(tally),
            "open_counts_by_subject (open total)": median_ms(open_counts),
            "query_findings open, page 1 (50)": median_ms(page(None)),
            "query_findings open, page 2 (cursor)": median_ms(page(second))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=DOCS_REAL if REAL_URL else DOCS_OSMEM,
                        help="findings + observations written through the writer")
    parser.add_argument("--second-share", type=float, default=0.1, help="share of portals scanned a second day")
    args = parser.parse_args()
    with ExitStack() as stack:
        url = ""
        if REAL_URL:
            engine = f"{os.environ.get('SOC_TEST_SEARCH_FLAVOUR', 'elasticsearch')} at {REAL_URL}"
        else:
            from osmem_server import OsmemServer  # type: ignore[import-untyped]

            server = OsmemServer.start(japanese=False)
            stack.callback(server.close)
            url, engine = server.url, "osmem-server (in-memory OpenSearch-compatible)"
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soc-bench-")))
        print(f"search store benchmark on {engine}")
        writer_settings = engine_settings(url, fresh_prefix("writer"))
        writer_indices = open_indices(writer_settings)
        writer_indices.setup()
        stack.callback(writer_indices.client.close)
        stack.callback(writer_indices.drop)

        # 1. writer vs floor
        portals = portals_for(args.docs, 0, NOW, seed=19)
        n_docs = sum(len(p.observations) + len(p.findings) for p in portals)
        search_clock = FixedClock(NOW)
        writer_log, writer_times = RequestLog(writer_settings.index_prefix), list[float]()
        writer_seconds = timed_write(writer_settings, tmp / "search-local.db", search_clock, portals, writer_log,
                                     writer_times)
        counts = shape_counts(writer_indices)
        total_docs = sum(counts.values())
        floor_settings = engine_settings(url, fresh_prefix("floor"))
        actions, source_bytes = read_back(writer_indices, floor_settings.index_prefix, FLOOR_CAP)
        floor_seconds = floor_write(floor_settings, actions)
        floor_share = len(actions) / total_docs
        writer_rate, floor_rate = total_docs / writer_seconds, len(actions) / floor_seconds
        print(f"\n1. writer vs floor: {len(portals)} portals, N = {n_docs} findings + observations "
              f"({total_docs} documents in all: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")")
        print(f"  writer (record_portal, one run): {writer_seconds:.1f} s, {n_docs / writer_seconds:.0f} N-docs/s, "
              f"{writer_rate:.0f} documents/s")
        print(f"  floor (helpers.bulk, pre-serialised, {len(actions)} of the same documents): {floor_seconds:.1f} s, "
              f"{n_docs * floor_share / floor_seconds:.0f} N-docs/s, {floor_rate:.0f} documents/s")
        print(f"  ratio writer/floor: {writer_rate / floor_rate:.2f}x  (target >= 0.8x)")

        print(f"  floor per document: {floor_seconds / len(actions) * 1000:.2f} ms; writer per document: "
              f"{writer_seconds / total_docs * 1000:.2f} ms; writer per portal: {tenths(writer_times)}")
        print(f"  where the writer's {writer_seconds:.1f} s went ({writer_seconds / len(portals) * 1000:.1f} ms per "
              f"portal; every request timed):")
        print_breakdown(writer_log, writer_seconds, len(portals))

        # 2. KPI queries on both backends
        sqlite_db, local_db = tmp / "sqlite.db", tmp / "search-local.db"
        sqlite_clock = FixedClock(NOW)
        inventory = write_inventory(tmp / "inventory.yaml", [p.url for p in portals])
        started = time.perf_counter()
        sqlite_backend = open_backend(sqlite_db, sqlite_clock)
        try:
            run = sqlite_backend.findings.begin_run("bench", len(portals))
            record(sqlite_backend.findings, run.id, portals)
            sqlite_backend.findings.finish_run(run.id, complete=True)
        finally:
            sqlite_backend.close()
        sqlite_seconds = time.perf_counter() - started
        print(f"\n2. KPI queries: the same {len(portals)} portals written through record_portal on SQLite too "
              f"({sqlite_seconds:.1f} s, {total_docs / sqlite_seconds:.0f} documents/s)")
        again = second_scan(portals[: int(len(portals) * args.second_share)], NOW + timedelta(days=1), seed=29)
        contexts = {
            "sqlite": lambda clock: ServiceContext(Settings(db=sqlite_db), open_backend(sqlite_db, clock), clock,
                                                   actor="bench"),
            "search": lambda clock: ServiceContext(Settings(db=local_db, store=writer_settings),
                                                   open_backend(local_db, clock, store=writer_settings), clock,
                                                   actor="bench"),
        }
        second_seconds: dict[str, float] = {}
        second_log, second_times = RequestLog(writer_settings.index_prefix), list[float]()
        for name, clock in (("sqlite", sqlite_clock), ("search", search_clock)):
            with contexts[name](clock) as context:
                apply_deadlines(context, inventory)
                clock.advance(timedelta(days=1))
                backend = context.backend
                undo = second_log.install(backend.indices) if isinstance(backend, SearchBackend) else None
                started = time.perf_counter()
                run = backend.findings.begin_run("bench", len(again))
                record(backend.findings, run.id, again, second_times if undo else None)
                backend.findings.finish_run(run.id, complete=True)
                second_seconds[name] = time.perf_counter() - started
                if undo is not None:
                    undo()
                apply_deadlines(context, inventory)
                clock.advance(timedelta(days=9))
        print(f"  second day: {len(again)} portals rescanned (sqlite {second_seconds['sqlite']:.1f} s, "
              f"search {second_seconds['search']:.1f} s, {tenths(second_times)}); deadlines applied; "
              f"KPIs asked 10 days after the first scan")
        print("  where the search writer's second day went (findings known: versioned rewrites):")
        print_breakdown(second_log, second_seconds["search"], len(again))
        day = (NOW + timedelta(days=10)).date()
        answers: dict[str, dict[str, tuple[float, Any]]] = {}
        for name, clock in (("sqlite", sqlite_clock), ("search", search_clock)):
            with contexts[name](clock) as context:
                answers[name] = kpi_queries(context, inventory, day)
        print(f"  {'query':<42} {'sqlite ms':>10} {'search ms':>10} {'search/sqlite':>14}  same answer")
        for query, (sqlite_ms, sqlite_answer) in answers["sqlite"].items():
            search_ms, search_answer = answers["search"][query]
            same = "yes" if sqlite_answer == search_answer else f"NO: {sqlite_answer} vs {search_answer}"
            print(f"  {query:<42} {sqlite_ms:>10.1f} {search_ms:>10.1f} {search_ms / sqlite_ms:>13.1f}x  {same}")
        print(f"  (median of {RUNS_OF_KPIS} runs each; answers: "
              + "; ".join(f"{q.split(' (')[0]} = {a}" for q, (_, a) in list(answers["search"].items())[1:4]) + ")")

        # 3. sizing
        before = counts
        after = shape_counts(writer_indices)
        per_first = {k: before[k] / len(portals) for k in before if k != FINDINGS.name}
        per_next = {k: (after[k] - before[k]) / len(again) for k in after if k != FINDINGS.name}
        size, how = store_bytes(writer_indices)
        docs_now = sum(after.values())
        if size is not None:
            per_doc = size / docs_now
            source_note = (f"engine store size ({how}); the first run's JSON sources: "
                           f"{source_bytes / len(actions):.0f} bytes per document")
        else:
            per_doc = source_bytes / len(actions)
            source_note = (f"the engine reports no store size ({how}): estimated from the JSON sources "
                           f"(UTF-8, compact); a real index adds its inverted index and doc values, and compresses "
                           f"_source")
        print(f"\n3. sizing: {docs_now} documents, {per_doc:.0f} bytes per document — {source_note}")
        print("  documents per portal per scan, first scan: " + ", ".join(f"{k} {v:.2f}" for k, v in per_first.items())
              + f" = {sum(per_first.values()):.2f}")
        print("  documents per portal per scan, next day:   " + ", ".join(f"{k} {v:.2f}" for k, v in per_next.items())
              + f" = {sum(per_next.values()):.2f}")
        findings_per_portal = after[FINDINGS.name] / len(portals)
        per_scan = sum(per_next.values())
        print(f"  findings (current state, rewritten in place): {findings_per_portal:.2f} per portal")
        for fleet in (500, 5_000):
            docs_year = fleet * 365 * per_scan + fleet * findings_per_portal
            print(f"  {fleet:>5} portals scanned daily: {docs_year / 1e6:.2f} M documents/year, "
                  f"~{docs_year * per_doc / 1e9:.2f} GB/year (x{per_doc:.0f} B), "
                  f"{fleet * per_scan / 60:.0f} documents/min of a 1-hour nightly scan")


if __name__ == "__main__":
    main()
