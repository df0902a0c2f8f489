"""Benchmark: the API under load. 100,000 findings over 500 portals in the embedded store (`bench.api_dataset`);
the findings list and the KPI endpoint under 50 concurrent clients for 30 s each on loopback, side by side with
a bare FastAPI endpoint returning a JSON body of the same size (the framework's own floor).

Each server is a real uvicorn (one worker, like `soc serve`) in its own process. The floor returns the parsed
first page of the real list from a plain `def` typed `dict[str, Any]` (FastAPI's normal path: pydantic-core
validates and serialises it); a second, untyped floor goes through `jsonable_encoder` instead. The load
generator is one asyncio loop in this process: a minimal keep-alive HTTP/1.1 client (`--generator httpx` for
httpx.AsyncClient, which needs ~3 ms of CPU per 100 KB answer and then measures itself on 2 cores). Prints, per
scenario, one client's latency alone, then requests, req/s, p50/p95/p99, errors, CPU per request of the server
and of the generator, and p95 / p95(floor). Target: p95 of the list ≤ 2x the floor, zero errors.
Not part of the tests.

    .venv/bin/python -m bench.api_load [--findings 100000] [--clients 50] [--seconds 30] [--scenarios list,kpis]
    .venv/bin/python -m bench.api_load --findings 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from bench.api_dataset import CACHE_DIR, HISTORY_DAYS, NOW, Dataset, dataset, write_inventory

REQUEST_TIMEOUT = 30.0
START_TIMEOUT = 180.0
"""Seconds a server may take to start (opening the store checks its pages: seconds for a million findings)."""
FLOOR_PATH = "/floor"
UNTYPED_FLOOR_PATH = "/floor-untyped"
BENCH_USER = "bench"
BENCH_PASSWORD = "bench-load-passphrase"
SCENARIOS = ("floor", "untyped", "list", "filtered", "cursor", "kpis")
ALONE_REQUESTS, ALONE_SECONDS, ALONE_TIMEOUT = 10, 15.0, 300.0
"""One client by itself: 10 requests after a first one, for at most 15 s (a slow endpoint: just the first)."""


@dataclass(frozen=True)
class Scenario:
    name: str
    server: str
    """'app' or 'floor'."""
    path: str


@dataclass
class Result:
    """What one scenario measured."""

    scenario: Scenario
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    server_cpu: float | None = None
    client_cpu: float = 0.0
    body_bytes: int = 0
    alone: list[float] = field(default_factory=list)
    """Latencies of one client alone, before the load."""

    def quantile(self, percent: int) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[percent - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--findings", type=int, default=100_000, help="findings in the store (default 100000)")
    parser.add_argument("--portals", type=int, default=500, help="portals they are spread over (default 500)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each scenario (default 30)")
    parser.add_argument("--max-requests", type=int, default=200_000, help="requests per scenario at most")
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR, help=f"built stores (default {CACHE_DIR})")
    parser.add_argument("--generator", choices=["raw", "httpx"], default="raw",
                        help="load generator: minimal keep-alive HTTP/1.1 client (default) or httpx.AsyncClient")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"which to run, comma-separated (default all: {','.join(SCENARIOS)}; floor always)")
    parser.add_argument("--rebuild", action="store_true", help="build the store again even if cached")
    parser.add_argument("--serve", choices=["app", "floor"], help=argparse.SUPPRESS)  # the server processes
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--inventory", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--body", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.db, args.inventory, args.body)
        return
    if min(args.findings, args.portals, args.clients, args.max_requests) < 1 or args.seconds <= 0:
        parser.error("--findings, --portals, --clients, --max-requests and --seconds must be positive")
    if unknown := sorted(set(args.scenarios.split(",")) - set(SCENARIOS)):
        parser.error(f"--scenarios: unknown {', '.join(unknown)} (known: {', '.join(SCENARIOS)})")
    started = time.perf_counter()
    data = dataset(args.findings, args.portals, args.cache_dir, args.rebuild)
    describe(data, time.perf_counter() - started, args)
    with tempfile.TemporaryDirectory(prefix="soc-bench-") as tmp:
        work = Path(tmp)
        inventory = work / "inventory.yaml"
        write_inventory(inventory, args.portals)
        headers = {"Authorization": f"Bearer {token(data.db)}"}
        with ServerProcess(["--serve", "app", "--db", str(data.db), "--inventory", str(inventory)], work) as app:
            with httpx.Client(headers=headers, timeout=REQUEST_TIMEOUT, trust_env=False) as client:
                first = _get(client, app.url("/api/v1/findings"))
            (work / "floor.json").write_bytes(first.content)
            page = first.json()
            print(f"first page: {len(page['items'])} findings, {len(first.content):,} bytes of JSON; the floor returns "
                  "the same document, parsed, from a route typed dict[str, Any] (FastAPI's normal JSON path)")
            with ServerProcess(["--serve", "floor", "--body", str(work / "floor.json")], work) as floor:
                servers = {"app": app, "floor": floor}
                scenarios = _scenarios(page["next"], args.scenarios.split(","))
                results = [run(s, servers[s.server], headers, args.clients, args.seconds, args.max_requests,
                               args.generator)
                           for s in scenarios]
    report(results, args.clients)


def describe(data: Dataset, seconds: float, args: argparse.Namespace) -> None:
    """Print what is measured: the store, the load (`args`: clients, seconds, max_requests, generator), the machine."""
    built = f"built in {data.build_seconds:.0f} s" if data.build_seconds else f"cached ({seconds:.1f} s to check)"
    size = data.db.stat().st_size / 2**20
    print(f"store: {data.findings:,} findings over {len(data.portals)} portals ({len(data.agencies)} agencies), "
          f"{HISTORY_DAYS} nightly runs with {HISTORY_DAYS * len(data.portals):,} portal assessments, "
          f"{len(data.portals)} register systems; {data.db} ({size:,.0f} MiB), {built}")
    generator = "httpx.AsyncClient" if args.generator == "httpx" else "a minimal HTTP/1.1 client"
    print(f"load: {args.clients} concurrent clients ({generator}, keep-alive, one asyncio loop) for "
          f"{args.seconds:g} s per scenario (at most {args.max_requests:,} requests), loopback; clock fixed at "
          f"{NOW.isoformat()}")
    print(f"machine: {os.cpu_count()} CPU cores, shared by the server process and the load generator; Python "
          f"{platform.python_version()}, uvicorn one worker (asyncio loop, h11), access log off")


def _scenarios(cursor: str | None, wanted: list[str]) -> list[Scenario]:
    day = NOW.date().isoformat()
    scenarios = {"floor": Scenario("floor: bare FastAPI, same body", "floor", FLOOR_PATH),
                 "untyped": Scenario("floor, untyped (jsonable_encoder)", "floor", UNTYPED_FLOOR_PATH),
                 "list": Scenario("findings: first page", "app", "/api/v1/findings"),
                 "filtered": Scenario("findings: severity=high&status=open", "app",
                                      "/api/v1/findings?severity=high&status=open"),
                 "cursor": Scenario("findings: second page (cursor)", "app", f"/api/v1/findings?cursor={cursor}"),
                 "kpis": Scenario(f"KPIs: as_of={day}", "app", f"/api/v1/kpis?as_of={day}")}
    if not cursor:
        del scenarios["cursor"]
    return [scenario for key, scenario in scenarios.items() if key in wanted or key == "floor"]


def token(db: Path, user: str = BENCH_USER, role: str = "viewer", note: str = "bench.api_load") -> str:
    """A fresh token of a bench user with `role` (the user is created once in the cached store, with the
    password BENCH_PASSWORD)."""
    from soc.core.clock import FixedClock
    from soc.core.models import Role
    from soc.core.settings import Settings
    from soc.services.context import open_context
    from soc.services.users import add_user, create_token

    clock = FixedClock(NOW)
    with open_context(Settings(db=db), clock, actor="bench") as context:
        if context.backend.users.user(user) is None:
            add_user(context, user, Role(role), BENCH_PASSWORD)
        return create_token(context, user, note=note)[1]


def _get(client: httpx.Client, url: str) -> httpx.Response:
    response = client.get(url)
    if response.status_code != 200:
        raise SystemExit(f"GET {url}: {response.status_code} {response.text[:300]}")
    return response


def run(scenario: Scenario, server: ServerProcess, headers: dict[str, str], clients: int, seconds: float,
        max_requests: int, generator: str, before_load: Callable[[], object] | None = None,
        timeout: float = REQUEST_TIMEOUT) -> Result:
    """One scenario: one client alone first (its latency is the time a request takes, without queueing), then
    the timed load of `clients` at once (`before_load` is called between the two; a request of the load taking
    more than `timeout` seconds counts as an error)."""
    result = Result(scenario)
    print(f"  {scenario.name} …", file=sys.stderr, flush=True)
    with httpx.Client(headers=headers, timeout=ALONE_TIMEOUT, trust_env=False) as client:
        stop = time.perf_counter() + ALONE_SECONDS
        while len(result.alone) <= ALONE_REQUESTS and time.perf_counter() < stop:
            sent = time.perf_counter()
            response = client.get(server.url(scenario.path))
            if response.status_code != 200:
                raise SystemExit(f"{scenario.path}: {response.status_code} {response.text[:300]}")
            result.alone.append(time.perf_counter() - sent)
            result.body_bytes = len(response.content)
    if len(result.alone) > 1:
        del result.alone[0]  # the first warmed the caches (unless it was the only one: a slow endpoint)
    if before_load is not None:
        before_load()
    cpu, own = server.cpu_seconds(), time.process_time()
    asyncio.run(_load(result, server.port, headers, clients, seconds, max_requests, generator, timeout))
    after = server.cpu_seconds()
    result.server_cpu = None if cpu is None or after is None else after - cpu
    result.client_cpu = time.process_time() - own
    return result


async def _load(result: Result, port: int, headers: dict[str, str], clients: int, seconds: float,
                max_requests: int, generator: str, timeout: float) -> None:
    """`clients` loops sending the scenario's request one after the other until the deadline or the budget."""
    budget = [max_requests]
    started = time.perf_counter()
    deadline = started + seconds
    if generator == "httpx":
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, limits=limits,
                                     timeout=timeout, trust_env=False) as client:
            async def send() -> int:
                return (await client.get(result.scenario.path)).status_code

            await _clients(result, [send] * clients, deadline, budget, timeout)
    else:
        connections = [RawConnection(port, result.scenario.path, headers) for _ in range(clients)]
        try:
            await _clients(result, [c.get for c in connections], deadline, budget, timeout)
        finally:
            for connection in connections:
                connection.close()
    result.seconds = time.perf_counter() - started


async def _clients(result: Result, senders: list[Callable[[], Awaitable[int]]], deadline: float,
                   budget: list[int], timeout: float) -> None:
    async def one_client(send: Callable[[], Awaitable[int]]) -> None:
        while time.perf_counter() < deadline and budget[0] > 0:
            budget[0] -= 1
            sent = time.perf_counter()
            try:
                status = await asyncio.wait_for(send(), timeout)
                if status != 200:
                    result.errors[f"HTTP {status}"] += 1
            except (OSError, EOFError, ValueError, TimeoutError, httpx.HTTPError) as exc:
                result.errors[type(exc).__name__] += 1
            result.latencies.append(time.perf_counter() - sent)

    await asyncio.gather(*(one_client(send) for send in senders))


class RawConnection:
    """One keep-alive HTTP/1.1 connection that sends a fixed GET and reads the answer by its Content-Length.

    The load generator shares the 2 cores with the server: httpx costs ~3 ms of CPU per 100 KB answer, which
    caps the floor at what the generator can read; this costs a few tenths of that."""

    def __init__(self, port: int, path: str, headers: dict[str, str]) -> None:
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: application/json",
                 *(f"{name}: {value}" for name, value in headers.items())]
        self._request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self._port = port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self) -> int:
        """Send the request; the status (the body is read whole). A failed connection is opened again next time."""
        try:
            if self._streams is None:
                self._streams = await asyncio.open_connection("127.0.0.1", self._port)
            reader, writer = self._streams
            writer.write(self._request)
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            fields = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":")
                                                                              for line in head[1:] if line)}
            if "content-length" not in fields:
                raise ValueError("answer without Content-Length")
            await reader.readexactly(int(fields["content-length"]))
            if fields.get("connection", "").lower() == "close":
                self.close()
            return int(head[0].split()[1])
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


def report(results: list[Result], clients: int) -> None:
    floor = next(r for r in results if r.scenario.path == FLOOR_PATH)
    print()
    print(f"{'scenario':38s} {'alone':>6s} {'requests':>8s} {'req/s':>6s} {'p50':>7s} {'p95':>7s} {'p99':>7s} "
          f"{'errors':>6s} {'srv CPU':>7s} {'gen CPU':>7s} {'bytes':>7s} {'p95/floor':>9s}")
    for r in results:
        count = len(r.latencies)
        cpu = f"{r.server_cpu / count * 1000:5.1f}ms" if r.server_cpu is not None and count else "-"
        print(f"{r.scenario.name:38s} {ms(statistics.median(r.alone)) if r.alone else '-':>6s} {count:8d} "
              f"{count / r.seconds:6.1f} {ms(r.quantile(50)):>7s} {ms(r.quantile(95)):>7s} {ms(r.quantile(99)):>7s} "
              f"{sum(r.errors.values()):6d} {cpu:>7s} {r.client_cpu / max(count, 1) * 1000:5.1f}ms "
              f"{r.body_bytes:7d} {r.quantile(95) / floor.quantile(95):8.2f}x")
        if r.errors:
            print(f"    errors: {', '.join(f'{name} x{n}' for name, n in r.errors.most_common())}")
    errors = sum(sum(r.errors.values()) for r in results)
    listing = next((r for r in results if r.scenario.path == "/api/v1/findings"), None)
    if listing is None:
        return
    ratio = listing.quantile(95) / floor.quantile(95)
    print(f"\nlatencies in ms. alone: median of one client by itself (the time a request takes, no queueing); "
          f"p50/p95/p99 under {clients} clients (with one worker, queueing: p50 ≈ {clients} x the time per request); "
          f"errors: non-200 answers and failures (timeout {REQUEST_TIMEOUT:g} s); srv CPU / gen CPU: CPU time of the "
          f"server process / of the load generator per request (both on the same {os.cpu_count()} cores)")
    print(f"p95 of the list's first page / p95 of the floor: {ratio:.2f}x (target ≤ 2x); errors in all scenarios: "
          f"{errors} (target 0) → {'met' if ratio <= 2 and errors == 0 else 'NOT met'}")


def ms(seconds: float) -> str:
    """Seconds as milliseconds for the tables."""
    return f"{seconds * 1000:.1f}" if seconds < 10 else f"{seconds * 1000:.0f}"


class ServerProcess:
    """A uvicorn server of a bench module (`python -m MODULE --serve …`) in its own process, on a free loopback
    port; the module prints `port N` first."""

    def __init__(self, arguments: list[str], work: Path, module: str = "bench.api_load") -> None:
        self._arguments = arguments
        self._module = module
        self._log = work / f"server-{arguments[1]}.log"
        self._process: subprocess.Popen[str] | None = None
        self.port = 0

    def __enter__(self) -> ServerProcess:
        command = [sys.executable, "-m", self._module, *self._arguments]
        with self._log.open("w") as log:
            self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True,
                                             env=dict(os.environ, PYTHONWARNINGS="ignore"))
        assert self._process.stdout is not None
        with selectors.DefaultSelector() as selector:  # the port line, within START_TIMEOUT
            selector.register(self._process.stdout, selectors.EVENT_READ)
            line = self._process.stdout.readline() if selector.select(START_TIMEOUT) else ""
        if not line.startswith("port "):
            self._stop()
            raise SystemExit(f"server {' '.join(self._arguments[:2])} did not start:\n{self._log.read_text()[-2000:]}")
        self.port = int(line.split()[1])
        self._wait_ready(time.monotonic() + START_TIMEOUT)
        return self

    def _wait_ready(self, deadline: float) -> None:
        """Until the server answers HTTP at all (any status)."""
        while True:
            try:
                httpx.get(self.url("/healthz"), timeout=5, trust_env=False)
                return
            except httpx.HTTPError:
                if time.monotonic() > deadline or self._process is None or self._process.poll() is not None:
                    self._stop()
                    raise SystemExit(f"server {' '.join(self._arguments[:2])} does not answer:\n"
                                     f"{self._log.read_text()[-2000:]}") from None
                time.sleep(0.2)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()  # uvicorn shuts down gracefully on SIGTERM
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the server process so far (Linux /proc; None elsewhere)."""
        assert self._process is not None
        try:
            fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve(kind: str, db: Path | None, inventory: Path | None, body: Path | None) -> None:
    """Run one server (in the child process): the SOC API on the store, or the floor; print the port first."""
    serve_app(soc_app(db, inventory) if kind == "app" else _floor_app(body))


def serve_app(app: Any) -> None:
    """Serve an ASGI app with one uvicorn worker on a free loopback port, printing `port N` first."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)  # connections wait in the backlog until uvicorn accepts them
    config = uvicorn.Config(app, host="127.0.0.1", port=sock.getsockname()[1], workers=1, log_level="warning",
                            access_log=False)
    print(f"port {sock.getsockname()[1]}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


def soc_app(db: Path | None, inventory: Path | None) -> Any:
    """The SOC API on the store, its clock fixed at NOW (no scheduler)."""
    from soc.api import create_app
    from soc.core.clock import FixedClock
    from soc.core.settings import Settings
    from soc.store import open_backend

    assert db is not None and inventory is not None
    clock = FixedClock(NOW)
    return create_app(Settings(db=db, inventory=inventory), open_backend(db, clock), clock)


def _floor_app(body: Path | None) -> Any:
    from fastapi import FastAPI

    assert body is not None
    document: dict[str, Any] = json.loads(body.read_bytes())
    app = FastAPI()

    @app.get(FLOOR_PATH)
    def floor() -> dict[str, Any]:  # a plain `def`, run in the thread pool like the API's routes
        return document  # the return type is the response model: pydantic-core validates and serialises it

    @app.get(UNTYPED_FLOOR_PATH)
    def floor_untyped():  # type: ignore[no-untyped-def]  # no response model: fastapi's jsonable_encoder walks it
        return document

    return app


if __name__ == "__main__":
    main()
