"""Process-wide settings, read from the environment (SOC_*) — one place for every knob."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime settings. Inventory-specific settings (trust stores, expiry window) live in the inventory."""

    model_config = SettingsConfigDict(env_prefix="SOC_", extra="ignore")

    db: Path = Field(default=Path(".soc/soc.db"), description="Embedded store (SQLite file).")
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
