"""The inventory: agencies, their portals and information systems, and scan settings.

Loaded from YAML (the format of record) or from a CSV of portals. Any problem is reported
with the file, the entry and the field, all problems at once, and nothing is half-loaded.
"""

from __future__ import annotations

import csv
import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import yaml
from cryptography import x509
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyAddress,
    IPvAnyNetwork,
    ValidationError,
    field_validator,
    model_validator,
)

from soc.core.errors import ProblemsError
from soc.core.errors import problems as validation_problems
from soc.core.files import atomic_write_text
from soc.core.net import IPAddress, IPNetwork, address_refusal, reached
from soc.core.safe_yaml import load_yaml
from soc.core.untrusted import visible

Port = Annotated[int, Field(ge=1, le=65535)]
MAX_TRUST_STORE_BYTES = 16 * 1024 * 1024
"""A trust store larger than this is refused (every root store in use is well under 1 MiB)."""
PEM_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]{1,40})-----")
PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.DOTALL)


class InventoryError(ProblemsError):
    """The inventory cannot be used."""


class Agency(BaseModel):
    """A state body (sở, ban, ngành, UBND huyện/xã) that owns portals and systems."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    name: Annotated[str, Field(min_length=1, max_length=300)]
    name_en: str | None = None


def _printable_url(url: str) -> str:
    """The URL stripped; ValueError when it carries a control, invisible or space character (an agency's CSV
    could otherwise smuggle terminal escapes into every report, or a URL no HTTP client accepts)."""
    text = url.strip()
    if visible(text) != text or any(char.isspace() for char in text):
        raise ValueError(f"contains a control, invisible or space character ({visible(text)!s}); "
                         "write the URL with printable characters only")
    return text


def normalise_portal_url(url: str) -> str:
    """Canonical form of a portal URL (lower-case host, default port dropped, path kept), or ValueError."""
    parts = urlsplit(_printable_url(url))
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise ValueError("not a valid https URL (expected https://host[:port]/path)")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("not a valid https URL (no credentials, query or fragment allowed)")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid https URL ({exc})") from None
    host = parts.hostname.lower().rstrip(".")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("not a valid https URL (host name is not a valid domain)") from None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, 443) else f"{host}:{port}"
    return f"https://{netloc}{parts.path or '/'}"


class Portal(BaseModel):
    """A web site or portal of a state body, scanned over HTTPS."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    agency: str
    name: str | None = None
    address: IPvAnyAddress | None = None
    """Connect here instead of resolving the host (like curl --resolve); SNI and checks still use the host."""
    expected_ports: list[Port] = Field(default_factory=list)
    """Ports meant to be open; the portal's own HTTPS and HTTP ports always are."""
    http_url: str | None = None
    """Where the http→https redirect check starts; default http://<host>/."""
    system: str | None = Field(default=None, min_length=1, max_length=64)
    """Id of the information system this portal belongs to (its security level sets the findings' SLA)."""

    @field_validator("url")
    @classmethod
    def _url_is_https(cls, value: str) -> str:
        return normalise_portal_url(value)

    @field_validator("http_url")
    @classmethod
    def _http_url_is_http(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(_printable_url(value))
        if parts.scheme.lower() != "http" or not parts.hostname:
            raise ValueError("not a valid http URL (expected http://host[:port]/path)")
        return value.strip()

    @property
    def redirect_start(self) -> str:
        """The http:// URL the redirect check starts from."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return self.http_url or f"http://{host}/"

    @property
    def host(self) -> str:
        """Host name from the URL (used for SNI and certificate checks)."""
        host = urlsplit(self.url).hostname
        assert host is not None  # guaranteed by the validator
        return host

    @property
    def port(self) -> int:
        """TCP port from the URL (443 by default)."""
        return urlsplit(self.url).port or 443


NUMERIC_HOST = re.compile(r"^[0-9a-fx.]+$", re.IGNORECASE)
"""A host made of digits, dots and hex (127.1, 0x7f.0.0.1, 2130706433): resolvers read it as an IPv4 address."""


def ip_literal(host: str | None) -> IPAddress | None:
    """The address a URL host names without DNS: an IP literal in any spelling a resolver accepts, else None."""
    if not host:
        return None
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if NUMERIC_HOST.match(host) and any(c.isdigit() for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))  # a local parse, nothing is sent
        except OSError:
            return None
    return None


def target_problems(portal: Portal, allowed_networks: Sequence[IPNetwork]) -> list[str]:
    """'field: why' for each place where `portal` would send the scanner to an address it may not contact.

    Where a scan goes is the operator's decision: the inventory's `address`, and the `url` and `http_url`
    hosts when they are IP literals, must be public or inside `settings.allowed_networks`. Host names are
    judged on their DNS answer when the portal is scanned (`soc.scan.job`).
    """
    places: list[tuple[str, IPAddress]] = []
    if portal.address is not None:
        places.append(("address", portal.address))
    for field, url in (("url", portal.url), ("http_url", portal.http_url)):
        literal = ip_literal(urlsplit(url).hostname) if url else None
        if literal is not None:
            places.append((field, literal))
    problems = []
    for field, address in places:
        refusal = address_refusal(address, allowed_networks)
        if refusal is not None:
            problems.append(f"{field}: {refusal}, not a scan target unless settings.allowed_networks lists its "
                            f"network (e.g. {ipaddress.ip_network(reached(address))}) — portal {portal.url}")
    return problems


class InformationSystem(BaseModel):
    """An information system of an agency with its security level (Decree 85/2016: 1–5)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(min_length=1, max_length=64)]
    name: Annotated[str, Field(min_length=1, max_length=300)]
    agency: str
    level: Annotated[int, Field(ge=1, le=5)] | None = None


class TrustLabelSettings(BaseModel):
    """Where the trust-label status comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    registry_url: str | None = "https://tinnhiemmang.vn"
    """Registry whose detail pages (/danh-ba-tin-nhiem/<slug>) are read one at a time; None: snapshot only."""
    snapshot: Path | None = None
    """CSV/JSON the SOC maintains: domain, label_id, status, issued, expires[, level, owner]."""
    min_interval_s: Annotated[float, Field(ge=0, le=60)] = 2.0
    """Politeness: at least this long between two registry requests."""
    cache_hours: Annotated[float, Field(ge=0, le=24 * 30)] = 24.0


class PortsSettings(BaseModel):
    """Which TCP ports the ports collector probes and which it calls risky."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scan: list[Port] | None = None
    """Ports to probe; None: nmap's common top ports plus every risky port."""
    extra_risky: dict[Port, str] = Field(default_factory=dict)
    """More risky ports (port → why), on top of telnet, FTP, SMB, RDP, VNC and the databases."""


class InventorySettings(BaseModel):
    """Scan settings that belong to an inventory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trust_stores: list[Path] = Field(default_factory=list)
    """Extra trust anchors (PEM), added to the standard stores — government PKIs are often missing there.

    Each must be a readable PEM file holding at least one X.509 certificate, every CERTIFICATE block in it
    parseable (see `trust_store_problem`); an expired anchor is still an anchor."""
    expiry_warning_days: Annotated[int, Field(ge=1, le=365)] = 30
    allowed_networks: list[IPvAnyNetwork] = Field(default_factory=list)
    """Non-public networks the scanner may go to: portals' addresses (`address`, IP-literal hosts, DNS
    answers) and what portals point it at (AIA caIssuers URLs, redirects).

    Public addresses are always allowed; everything else (loopback, private, link-local) is refused
    unless listed here — neither a portal nor a spreadsheet may point the scanner at the SOC's own network."""
    trustlabel: TrustLabelSettings = Field(default_factory=lambda: TrustLabelSettings())
    ports: PortsSettings = Field(default_factory=lambda: PortsSettings())


class Inventory(BaseModel):
    """Everything a scan needs to know about the province's portals."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agencies: list[Agency] = Field(default_factory=list)
    portals: list[Portal] = Field(default_factory=list)
    systems: list[InformationSystem] = Field(default_factory=list)
    settings: InventorySettings = Field(default_factory=InventorySettings)

    @model_validator(mode="after")
    def _references_resolve(self) -> Inventory:
        problems = _duplicates("agencies", "id", [a.id for a in self.agencies])
        problems += _duplicates("portals", "url", [p.url for p in self.portals])
        problems += _duplicates("systems", "id", [s.id for s in self.systems])
        known = {a.id for a in self.agencies}
        owners: list[tuple[str, list[str]]] = [
            ("portals", [p.agency for p in self.portals]),
            ("systems", [s.agency for s in self.systems]),
        ]
        for kind, agencies in owners:
            for index, agency in enumerate(agencies):
                if agency not in known:
                    problems.append(f"{kind}[{index}].agency: unknown agency {agency!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def agency(self, agency_id: str) -> Agency:
        """The agency with this id."""
        return next(a for a in self.agencies if a.id == agency_id)


def _duplicates(kind: str, field: str, values: Iterable[str]) -> list[str]:
    seen: dict[str, int] = {}
    problems = []
    for index, value in enumerate(values):
        if value in seen:
            problems.append(f"{kind}[{index}].{field}: duplicate of {kind}[{seen[value]}] ({value})")
        seen.setdefault(value, index)
    return problems


def trust_store_problem(path: Path) -> str | None:
    """What makes `path` unusable as extra trust anchors, or None.

    A trust store the scanner cannot use must never pass as "no extra anchors": every chain issued
    under it would be reported untrusted. So the file must be readable PEM with at least one X.509
    certificate, and every CERTIFICATE block must parse (one corrupt anchor silently missing is the
    same false verdict). Acceptance is cryptography's loader, the one the TLS collector uses.
    """
    if not path.exists():
        return "file not found"
    if not path.is_file():
        return "not a regular file"
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_TRUST_STORE_BYTES + 1)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or type(exc).__name__})"
    if len(data) > MAX_TRUST_STORE_BYTES:
        return f"larger than {MAX_TRUST_STORE_BYTES // (1024 * 1024)} MiB: not a trust store"
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        return _pem_problem(data, exc)
    return None


def _pem_problem(data: bytes, error: ValueError) -> str:
    """Why cryptography refused a PEM bundle, in the operator's words."""
    if not data.strip():
        return "empty file: no CA certificate in it"
    labels = {label.decode("ascii") for label in PEM_LABEL.findall(data)}
    if not labels:
        der = " (it looks like DER: convert it with `openssl x509 -inform der`)" if data[:1] == b"\x30" else ""
        return f"not a PEM file: no '-----BEGIN …-----' block{der}"
    if "CERTIFICATE" not in labels:
        hint = " (convert OpenSSL's TRUSTED CERTIFICATE with `openssl x509`)" if "TRUSTED CERTIFICATE" in labels else ""
        return f"no X.509 certificate in it (only {', '.join(sorted(labels))}){hint}"
    for number, block in enumerate(PEM_CERTIFICATE.finditer(data), start=1):
        try:
            x509.load_pem_x509_certificate(block.group())
        except ValueError as exc:
            line = data.count(b"\n", 0, block.start()) + 1
            return f"certificate {number} (line {line}) is not a valid X.509 certificate: {_short(exc)}"
    return f"not a valid PEM certificate bundle: {_short(error)}"


def _short(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 160 else text[:159] + "…"


def _resolve_paths(inventory: Inventory, base: Path, source: str) -> Inventory:
    def resolve(path: Path) -> Path:
        return path if path.is_absolute() else (base / path).resolve()

    settings = inventory.settings
    trust_stores = [resolve(p) for p in settings.trust_stores]
    problems = [f"{source}: settings.trust_stores[{i}]: {problem}: {p}"
                for i, p in enumerate(trust_stores) if (problem := trust_store_problem(p)) is not None]
    label = settings.trustlabel
    snapshot = resolve(label.snapshot) if label.snapshot else None
    if snapshot is not None and not snapshot.is_file():
        problems.append(f"{source}: settings.trustlabel.snapshot: file not found: {snapshot}")
    if problems:
        raise InventoryError(problems)
    updated = settings.model_copy(update={
        "trust_stores": trust_stores,
        "trustlabel": label.model_copy(update={"snapshot": snapshot}),
    })
    return inventory.model_copy(update={"settings": updated})


def parse_inventory(data: Any, source: str, base: Path) -> Inventory:
    """Validate already-parsed inventory data; relative paths are resolved against `base`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InventoryError([f"{source}: the top level must be a mapping (agencies, portals, settings)"])
    try:
        inventory = Inventory.model_validate(data)
    except ValidationError as exc:
        raise InventoryError(validation_problems(source, exc)) from None
    targets = [f"{source}: portals[{index}].{problem}" for index, portal in enumerate(inventory.portals)
               for problem in target_problems(portal, inventory.settings.allowed_networks)]
    try:
        resolved = _resolve_paths(inventory, base, source)
    except InventoryError as exc:
        raise InventoryError(exc.problems + targets) from None
    if targets:
        raise InventoryError(targets)
    return resolved


def load_inventory(path: Path) -> Inventory:
    """Load a YAML inventory or a CSV of portals (by extension)."""
    source = path.name
    if not path.is_file():
        raise InventoryError([f"{path}: file not found"])
    if path.suffix.lower() == ".csv":
        portals, agencies = read_portals_csv(path)
        return parse_inventory({"agencies": agencies, "portals": portals}, source, path.parent)
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InventoryError([f"{source}: not UTF-8 text"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise InventoryError([f"{source}: {where}not valid YAML ({getattr(exc, 'problem', exc)})"]) from None
    return parse_inventory(data, source, path.parent)


CSV_COLUMNS = ("url", "agency", "agency_name", "address", "expected_ports", "name")


def read_portals_csv(path: Path, allowed_networks: Sequence[IPNetwork] = ()) -> tuple[
        list[dict[str, Any]], list[dict[str, str]]]:
    """Read a CSV of portals (columns: url, agency, [agency_name], [address], [expected_ports], [name]).

    Returns raw portal and agency mappings; validation happens with the rest of the inventory.
    Row numbers in messages count the header as row 1, as a spreadsheet shows them. A row whose address
    (or URL host) is not public and not inside `allowed_networks` (the settings of the inventory it goes
    into; a CSV has none of its own) is refused with its row: an agency's spreadsheet must not be able to
    point the scanner at internal hosts.
    """
    source = path.name
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InventoryError([f"{source}: not UTF-8 text (save the CSV as UTF-8)"]) from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in ("url", "agency") if c not in header]
    unknown = [h for h in header if h not in CSV_COLUMNS]
    problems = [f"{source}: header: missing column {c!r}" for c in missing]
    problems += [f"{source}: header: unknown column {c!r} (known: {', '.join(CSV_COLUMNS)})" for c in unknown]
    if problems:
        raise InventoryError(problems)
    portals: list[dict[str, Any]] = []
    rows: list[int] = []
    agencies: dict[str, str] = {}
    for row_number, raw in enumerate(reader, start=2):
        row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(row.values()):
            continue
        portal: dict[str, Any] = {"url": row["url"], "agency": row["agency"]}
        if row.get("address"):
            portal["address"] = row["address"]
        if row.get("name"):
            portal["name"] = row["name"]
        ports = row.get("expected_ports", "").replace(";", " ").replace(",", " ").split()
        bad = [p for p in ports if not p.isdigit()]
        if bad:
            problems.append(f"{source}: row {row_number}: expected_ports: not a port number: {bad[0]!r}")
        portal["expected_ports"] = [int(p) for p in ports if p.isdigit()]
        portals.append(portal)
        rows.append(row_number)
        agencies.setdefault(row["agency"], row.get("agency_name") or row["agency"])
    for row_number, portal in zip(rows, portals, strict=True):
        prefix = f"{source}: row {row_number}: "
        try:
            checked = Portal.model_validate(portal)
        except ValidationError as exc:
            problems += [prefix + p.removeprefix(f"{source}: ") for p in validation_problems(source, exc)]
            continue
        problems += [prefix + problem for problem in target_problems(checked, allowed_networks)]
    if problems:
        raise InventoryError(problems)
    return portals, [{"id": k, "name": v} for k, v in agencies.items()]


def merge_portals_csv(csv_path: Path, yaml_path: Path) -> tuple[int, int]:
    """Add (or update by URL) the CSV's portals and agencies in a YAML inventory, atomically.

    Returns (added, updated). The YAML file is replaced only when the merged inventory validates.
    """
    data: dict[str, Any] = {}
    allowed: Sequence[IPNetwork] = ()
    if yaml_path.exists():
        allowed = load_inventory(yaml_path).settings.allowed_networks  # and refuse to build on a broken file
        data = load_yaml(yaml_path.read_text(encoding="utf-8")) or {}
    portals, agencies = read_portals_csv(csv_path, allowed)
    known_agencies = {a["id"] for a in data.setdefault("agencies", [])}
    data["agencies"] += [a for a in agencies if a["id"] not in known_agencies]
    existing = {normalise_portal_url(p["url"]): i for i, p in enumerate(data.setdefault("portals", []))}
    added = updated = 0
    for portal in portals:
        portal = {k: v for k, v in portal.items() if v not in (None, [], "")}
        key = normalise_portal_url(portal["url"])
        if key in existing:
            data["portals"][existing[key]].update(portal)
            updated += 1
        else:
            existing[key] = len(data["portals"])
            data["portals"].append(portal)
            added += 1
    parse_inventory(data, yaml_path.name, yaml_path.parent)
    atomic_write_text(yaml_path, yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return added, updated
