"""Process-wide settings, read from the environment (SOC_*) — one place for every knob."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _cron(value: str) -> str:
    """A five-field cron expression (minute hour day month day-of-week), checked by APScheduler's parser."""
    from apscheduler.triggers.cron import CronTrigger

    if len(value.split()) != 5:
        raise ValueError(f"{value!r}: a cron expression has 5 fields (minute hour day month day-of-week)")
    try:
        CronTrigger.from_crontab(value)
    except ValueError as exc:
        raise ValueError(f"{value!r}: {exc}") from None
    return value


class ScheduleSettings(BaseModel):
    """When the scheduled jobs run (cron expressions in Asia/Ho_Chi_Minh); `SOC_SCHEDULE__PORTAL_SCAN`, …"""

    model_config = ConfigDict(extra="forbid")

    portal_scan: str = Field(default="0 1 * * *", description="Nightly portal scan (default 01:00).")
    scan_window_minutes: int = Field(
        default=240, ge=0, le=24 * 60,
        description="Portal starts are spread over this many minutes after the slot, with jitter, so the "
        "province's servers are not all hit at once (0: all at once).",
    )
    registry_refresh: str = Field(default="30 0 * * *", description="Trust-label registry refresh.")
    compliance: str = Field(default="0 6 * * *", description="Daily compliance evaluation.")
    freshness: str = Field(default="*/15 * * * *", description="Health check: missed, failed, stuck jobs, "
                           "stale data, expired risk acceptances.")
    monthly_report: str = Field(default="0 7 1 * *", description="Monthly report to leadership.")
    misfire_grace_minutes: int = Field(
        default=60, ge=1, le=24 * 60,
        description="A slot the scheduler could not start on time is still run this long after it; later, "
        "it is missed (and reported as ops.schedule_missed).",
    )
    stuck_after_minutes: int = Field(
        default=0, ge=0,
        description="A job run still running this long is stuck (0: the scan window plus 3 hours for scans, "
        "1 hour for other jobs).",
    )
    data_stale_days: int = Field(default=3, ge=1, le=90,
                                 description="A portal whose latest complete scan is older is ops.data_stale.")
    lookback_days: int = Field(default=7, ge=1, le=90, description="How far back missed slots are looked for.")

    _crons = field_validator("portal_scan", "registry_refresh", "compliance", "freshness", "monthly_report")(
        _cron)


class SmtpSettings(BaseModel):
    """Where the change e-mails go; `SOC_SMTP__HOST`, `SOC_SMTP__PASSWORD`, … (no host: no e-mail)."""

    model_config = ConfigDict(extra="forbid")

    host: str | None = None
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = Field(default=True, description="Upgrade with STARTTLS before authenticating.")
    ssl: bool = Field(default=False, description="Implicit TLS (port 465) instead of STARTTLS.")
    username: str | None = None
    password: SecretStr | None = None
    sender: str = "soc@dongnai.gov.vn"
    recipients: list[str] = Field(default_factory=list)
    report_recipients: list[str] = Field(
        default_factory=list, description="Who receives the monthly and quarterly reports to leadership "
        "(`SOC_SMTP__REPORT_RECIPIENTS`); empty: the change e-mail's recipients.")
    timeout: float = Field(default=20.0, gt=0, le=300)
    attempts: int = Field(default=3, ge=1, le=10, description="Delivery attempts before the job records failure.")
    retry_seconds: float = Field(default=30.0, ge=0, le=3600, description="Wait before the first retry "
                                 "(doubled each time).")
    ca_file: Path | None = Field(default=None, description="Extra CA certificates to verify the SMTP server.")


class AuthSettings(BaseModel):
    """Logins, sessions and tokens; `SOC_AUTH__SESSION_SECRET`, …"""

    model_config = ConfigDict(extra="forbid")

    session_secret: SecretStr | None = Field(
        default=None, description="Key that signs session cookies (default: one generated and kept in the store).")
    session_hours: float = Field(default=12, gt=0, le=24 * 30)
    max_failed_logins: int = Field(default=5, ge=1, le=100, description="Failed logins in a row before lockout.")
    lockout_minutes: float = Field(default=15, gt=0, le=24 * 60)
    login_rate_per_minute: int = Field(default=10, ge=1, le=1000,
                                       description="Login attempts per client address per minute.")
    token_days: int = Field(default=90, ge=1, le=3650, description="Default lifetime of an API token.")
    secure_cookies: bool | None = Field(default=None, description="Force the Secure cookie flag (default: when "
                                        "served over TLS).")


class StoreSettings(BaseModel):
    """Where the SOC data lives: the embedded SQLite file, or a search cluster (`SOC_STORE__BACKEND=search`).

    With the search backend, findings, runs, observations, assessments, the register, drills and the report
    archive live in Elasticsearch / OpenSearch; users, tokens, the audit trail and the scheduler's jobs stay
    in the SQLite file `SOC_DB` (small, local to each service).
    """

    model_config = ConfigDict(extra="forbid")

    backend: Literal["sqlite", "search"] = Field(default="sqlite", description="sqlite | search.")
    url: str | None = Field(default=None, description="Search cluster URL, e.g. https://es.soc.local:9200 "
                            "(several: comma-separated).")
    flavour: Literal["elasticsearch", "opensearch"] = Field(default="elasticsearch",
                                                          description="elasticsearch | opensearch.")
    api_key: SecretStr | None = Field(default=None, description="API key (Elasticsearch), instead of a password.")
    username: str | None = Field(default=None, description="User for basic authentication.")
    password: SecretStr | None = Field(default=None, description="Password for basic authentication.")
    ca_certs: Path | None = Field(default=None, description="CA certificate (PEM) the cluster's TLS is checked "
                                  "against.")
    index_prefix: str = Field(default="soc", pattern=r"^[a-z0-9][a-z0-9_-]{0,40}$",
                              description="Prefix of every index, alias and template (several SOCs on one cluster).")
    timeout: float = Field(default=30.0, gt=0, le=600, description="Seconds per request to the cluster.")
    retries: int = Field(default=3, ge=0, le=10, description="Retries of a request that failed on the way "
                         "(connection, 429, 502–504), with growing waits.")
    claim_batch: int = Field(default=25, ge=1, le=10_000,
                             description="Portals a worker takes at a time from a shared scan (search backend).")


class Settings(BaseSettings):
    """Runtime settings. Inventory-specific settings (trust stores, expiry window) live in the inventory.

    Built once by each entry point (CLI command, `soc serve`, `soc worker`) and passed down; nested groups
    are set with a double underscore: `SOC_SCHEDULE__PORTAL_SCAN="0 2 * * *"`, `SOC_SMTP__HOST=…`.
    """

    model_config = SettingsConfigDict(env_prefix="SOC_", extra="ignore", env_nested_delimiter="__")

    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    inventory: Path | None = Field(default=None, description="Inventory the service scans (`SOC_INVENTORY`).")
    sla_file: Path | None = Field(default=None, description="SLA matrix replacing the default "
                                  "(soc/findings/sla.yaml).")

    db: Path = Field(default=Path(".soc/soc.db"), description="Embedded store (SQLite file); with the search "
                     "backend it keeps users, tokens, the audit trail and the scheduler's jobs.")
    store: StoreSettings = Field(default_factory=StoreSettings)
    vocabulary_file: Path | None = Field(
        default=None, description="Extra words (headers, statuses) for the agencies' spreadsheets; adds to the base."
    )
    # An agency's spreadsheet over one of these is refused whole, with the reason (soc/compliance/sheet_files.py).
    sheet_max_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1024, description="Size of a spreadsheet file (XLSX, CSV)."
    )
    sheet_max_unpacked_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024 * 1024, description="Unpacked size of all the parts of an XLSX workbook."
    )
    sheet_max_ratio: int = Field(
        default=100, ge=10, description="Times its packed size a workbook part may unpack to (zip bombs)."
    )
    sheet_max_sheets: int = Field(default=20, ge=1, description="Worksheets of a workbook.")
    sheet_max_rows: int = Field(default=20_000, ge=10, description="Last row a sheet may use (CSV: lines).")
    sheet_max_columns: int = Field(default=100, ge=10, description="Last column a sheet may use (100 = CV).")
    sheet_max_cells: int = Field(
        default=400_000, ge=1000,
        description="Cells of a whole file (and shared strings of a workbook): bounds its time, ~10 µs a cell.",
    )
    concurrent_portals: int = Field(default=16, ge=1, le=256, description="Portals scanned at once.")
    connections_per_host: int = Field(
        default=5, ge=1, le=32, description="Concurrent connections to one portal address (politeness)."
    )
    network_timeout: int = Field(default=5, ge=1, le=60, description="Seconds per TLS connection attempt.")
    network_retries: int = Field(default=1, ge=0, le=5, description="Retries of a failed TLS connection.")
    probe_timeout: float = Field(
        default=4.0, gt=0, le=60, description="Seconds the reachability probe waits for a TLS answer."
    )
    aia_timeout: float = Field(default=4.0, gt=0, le=30, description="Seconds to fetch an AIA intermediate.")
    aia_max_bytes: int = Field(default=65536, ge=1024, description="Size cap of a fetched AIA certificate.")
    revocation_timeout: float = Field(
        default=3.0, gt=0, le=30, description="Seconds the revocation check of one portal may take (CRL + OCSP)."
    )
    crl_max_bytes: int = Field(default=2 * 1024 * 1024, ge=4096, description="Size cap of a fetched CRL.")
    http_timeout: float = Field(default=10.0, gt=0, le=120, description="Seconds per HTTP request.")
    http_request_deadline: float = Field(
        default=10.0, gt=0, le=300,
        description="Hard limit, in seconds, on one whole HTTP exchange (connect, TLS, headers, body) of the HTTP "
        "collector and of the trust-label registry, however the bytes arrive (http_timeout bounds each read).",
    )
    http_portal_budget: float = Field(
        default=30.0, gt=0, le=1800,
        description="Seconds the HTTP collector may spend on one portal (redirects, homepage, security.txt).",
    )
    tls_portal_budget: float = Field(
        default=120.0, gt=0, le=3600,
        description="Seconds the TLS collector may spend on one portal (probe, sslyze, AIA, revocation); "
        "a portal past it is tls.unreachable, too slow.",
    )
    tls_connection_life: float = Field(
        default=6.0, gt=0, le=600,
        description="Longest life of one sslyze connection: a server holding one open longer (it trickles) "
        "makes the portal too slow.",
    )
    http_max_redirects: int = Field(default=5, ge=0, le=20, description="Redirect hops followed at most.")
    http_max_body: int = Field(default=1024 * 1024, ge=4096, description="Bytes of a homepage read at most.")
    ports_host_timeout: int = Field(default=60, ge=5, le=900, description="nmap --host-timeout, seconds.")
    registry_timeout: float = Field(default=5.0, gt=0, le=60, description="Seconds per trust-label registry request.")
