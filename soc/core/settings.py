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
    http_max_redirects: int = Field(default=5, ge=0, le=20, description="Redirect hops followed at most.")
    http_max_body: int = Field(default=1024 * 1024, ge=4096, description="Bytes of a homepage read at most.")
    ports_host_timeout: int = Field(default=60, ge=5, le=900, description="nmap --host-timeout, seconds.")
    registry_timeout: float = Field(default=5.0, gt=0, le=60, description="Seconds per trust-label registry request.")
