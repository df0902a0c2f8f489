"""Benchmark: the dashboard under load. The overview and the findings page on the store of `bench.api_dataset`
(100,000 findings over 500 portals), each side by side with the API call that serves the same data, under 50
concurrent clients on loopback. Target: a page costs no more than 1.5x its API call (server time p95).

The pairs compared:
- overview `/` vs `GET /api/v1/kpis?as_of=<today>`: the plan's KPIs (the same `services.compliance.kpis`
  call, province and every agency, with the SLA figures) are the overview's data and most of its work; the page
  also counts open findings by severity, SLA breaches and the last run's changes, which no single API call
  serves (those are the page's own extra, and show in the ratio);
- findings `/findings` (default filters and sort, first page) vs `GET /api/v1/findings?limit=<the page's size>`
  (`soc.web.pages.findings.PAGE`): the same store query and owners, HTML instead of JSON.

One app serves both, as `soc serve` builds it (`create_app` then `install_dashboard`; no scheduler, so the
overview's scheduler table is empty), one uvicorn worker in its own process (`bench.api_load`'s server and
load generator). Pages use the session cookie of one sign-in through the login form (GET /login for the CSRF
token, POST /login); the API a Bearer token of the same operator account. Server time is measured inside the
server process: a bare ASGI wrapper around the whole app records perf_counter from the request's arrival to its
last body byte handed to the socket (all middleware included; the time a request waits in the socket before
uvicorn reads it is not), and the bench fetches the figures from an endpoint only this bench's app has. Also
printed: the client-side p95 and the server's CPU per request (the steadiest figure on a busy machine).
`--profile` prints where one request of each scenario spends its time (cProfile, in this process).
Not part of the tests.

    .venv/bin/python -m bench.web_load [--findings 100000] [--clients 50] [--seconds 30] [--scenarios overview,findings]
    .venv/bin/python -m bench.web_load --profile --scenarios findings
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.api_dataset import CACHE_DIR, NOW, dataset, write_inventory
from bench.api_load import (
    BENCH_PASSWORD,
    REQUEST_TIMEOUT,
    Result,
    Scenario,
    ServerProcess,
    describe,
    ms,
    run,
    serve_app,
    soc_app,
    token,
)

BENCH_OPERATOR = "bench-operator"
TIMES_PATH = "/_bench/server-times"
TARGET = 1.5
LOAD_TIMEOUT = 120.0
SESSION_COOKIE = "soc_session"
PAIRS = ("overview", "findings")
CSRF_FIELD = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"')
FINDING_LINK = re.compile(r'href="/findings/[0-9a-f]{6,64}"')
PROFILED = r"/soc/|/checks/|\.html:|sqlite3|jinja2|markupsafe|babel|pydantic"
"""What the profile lists (the framework's layers of wrappers would fill it otherwise)."""

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class Pair:
    """A page and the API call serving the same data."""

    key: str
    page: Scenario
    api: Scenario
    expect: Callable[[str], str | None]
    """What is wrong with the page's HTML (None: it shows what it should)."""


def pairs(wanted: list[str]) -> list[Pair]:
    """The pairs asked for, in PAIRS order."""
    from soc.web.pages.findings import PAGE

    def overview(html: str) -> str | None:
        return None if 'data-kpi="' in html else "the overview shows no KPI tile (data-kpi)"

    def findings(html: str) -> str | None:
        shown = len(FINDING_LINK.findall(html))
        return None if shown == PAGE else f"the findings page links {shown} findings, not {PAGE}"

    day = NOW.date().isoformat()
    known = {"overview": Pair("overview", Scenario("overview page /", "web", "/"),
                              Scenario(f"KPIs API as_of={day}", "web", f"/api/v1/kpis?as_of={day}"), overview),
             "findings": Pair("findings", Scenario(f"findings page ({PAGE} a page)", "web", "/findings"),
                              Scenario(f"findings API limit={PAGE}", "web", f"/api/v1/findings?limit={PAGE}"),
                              findings)}
    return [known[key] for key in PAIRS if key in wanted]


class ServerTimes:
    """ASGI wrapper timing every HTTP request of the app inside the server process; GET TIMES_PATH answers the
    times recorded since the previous GET (JSON: {"path?query": [seconds, ...]}) and forgets them."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.times: defaultdict[str, list[float]] = defaultdict(list)

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == TIMES_PATH:
            body, self.times = json.dumps(self.times).encode(), defaultdict(list)
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        started = time.perf_counter()
        query = scope.get("query_string", b"").decode("latin-1")
        key = scope["path"] + (f"?{query}" if query else "")

        async def timed(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.times[key].append(time.perf_counter() - started)

        await self.app(scope, receive, timed)


def web_app(db: Path, inventory: Path) -> Any:
    """The app `soc serve` serves (API and dashboard) on the store."""
    from soc.web import install_dashboard

    app = soc_app(db, inventory)
    install_dashboard(app)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--findings", type=int, default=100_000, help="findings in the store (default 100000)")
    parser.add_argument("--portals", type=int, default=500, help="portals they are spread over (default 500)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each scenario (default 30)")
    parser.add_argument("--max-requests", type=int, default=200_000, help="requests per scenario at most")
    parser.add_argument("--timeout", type=float, default=LOAD_TIMEOUT,
                        help=f"seconds a request of the load may take before it counts as an error (default "
                             f"{LOAD_TIMEOUT:g}: the KPIs under 50 clients queue for tens of seconds on 2 cores)")
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR, help=f"built stores (default {CACHE_DIR})")
    parser.add_argument("--scenarios", default=",".join(PAIRS),
                        help=f"which pages to run with their API call, comma-separated (default {','.join(PAIRS)})")
    parser.add_argument("--rebuild", action="store_true", help="build the store again even if cached")
    parser.add_argument("--profile", action="store_true",
                        help="no load: profile one request of each scenario in this process (cProfile)")
    parser.add_argument("--serve", choices=["web"], help=argparse.SUPPRESS)  # the server process
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--inventory", type=Path, help=argparse.SUPPRESS)
    parser.set_defaults(generator="raw")  # for api_load.describe: its minimal keep-alive client
    args = parser.parse_args()
    if args.serve:
        serve_app(ServerTimes(web_app(args.db, args.inventory)))
        return
    if min(args.findings, args.portals, args.clients, args.max_requests) < 1 or min(args.seconds, args.timeout) <= 0:
        parser.error("--findings, --portals, --clients, --max-requests, --seconds and --timeout must be positive")
    wanted = args.scenarios.split(",")
    if unknown := sorted(set(wanted) - set(PAIRS)):
        parser.error(f"--scenarios: unknown {', '.join(unknown)} (known: {', '.join(PAIRS)})")
    started = time.perf_counter()
    data = dataset(args.findings, args.portals, args.cache_dir, args.rebuild)
    describe(data, time.perf_counter() - started, args)
    secret = token(data.db, BENCH_OPERATOR, "operator", note="bench.web_load")
    with tempfile.TemporaryDirectory(prefix="soc-bench-") as tmp:
        work = Path(tmp)
        inventory = work / "inventory.yaml"
        write_inventory(inventory, args.portals)
        if args.profile:
            profile(web_app(data.db, inventory), pairs(wanted), secret)
            return
        with ServerProcess(["--serve", "web", "--db", str(data.db), "--inventory", str(inventory)], work,
                           module="bench.web_load") as server:
            cookie = {"Cookie": f"{SESSION_COOKIE}={sign_in(server.url(''))}"}
            bearer = {"Authorization": f"Bearer {secret}"}
            print(f"pages: signed in as {BENCH_OPERATOR} (operator: the triage controls are on the findings page)"
                  f" through /login, one session cookie for every request; API: a Bearer token of the same user")
            measured: list[tuple[Pair, Measured, Measured]] = []
            for pair in pairs(wanted):
                check_page(server, pair, cookie)
                page = measure(pair.page, server, cookie, args)
                api = measure(pair.api, server, bearer, args)
                measured.append((pair, page, api))
    report(measured, args.clients, args.seconds, args.timeout)


def sign_in(base: str) -> str:
    """The session cookie of the bench operator, signed in through the login form (with its CSRF token)."""
    with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT, trust_env=False) as client:
        form = client.get("/login")
        found = CSRF_FIELD.search(form.text)
        if form.status_code != 200 or found is None:
            raise SystemExit(f"GET /login: {form.status_code}, no csrf_token field in the form")
        answer = client.post("/login", data={"username": BENCH_OPERATOR, "password": BENCH_PASSWORD,
                                             "csrf_token": found[1], "next": "/"})
        session = answer.cookies.get(SESSION_COOKIE)
        if answer.status_code != 303 or not session:
            raise SystemExit(f"POST /login: {answer.status_code} {answer.text[:300]} (expected 303 and a session)")
        return session


def check_page(server: ServerProcess, pair: Pair, cookie: dict[str, str]) -> None:
    """The page answers 200 with HTML that shows its data (a sign-in redirect would measure nothing)."""
    response = httpx.get(server.url(pair.page.path), headers=cookie, timeout=REQUEST_TIMEOUT, trust_env=False)
    if response.status_code != 200 or not response.headers.get("content-type", "").startswith("text/html"):
        raise SystemExit(f"GET {pair.page.path}: {response.status_code} {response.headers.get('location', '')}")
    if (problem := pair.expect(response.text)) is not None:
        print(f"warning: {problem}: check that the bench still measures the page it means", file=sys.stderr)


@dataclass(frozen=True)
class Measured:
    """A scenario's result on the client side, and the server's own time of each request of its load."""

    result: Result
    server_times: list[float]

    def server_quantile(self, percent: int) -> float:
        times = self.server_times
        if len(times) < 2:
            return times[0] if times else float("nan")
        return statistics.quantiles(times, n=100, method="inclusive")[percent - 1]


def measure(scenario: Scenario, server: ServerProcess, headers: dict[str, str], args: argparse.Namespace) -> Measured:
    """`bench.api_load.run` of the scenario, and the server times of its load (those of the lone client before
    it are dropped)."""

    def server_times() -> dict[str, list[float]]:
        answer = httpx.get(server.url(TIMES_PATH), timeout=REQUEST_TIMEOUT, trust_env=False)
        answer.raise_for_status()
        times: dict[str, list[float]] = answer.json()
        return times

    result = run(scenario, server, headers, args.clients, args.seconds, args.max_requests, "raw",
                 before_load=server_times, timeout=args.timeout)
    return Measured(result, server_times().get(scenario.path, []))


def report(measured: list[tuple[Pair, Measured, Measured]], clients: int, seconds: float, timeout: float) -> None:
    print()
    print(f"{'scenario':30s} {'alone':>6s} {'requests':>8s} {'req/s':>6s} {'srv p50':>7s} {'srv p95':>7s} "
          f"{'srv p99':>7s} {'cli p95':>7s} {'errors':>6s} {'srv CPU':>7s} {'bytes':>7s}")
    for _, *both in measured:
        for m in both:
            r, cpu_each = m.result, cpu_per_request(m.result)
            count = len(r.latencies)
            cpu = f"{cpu_each * 1000:5.1f}ms" if cpu_each is not None else "-"
            print(f"{r.scenario.name:30s} {ms(statistics.median(r.alone)) if r.alone else '-':>6s} {count:8d} "
                  f"{count / r.seconds:6.1f} {ms(m.server_quantile(50)):>7s} {ms(m.server_quantile(95)):>7s} "
                  f"{ms(m.server_quantile(99)):>7s} {ms(r.quantile(95)):>7s} {sum(r.errors.values()):6d} {cpu:>7s} "
                  f"{r.body_bytes:7d}")
            if len(m.server_times) != count:
                print(f"    the server timed {len(m.server_times)} requests, the clients sent {count}")
            if r.errors:
                print(f"    errors: {', '.join(f'{name} x{n}' for name, n in r.errors.most_common())}")
    print(f"\nlatencies in ms. alone: median of one client by itself (client side, no queueing); srv p50/p95/p99: "
          f"server time of each request under {clients} clients (in the server process: arrival to last byte "
          f"sent, queueing for the thread pool and the GIL included); cli p95: the same seen by the clients; "
          f"errors: non-200 answers and failures (timeout {timeout:g} s); srv CPU: CPU time of the server "
          f"process per request")
    met = True
    for pair, page, api in measured:
        ratio = page.server_quantile(95) / api.server_quantile(95)
        cpus = cpu_per_request(page.result), cpu_per_request(api.result)
        cpu = f"; CPU per request {cpus[0] / cpus[1]:.2f}x" if cpus[0] is not None and cpus[1] else ""
        errors = sum(page.result.errors.values()) + sum(api.result.errors.values())
        ok = ratio <= TARGET and errors == 0
        met = met and ok
        print(f"{pair.key}: page {pair.page.path} / API {pair.api.path}: server p95 {ratio:.2f}x{cpu}; {errors} "
              f"errors (target ≤ {TARGET:g}x, 0 errors) → {'met' if ok else 'NOT met'}")
    print(f"all pages within {TARGET:g}x of their API call: {'yes' if met else 'no'}")
    for _, *both in measured:
        for m in both:
            each = cpu_per_request(m.result)
            if each is not None and clients * each > seconds / 3:
                print(f"note: {m.result.scenario.name}: one worker runs one request at a time (the GIL), so under "
                      f"{clients} clients a request waits behind the {clients - 1} others (~{clients * each:.0f} s "
                      f"of CPU a round): p95 ≈ that once the queue is full, and {seconds:g} s is too short to measure "
                      f"it steadily (--seconds {max(60, 3 * clients * each):.0f} or more)")


def cpu_per_request(result: Result) -> float | None:
    return result.server_cpu / len(result.latencies) if result.server_cpu is not None and result.latencies else None


def profile(app: Any, chosen: list[Pair], secret: str, top: int = 30) -> None:
    """Where one request of each scenario spends its time: cProfile in this process, after a warm-up request.

    The sync routes normally run in a worker thread that cProfile does not see: here they run inline in the
    event loop's thread (anyio's `to_thread.run_sync` replaced), and the profiler is on for the whole request."""
    from unittest import mock

    import anyio.to_thread
    from fastapi.testclient import TestClient

    profiling: list[cProfile.Profile] = []
    """The profiler of the request being profiled (empty: none)."""

    async def inline(func: Callable[..., Any], *args: Any, **_: Any) -> Any:
        return func(*args)

    async def profiled(scope: Message, receive: Receive, send: Send) -> None:
        if not profiling:
            await app(scope, receive, send)
            return
        profiling[0].enable()
        try:
            await app(scope, receive, send)
        finally:
            profiling[0].disable()

    with TestClient(profiled, base_url="http://127.0.0.1") as pages:
        form = pages.get("/login")
        found = CSRF_FIELD.search(form.text)
        assert found is not None, "no csrf_token field in the login form"
        pages.post("/login", data={"username": BENCH_OPERATOR, "password": BENCH_PASSWORD, "csrf_token": found[1],
                                   "next": "/"}, follow_redirects=False)
        api = {"Authorization": f"Bearer {secret}"}
        for scenario in [s for pair in chosen for s in (pair.page, pair.api)]:
            headers = api if scenario.path.startswith("/api/") else {}
            pages.get(scenario.path, headers=headers)  # warm-up: templates compiled, caches filled
            profiling[:] = [cProfile.Profile()]
            with mock.patch.object(anyio.to_thread, "run_sync", inline):
                sent = time.perf_counter()
                answer = pages.get(scenario.path, headers=headers)
                took = time.perf_counter() - sent
            profiler = profiling.pop()
            print(f"\n== {scenario.name}: GET {scenario.path} → {answer.status_code}, {len(answer.content):,} bytes, "
                  f"{took * 1000:.0f} ms under the profiler ==")
            pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(PROFILED, top)


if __name__ == "__main__":
    main()
