"""A seeded API to test against: a real SQLite store with a run and findings, users of every role with their
API tokens, and the credentials that must not get in (expired, revoked, of a disabled user, garbage).

Shared by `test_api_permissions.py` and `test_api_fuzz.py`. Nothing here reaches past loopback:
`loopback_only` refuses any other connection, so a route that starts a scan by mistake fails instead of
sending traffic to the province's portals.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from checks.catalogue import make_finding
from soc.api.app import create_app
from soc.core.clock import FixedClock, today
from soc.core.models import JobRun, Observation, PortalScan, Role, Severity
from soc.core.settings import AuthSettings, Settings
from soc.schemas.jobs import JobInfo
from soc.services.context import ServiceContext, ServiceError, open_context
from soc.services.users import add_user, create_token, revoke_token, set_disabled
from soc.store import Backend
from tests.conftest import NOW

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "examples" / "dongnai.yaml"
PORTAL = "https://stp.dongnai.gov.vn/"
"""A portal of the example inventory (agency `stp`), so findings have an owner and can be assigned."""
PASSWORD = "mật-khẩu-thử-nghiệm-2026"
ROLE_USERS = {Role.ADMIN: "an.admin", Role.OPERATOR: "binh.operator", Role.INCIDENT: "chi.incident",
              Role.VIEWER: "dung.viewer"}
TARGET_USER = "em.target"
"""The user that admin routes act on (disable, enable, reset password), never one whose token is in use."""


@dataclass(frozen=True)
class Credential:
    """One way of calling: the Authorization header sent (None: none), and the role it should be granted
    (None: it must be refused with 401)."""

    kind: str
    authorization: str | None
    role: Role | None

    def headers(self) -> dict[str, str]:
        """The request headers carrying it."""
        return {} if self.authorization is None else {"Authorization": self.authorization}


class IdleScheduler:
    """The scheduler beside the app, with no jobs: `/healthz` says it runs, and no job can start (so nothing
    a test sends can begin a real scan)."""

    running = True

    def job_infos(self) -> list[JobInfo]:
        """No jobs."""
        return []

    def run_now(self, name: str, actor: str) -> JobRun:
        """Every job name is unknown here."""
        raise ServiceError(f"no job {name[:64]!r} in this test scheduler")


@dataclass(frozen=True)
class Seed:
    """A seeded store on disk to copy for each test (seeding costs seconds: every password is an argon2 hash)."""

    directory: Path
    moment: datetime
    """Where the clock stands: one day after the tokens were made."""
    credentials: list[Credential]
    fingerprints: list[str]
    run_id: str
    spare_token_id: str
    """A viewer token nobody calls with, for the revoke route."""


@dataclass
class World:
    """The app on its own copy of the seeded store, and what the tests need to reach into it."""

    app: FastAPI
    context: ServiceContext
    clock: FixedClock
    seed: Seed

    def __repr__(self) -> str:  # short, for failure reports
        return f"World({self.backend.location})"

    @property
    def backend(self) -> Backend:
        """The store the app uses."""
        return self.context.backend

    @property
    def credentials(self) -> list[Credential]:
        """Every credential, those of the four roles first."""
        return self.seed.credentials

    def credential(self, kind: str) -> Credential:
        """The credential of that kind."""
        return next(credential for credential in self.credentials if credential.kind == kind)


def _settings(directory: Path) -> Settings:
    # A high sign-in rate: the tests sign in more than the default 10 times a minute from one address.
    return Settings(db=directory / "soc.db", inventory=INVENTORY, auth=AuthSettings(login_rate_per_minute=1000))


def _record_run(context: ServiceContext) -> tuple[str, list[str]]:
    """One complete run on PORTAL with a few findings, as a scan would store it."""
    findings = [make_finding(PORTAL, "tls.cert.expired", "notAfter 2026-11-01"),
                make_finding(PORTAL, "tls.protocol.tls10", "TLS 1.0 accepted"),
                make_finding(PORTAL, "tls.cipher.weak", "RC4-SHA", severity=Severity.MEDIUM)]
    store = context.backend.findings
    run = store.begin_run(INVENTORY.name, 1)
    now = context.clock.now()
    observation = Observation(collector="tls", portal_url=PORTAL, observed_at=now, complete=True,
                              data={"protocols": ["TLSv1.0", "TLSv1.2"]})
    assessment = PortalScan(run_id=run.id, portal_url=PORTAL, recorded_at=now, collectors={"tls": True},
                            tls_grade="C", score=55)
    store.record_portal(run.id, PORTAL, [observation], findings, assessment)
    store.finish_run(run.id, complete=True)
    return run.id, [finding.fingerprint for finding in findings]


def seed_store(directory: Path) -> Seed:
    """A store with a run, its findings, a user of each role with a token, and the tokens that must fail."""
    clock = FixedClock(NOW)
    with open_context(_settings(directory), clock, "tester") as context:
        run_id, fingerprints = _record_run(context)
        credentials = []
        for role, name in ROLE_USERS.items():
            add_user(context, name, role, PASSWORD)
            _, secret = create_token(context, name)
            credentials.append(Credential(role.value, f"Bearer {secret}", role))
        add_user(context, TARGET_USER, Role.VIEWER, PASSWORD)
        add_user(context, "ghost.admin", Role.ADMIN, PASSWORD)
        spare, _ = create_token(context, ROLE_USERS[Role.VIEWER], note="spare")
        _, expired = create_token(context, ROLE_USERS[Role.ADMIN], expires=today(clock), note="expires today")
        revoked_token, revoked = create_token(context, ROLE_USERS[Role.ADMIN], note="revoked")
        revoke_token(context, revoked_token.id)
        _, disabled = create_token(context, "ghost.admin")
        set_disabled(context, "ghost.admin")
    clock.advance(timedelta(days=1))  # past the end of the local day the expiring token was made for
    credentials += [
        Credential("no credentials", None, None),
        Credential("expired token", f"Bearer {expired}", None),
        Credential("revoked token", f"Bearer {revoked}", None),
        Credential("token of a disabled user", f"Bearer {disabled}", None),
        Credential("garbage token", "Bearer soc_0123456789ab_not-a-real-secret", None),
        Credential("not one of our tokens", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", None),
        Credential("malformed header (Basic)", "Basic YW4uYWRtaW46cGFzc3dvcmQ=", None),
        Credential("malformed header (Bearer, no token)", "Bearer", None),
    ]
    return Seed(directory=directory, moment=clock.now(), credentials=credentials, fingerprints=fingerprints,
                run_id=run_id, spare_token_id=spare.id)


def open_world(seed: Seed, directory: Path) -> World:
    """The app on a fresh copy of the seeded store in `directory` (close `world.context` after)."""
    for part in seed.directory.glob("soc.db*"):
        shutil.copy2(part, directory / part.name)
    clock = FixedClock(seed.moment)
    settings = _settings(directory)
    context = open_context(settings, clock, "tester")
    app = create_app(settings, context.backend, clock, scheduler=IdleScheduler())
    return World(app=app, context=context, clock=clock, seed=seed)


def _is_loopback(host: Any) -> bool:
    if not isinstance(host, str):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse name lookups and connections to anything but loopback until the test ends."""
    real_getaddrinfo: Callable[..., Any] = socket.getaddrinfo
    real_connect: Callable[..., Any] = socket.socket.connect

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _is_loopback(host.decode() if isinstance(host, bytes) else host):
            raise socket.gaierror(f"test refuses to resolve {host!r}: only loopback is allowed")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            raise ConnectionRefusedError(f"test refuses to connect to {address!r}: only loopback is allowed")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)


class StoreScheduler:
    """A stand-in for the scheduler beside the app, keeping its runs in the real job history: `run_now` records
    a running job run (nothing is executed), so a second "run now" finds it running."""

    running = True
    names = ("portal_scan", "compliance")

    def __init__(self, context: ServiceContext) -> None:
        self.context = context
        self.asked: list[tuple[str, str]] = []

    def job_infos(self) -> list[JobInfo]:
        """Each job with its latest run from the history."""
        history = self.context.backend.jobs
        return [JobInfo(name=name, description=f"{name} (vi)", description_en=f"{name} (en)",
                        schedule="0 1 * * *", next_run=self.context.clock.now() + timedelta(hours=16),
                        last_run=next(iter(history.runs(job=name, limit=1)), None)) for name in self.names]

    def run_now(self, name: str, actor: str) -> JobRun:
        """Record a manual run."""
        if name not in self.names:
            raise ServiceError(f"no job {name!r}")
        self.asked.append((name, actor))
        now = self.context.clock.now()
        return self.context.backend.jobs.start(JobRun(job=name, slot=now, started_at=now, trigger="manual"))
