"""What the Tín nhiệm mạng registry says about a domain's label: the SOC's snapshot first, then the registry.

Sources, in order:

1. a snapshot file the SOC maintains (CSV `domain,label_id,status,issued,expires[,level,owner]`, or a
   JSON list of objects with those keys), validated completely when the registry object is built;
2. the registry's public detail page `{base_url}/danh-ba-tin-nhiem/{slug}`, for a slug read from the
   portal's badge — politely: one request per `min_interval` for the whole object, at most one per
   domain per cache TTL (in memory, and in a small JSON file when `cache_path` is given), no redirect
   off the registry, a size cap and a timeout. Listing pages are never requested.

A network failure, a timeout, a 5xx or a page that cannot be read gives found=None with `error` set
("unverified"), never an exception.
"""

from __future__ import annotations

import csv
import io
import json
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import httpx
from bs4 import BeautifulSoup
from bs4.exceptions import ParserRejectedMarkup
from pydantic import ValidationError

from collectors.deadline import Deadline
from collectors.trustlabel import DETAIL_PREFIX, SLUG_PATTERN, split_slug
from soc.core.clock import utcnow
from soc.core.files import atomic_write_json
from soc.core.observations import TrustLabelStatus

SNAPSHOT_COLUMNS = ("domain", "label_id", "status", "issued", "expires")
"""Columns (keys) every snapshot must have."""
SNAPSHOT_OPTIONAL = ("level", "owner")
MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024
MAX_SNAPSHOT_ERRORS = 20
"""At most this many problems are listed in one RegistryError."""
MAX_PAGE_BYTES = 256 * 1024
"""Registry pages larger than this are not read."""
MAX_REDIRECTS = 3
MAX_CACHE_BYTES = 8 * 1024 * 1024
MAX_FIELD = 512
CACHE_VERSION = 1
VIETNAM = timezone(timedelta(hours=7))
"""Label dates are Vietnamese calendar dates: "expired" is judged in UTC+7."""

STATUS_WORDS = {
    "valid": ("valid", "active", "ok", "hiệu lực", "còn hiệu lực", "có hiệu lực", "đang hiệu lực", "đã cấp", "cấp"),
    "expired": ("expired", "hết hạn", "đã hết hạn", "hết hiệu lực"),
    "revoked": ("revoked", "thu hồi", "đã thu hồi", "bị thu hồi"),
}
LEVEL_WORDS = {"basic": ("basic", "cơ bản"), "advanced": ("advanced", "nâng cao")}

_HOSTNAME = re.compile(r"(?=.{1,253}\Z)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}")
_DMY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_LABEL_DATE = re.compile(r"tín nhiệm mạng\s*:?\s*(\d{1,2})\s*/\s*(\d{1,2})\s*/\s*(\d{4})")
_DOMAIN_LABELS = ("tên miền", "website", "domain")
_OWNER_LABELS = ("đơn vị chủ quản", "cơ quan chủ quản", "chủ sở hữu", "owner")
_LEVEL_LABELS = ("mức tín nhiệm", "cấp độ", "mức độ", "level")
_STATUS_LABELS = ("trạng thái", "status")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NOT_FOUND = frozenset({404, 410})


class RegistryError(Exception):
    """The snapshot (or the registry configuration) is invalid; the message names file, row/entry and field."""


def normalize_domain(domain: str) -> str:
    """A domain lower-cased, without surrounding space or trailing dot; ValueError if it is no host name."""
    name = domain.strip().lower().rstrip(".")
    if not _HOSTNAME.fullmatch(name):
        raise ValueError(f"not a domain name: {domain[:100]!r}")
    return name


def domain_key(domain: str) -> str:
    """The key a domain is matched by: normalised and without a leading "www."."""
    name = normalize_domain(domain)
    return name[4:] if name.startswith("www.") else name


def _fold(text: str) -> str:
    """Text for matching: NFC (pages may use combining accents), case-folded, single spaces."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def _word_value(text: str, words: Mapping[str, tuple[str, ...]]) -> str | None:
    """The key of `words` whose word list contains `text` exactly (after folding)."""
    folded = _fold(text)
    for key, choices in words.items():
        if folded in choices:
            return key
    return None


def parse_date(text: str) -> date:
    """A date written dd/mm/yyyy or yyyy-mm-dd; ValueError otherwise (including 31/02/2024)."""
    value = text.strip()
    if match := _DMY.fullmatch(value):
        day, month, year = (int(part) for part in match.groups())
    elif match := _ISO.fullmatch(value):
        year, month, day = (int(part) for part in match.groups())
    else:
        raise ValueError(f"{value[:40]!r} is not a date (dd/mm/yyyy or yyyy-mm-dd)")
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"{value!r} is not a valid date") from None


@dataclass(frozen=True)
class SnapshotEntry:
    """One label as the SOC's snapshot records it (already validated and normalised)."""

    domain: str
    label_id: str | None
    status: str | None
    issued: date | None
    expires: date | None
    level: str | None
    owner: str | None


# --- snapshot -------------------------------------------------------------------------------------


def load_snapshot(path: Path) -> dict[str, SnapshotEntry]:
    """Every entry of a snapshot file by domain key; RegistryError listing each problem (nothing half-loaded)."""
    text = _read_snapshot_text(path)
    if path.suffix.lower() == ".json" or text.lstrip().startswith("["):
        records = list(_json_records(path, text))
    else:
        records = list(_csv_records(path, text))
    entries: dict[str, SnapshotEntry] = {}
    errors: list[str] = []
    for where, record in records:
        _add_entry(entries, errors, where, record)
    if errors:
        raise RegistryError("\n".join([f"{path}: {len(errors)} problem(s)", *errors[:MAX_SNAPSHOT_ERRORS]]))
    return entries


def _read_snapshot_text(path: Path) -> str:
    """The snapshot file's text (UTF-8, BOM allowed), bounded in size."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SNAPSHOT_BYTES + 1)
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read the snapshot ({exc.strerror or exc})") from None
    if len(data) > MAX_SNAPSHOT_BYTES:
        raise RegistryError(f"{path}: larger than {MAX_SNAPSHOT_BYTES} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RegistryError(f"{path}: not UTF-8 (byte {exc.start})") from None


def _csv_records(path: Path, text: str) -> Iterator[tuple[str, dict[str, str]]]:
    """("row N", record) for each CSV data row (N counts the header as row 1)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise RegistryError(f"{path}: row 1: {exc}") from None
    if header is None:
        raise RegistryError(f"{path}: empty file, expected the header {','.join(SNAPSHOT_COLUMNS)}")
    columns = [name.strip().lower() for name in header]
    _check_columns(f"{path}: header", columns)
    try:
        for row in reader:
            where = f"{path}: row {reader.line_num}"
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(columns):
                raise RegistryError(f"{where}: {len(row)} fields, the header has {len(columns)}")
            yield where, dict(zip(columns, row, strict=True))
    except csv.Error as exc:
        raise RegistryError(f"{path}: row {reader.line_num}: {exc}") from None


def _json_records(path: Path, text: str) -> Iterator[tuple[str, dict[str, str]]]:
    """("[i]", record) for each object of a JSON snapshot (values strings or null)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RegistryError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(data, list):
        raise RegistryError(f"{path}: expected a JSON list of objects, got {type(data).__name__}")
    for index, item in enumerate(data):
        where = f"{path}: [{index}]"
        if not isinstance(item, dict):
            raise RegistryError(f"{where}: expected an object, got {type(item).__name__}")
        _check_columns(where, list(item))
        record: dict[str, str] = {}
        for key, value in item.items():
            if value is not None and not isinstance(value, str):
                raise RegistryError(f"{where}.{key}: expected a string or null, got {type(value).__name__}")
            record[key] = value or ""
        yield where, record


def _check_columns(where: str, columns: list[str]) -> None:
    """RegistryError unless the columns are the required ones plus optional ones, each once."""
    allowed = set(SNAPSHOT_COLUMNS) | set(SNAPSHOT_OPTIONAL)
    for name in columns:
        if name not in allowed:
            raise RegistryError(f"{where}: unknown field {name[:40]!r} (allowed: {', '.join(sorted(allowed))})")
        if columns.count(name) > 1:
            raise RegistryError(f"{where}: field {name!r} appears twice")
    for name in SNAPSHOT_COLUMNS:
        if name not in columns:
            raise RegistryError(f"{where}: missing field {name!r}")


def _add_entry(entries: dict[str, SnapshotEntry], errors: list[str], where: str, record: dict[str, str]) -> None:
    """Validate one record and add it, or append its problems to `errors`."""
    problems: list[str] = []
    entry = _entry(where, record, problems)
    if entry is not None:
        key = domain_key(entry.domain)
        if key in entries:
            problems.append(f"{where}: domain: {entry.domain!r} is listed twice")
        else:
            entries[key] = entry
    errors.extend(problems)


def _entry(where: str, record: dict[str, str], problems: list[str]) -> SnapshotEntry | None:
    """The entry of a record; None (with `problems` filled) if any field is invalid."""

    def field(name: str, convert: Callable[[str], object]) -> object:
        value = record.get(name, "").strip()
        if not value:
            return None
        try:
            return convert(value)
        except ValueError as exc:
            problems.append(f"{where}: {name}: {exc}")
            return None

    domain = field("domain", normalize_domain)
    if domain is None and not problems:
        problems.append(f"{where}: domain: empty")
    status = field("status", _snapshot_word("status", STATUS_WORDS))
    level = field("level", _snapshot_word("level", LEVEL_WORDS))
    issued = field("issued", parse_date)
    expires = field("expires", parse_date)
    if isinstance(issued, date) and isinstance(expires, date) and expires < issued:
        problems.append(f"{where}: expires: {expires:%d/%m/%Y} is before issued {issued:%d/%m/%Y}")
    if problems:
        return None
    return SnapshotEntry(
        domain=str(domain),
        label_id=_bounded(record.get("label_id")),
        status=str(status) if status else None,
        issued=issued if isinstance(issued, date) else None,
        expires=expires if isinstance(expires, date) else None,
        level=str(level) if level else None,
        owner=_bounded(record.get("owner")),
    )


def _snapshot_word(field: str, words: Mapping[str, tuple[str, ...]]) -> Callable[[str], str]:
    """A converter of a status / level cell to its canonical value (ValueError naming the known words)."""

    def convert(text: str) -> str:
        value = _word_value(text, words)
        if value is None:
            known = ", ".join(word for choices in words.values() for word in choices)
            raise ValueError(f"unknown {field} {text[:40]!r} (known: {known})")
        return value

    return convert


def _bounded(text: str | None) -> str | None:
    """Stripped text cut to MAX_FIELD characters; None when empty."""
    if text is None:
        return None
    value = " ".join(text.split())[:MAX_FIELD]
    return value or None


# --- registry detail pages ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Fetched:
    """The outcome of one GET: an HTTP status and body, or an error."""

    status: int | None = None
    text: str = ""
    error: str | None = None


def _lines(page: str) -> list[str]:
    """The visible text lines of a page (scripts and styles removed), NFC, whitespace collapsed."""
    soup = BeautifulSoup(page, "html.parser")
    for element in soup.find_all(["script", "style", "noscript", "template"]):
        element.extract()
    text = unicodedata.normalize("NFC", soup.get_text("\n"))
    return [line for line in (" ".join(raw.split()) for raw in text.splitlines()) if line]


def _labelled(lines: list[str], labels: tuple[str, ...], accept: Callable[[str], bool] = bool) -> str | None:
    """The first accepted value of a field: a line starting with one of `labels`, then ": value" or the next line."""
    for index, line in enumerate(lines):
        for label in labels:
            if line[: len(label)].casefold() != label or line[len(label) : len(label) + 1].isalnum():
                continue
            rest = line[len(label) :].strip().lstrip(":").strip()
            value = rest or (lines[index + 1] if index + 1 < len(lines) else "")
            if value and accept(value):
                return value[:MAX_FIELD]
    return None


def _page_host(value: str) -> str | None:
    """The host name written in a page's domain field ('https://www.x.vn/' → 'x.vn' key form)."""
    text = value.strip()
    if "://" in text:
        try:
            host = urlsplit(text).hostname or ""
        except ValueError:
            return None
    else:
        host = text.split("/", 1)[0]
    try:
        return domain_key(host)
    except ValueError:
        return None


def _mentions(lines: list[str], key: str) -> bool:
    """Whether the page text names the domain (`key` or www.`key`) as a whole word."""
    pattern = re.compile(rf"(?<![\w.-])(?:www\.)?{re.escape(key)}(?![\w-]|\.\w)")
    return any(pattern.search(line.casefold()) for line in lines)


def _page_level(lines: list[str]) -> str | None:
    """'basic' / 'advanced' from a level field, else from the only level word on the page."""
    labelled = _labelled(lines, _LEVEL_LABELS)
    if labelled is not None and (value := _word_in(labelled, LEVEL_WORDS)) is not None:
        return value
    folded = _fold("\n".join(lines))
    present = [key for key, words in LEVEL_WORDS.items() if any(_has_word(folded, word) for word in words)]
    return present[0] if len(present) == 1 else None


def _has_word(folded: str, word: str) -> bool:
    """Whether folded text contains `word` as a word of its own (not inside a name such as 'expired.lab.vn')."""
    return re.search(rf"(?<![\w.-]){re.escape(word)}(?![\w.-])", folded) is not None


def _word_in(text: str, words: Mapping[str, tuple[str, ...]]) -> str | None:
    """The first key of `words` one of whose words occurs (as a word) in `text`."""
    folded = _fold(text)
    for key, choices in words.items():
        if any(_has_word(folded, word) for word in choices):
            return key
    return None


def _page_status(lines: list[str]) -> str:
    """'revoked' / 'expired' when the status field (or, lacking one, the page) says so, else 'valid'."""
    text = _fold(_labelled(lines, _STATUS_LABELS) or "\n".join(lines))
    if any(_has_word(text, word) for word in ("thu hồi", "revoked")):
        return "revoked"
    if any(_has_word(text, word) for word in ("hết hạn", "hết hiệu lực", "expired")):
        return "expired"
    return "valid"


def _page_issued(lines: list[str]) -> date | None:
    """The date of "Tín nhiệm mạng: dd/mm/yyyy" (None if absent or impossible)."""
    match = _LABEL_DATE.search(_fold("\n".join(lines)))
    if match is None:
        return None
    day, month, year = (int(part) for part in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        return None


def parse_detail_page(page: str, domain: str, slug: str, checked_at: datetime) -> TrustLabelStatus:
    """What a registry detail page says about `domain` (source 'registry').

    found=True when the page names the domain (status from "thu hồi" / "hết hạn", else 'valid');
    found=False when its domain field names another domain; found=None with an error when the page
    does not look like a detail page.
    """
    base = TrustLabelStatus(domain=domain, source="registry", checked_at=checked_at, label_id=slug)
    try:
        lines = _lines(page)
    except (ParserRejectedMarkup, AssertionError, RecursionError) as exc:
        return base.model_copy(update={"error": f"registry page {slug}: cannot be parsed ({type(exc).__name__})"})
    key = domain_key(domain)
    field = _labelled(lines, _DOMAIN_LABELS, accept=lambda value: _page_host(value) is not None)
    named = _page_host(field) if field is not None else None
    if named is not None and named != key:
        return base.model_copy(update={"found": False, "error": f"registry page {slug} is for {named}, not {domain}"})
    if named is None and not _mentions(lines, key):
        return base.model_copy(update={"error": f"registry page {slug} does not name {domain} (unrecognised page)"})
    return base.model_copy(
        update={
            "found": True,
            "status": _page_status(lines),
            "level": _page_level(lines),
            "owner": _labelled(lines, _OWNER_LABELS),
            "issued": _page_issued(lines),
        }
    )


# --- politeness: rate limit and cache -------------------------------------------------------------


class _RateLimiter:
    """At most one request start per `interval` seconds, across threads (each caller waits for its slot)."""

    def __init__(self, interval: float) -> None:
        """Allow one start per `interval` seconds (0 disables the limit)."""
        self._interval = max(0.0, interval)
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self) -> None:
        """Block until this caller may start a request."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            time.sleep(start - now)


@dataclass(frozen=True)
class _Cached:
    """A registry answer and when it was fetched."""

    fetched_at: datetime
    result: TrustLabelStatus


def _load_cache(path: Path, now: datetime, ttl: timedelta) -> dict[str, _Cached]:
    """The fresh entries of a cache file; an absent, oversized or unreadable file is an empty cache."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CACHE_BYTES + 1)
        document = json.loads(data) if len(data) <= MAX_CACHE_BYTES else None
    except (OSError, ValueError):
        return {}
    if not isinstance(document, dict) or document.get("version") != CACHE_VERSION:
        return {}
    entries = document.get("entries")
    cache: dict[str, _Cached] = {}
    for key, item in entries.items() if isinstance(entries, dict) else ():
        cached = _cache_item(item)
        if cached is not None and now - ttl < cached.fetched_at <= now:
            cache[str(key)] = cached
    return cache


def _cache_item(item: object) -> _Cached | None:
    """One cache file entry, or None if it is malformed."""
    if not isinstance(item, dict):
        return None
    try:
        fetched_at = datetime.fromisoformat(str(item.get("fetched_at")))
        result = TrustLabelStatus.model_validate(item.get("result"))
    except (ValueError, ValidationError):
        return None
    if fetched_at.tzinfo is None:
        return None
    return _Cached(fetched_at, result)


def _write_cache(path: Path, cache: Mapping[str, _Cached]) -> None:
    """Write the cache file atomically (temporary file in the same directory, then rename)."""
    document = {
        "version": CACHE_VERSION,
        "entries": {
            key: {"fetched_at": item.fetched_at.isoformat(), "result": item.result.model_dump(mode="json")}
            for key, item in sorted(cache.items())
        },
    }
    atomic_write_json(path, document, indent=1)


# --- the registry client --------------------------------------------------------------------------


class TrustLabelRegistry:
    """Looks labels up in the SOC's snapshot, then on the registry's detail pages (thread-safe)."""

    def __init__(
        self,
        snapshot: Path | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 5.0,
        min_interval: float = 2.0,
        cache_ttl: timedelta = timedelta(hours=24),
        cache_path: Path | None = None,
        clock: Callable[[], datetime] = utcnow,
        client: httpx.Client | None = None,
        deadline: float | None = None,
    ) -> None:
        """Load and validate the snapshot (RegistryError if invalid) and prepare the registry client.

        `clock` gives the current aware datetime (checked_at, cache TTL, expiry); `client` is used
        instead of a new httpx.Client (it is not closed by `close`). `timeout` bounds each read,
        `deadline` (default twice `timeout`) each whole request, however the bytes arrive.
        """
        self._snapshot = load_snapshot(Path(snapshot)) if snapshot is not None else None
        self._base_url = _check_base_url(base_url) if base_url is not None else None
        self._timeout = timeout
        self._deadline = 2 * timeout if deadline is None else deadline
        self._ttl = cache_ttl
        self._clock = clock
        self._cache_path = cache_path
        self._limiter = _RateLimiter(min_interval)
        self._lock = threading.Lock()
        self._file_lock = threading.Lock()
        self._domain_locks: dict[str, threading.Lock] = {}
        self._cache = _load_cache(cache_path, clock(), cache_ttl) if cache_path is not None else {}
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(trust_env=False, follow_redirects=False)

    def __enter__(self) -> TrustLabelRegistry:
        """The registry itself (closed on exit)."""
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """Close the HTTP client (see `close`)."""
        self.close()

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            self._client.close()

    def lookup(self, domain: str, slug: str | None = None) -> TrustLabelStatus:
        """What the snapshot, else the registry (detail page of `slug`), says about `domain`'s label.

        Domains match case-insensitively and with or without "www.". Never raises: a `domain` that is
        no host name, or any failure to reach or read the registry, is a result with found=None and `error`.
        """
        now = self._clock()
        try:
            name = normalize_domain(domain)
        except ValueError as exc:
            return TrustLabelStatus(domain=domain.strip()[:253], source="none", checked_at=now, error=str(exc))
        key = domain_key(name)
        if self._snapshot is not None and key in self._snapshot:
            return self._from_snapshot(name, self._snapshot[key], now)
        if self._base_url is not None:
            cached = self._cached(key, now)
            if cached is not None:
                return cached.model_copy(update={"domain": name})
            if slug is not None:
                return self._from_registry(name, key, slug)
        if self._snapshot is not None:
            return TrustLabelStatus(domain=name, source="snapshot", found=False, checked_at=now)
        reason = "no badge slug to look up on the registry" if self._base_url else "no snapshot or registry configured"
        return TrustLabelStatus(domain=name, source="none", found=None, checked_at=now, error=reason)

    def _from_snapshot(self, name: str, entry: SnapshotEntry, now: datetime) -> TrustLabelStatus:
        """The snapshot's entry as a status; a past `expires` makes a non-revoked label 'expired'."""
        status = entry.status
        if entry.expires is not None and entry.expires < now.astimezone(VIETNAM).date() and status != "revoked":
            status = "expired"
        return TrustLabelStatus(
            domain=name,
            source="snapshot",
            found=True,
            label_id=entry.label_id,
            status=status,
            level=entry.level,
            owner=entry.owner,
            issued=entry.issued,
            expires=entry.expires,
            checked_at=now,
        )

    def _cached(self, key: str, now: datetime) -> TrustLabelStatus | None:
        """The cached registry answer for a domain key, if still fresh."""
        with self._lock:
            cached = self._cache.get(key)
        if cached is None or not now - self._ttl < cached.fetched_at <= now:
            return None
        return cached.result

    def _domain_lock(self, key: str) -> threading.Lock:
        """The lock serialising lookups of one domain (so concurrent callers share one request)."""
        with self._lock:
            return self._domain_locks.setdefault(key, threading.Lock())

    def _from_registry(self, name: str, key: str, slug: str) -> TrustLabelStatus:
        """Ask the registry about one domain (at most once per TTL), caching the answer."""
        with self._domain_lock(key):
            cached = self._cached(key, self._clock())
            if cached is not None:
                return cached.model_copy(update={"domain": name})
            refusal = _slug_refusal(slug, key)
            if refusal is not None:
                return TrustLabelStatus(
                    domain=name, source="registry", found=None, checked_at=self._clock(), error=refusal
                )
            result = self._ask(name, slug.strip().lower())
            self._remember(key, result)
            return result

    def _ask(self, name: str, slug: str) -> TrustLabelStatus:
        """GET the detail page of `slug` and read it."""
        assert self._base_url is not None
        fetched = self._fetch(f"{self._base_url}{DETAIL_PREFIX}{slug}")
        now = self._clock()
        unverified = TrustLabelStatus(domain=name, source="registry", found=None, checked_at=now, label_id=slug)
        if fetched.error is not None:
            return unverified.model_copy(update={"error": fetched.error})
        if fetched.status in _NOT_FOUND:
            return unverified.model_copy(update={"found": False})
        if fetched.status != 200:
            return unverified.model_copy(update={"error": f"registry answered HTTP {fetched.status} for {slug}"})
        return parse_detail_page(fetched.text, name, slug, now)

    def _fetch(self, url: str) -> _Fetched:
        """GET `url`, following redirects only to other detail pages of the registry; bounded in size and time."""
        for _ in range(MAX_REDIRECTS + 1):
            self._limiter.wait()
            try:
                fetched, location = self._get_once(url)
            except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
                return _Fetched(error=f"registry unreachable: {type(exc).__name__}: {str(exc)[:200]}")
            if location is None:
                return fetched
            target = self._redirect_target(url, location)
            if target is None:
                return _Fetched(error=f"registry redirect to {location[:200]!r} not followed")
            url = target
        return _Fetched(error=f"more than {MAX_REDIRECTS} redirects from the registry")

    def _get_once(self, url: str) -> tuple[_Fetched, str | None]:
        """One GET: (outcome, redirect location or None), over by the request deadline whatever arrives."""
        limit = Deadline(self._deadline, what="registry page")
        too_slow = _Fetched(error=f"registry too slow: page not read within {self._deadline:.3g} s")
        try:
            with limit, self._client.stream("GET", url, timeout=min(self._timeout, self._deadline),
                                            follow_redirects=False, extensions={"trace": limit.trace}) as response:
                if response.status_code in _REDIRECTS:
                    return _Fetched(status=response.status_code), response.headers.get("location", "")
                if response.status_code != 200:
                    return _Fetched(status=response.status_code), None
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_PAGE_BYTES:
                        return _Fetched(error=f"registry page larger than {MAX_PAGE_BYTES} bytes"), None
                    if limit.expired:
                        return too_slow, None
                encoding = response.charset_encoding or "utf-8"
        except httpx.HTTPError:
            if limit.fired:  # the watchdog cut a connect, headers or body that was still trickling in
                return too_slow, None
            raise
        try:
            text = bytes(body).decode(encoding, errors="replace")
        except LookupError:
            text = bytes(body).decode("utf-8", errors="replace")
        return _Fetched(status=200, text=text), None

    def _redirect_target(self, url: str, location: str) -> str | None:
        """The absolute redirect target if it is a detail page on the registry's own origin, else None."""
        assert self._base_url is not None
        try:
            target = urljoin(url, location.strip())
            parts, base = urlsplit(target), urlsplit(self._base_url)
        except ValueError:
            return None
        if (parts.scheme, parts.netloc.lower()) != (base.scheme, base.netloc.lower()):
            return None
        slug = parts.path[len(base.path) + len(DETAIL_PREFIX) :]
        if parts.path != f"{base.path}{DETAIL_PREFIX}{slug}" or not SLUG_PATTERN.fullmatch(slug) or parts.query:
            return None
        return target

    def _remember(self, key: str, result: TrustLabelStatus) -> None:
        """Cache an answer in memory and, when configured, in the cache file.

        A failure (registry unreachable, page unparsable) is remembered for this object's life only —
        one scan run does not ask twice — and never written to the file: an outage must not leave the
        domain unverified for a whole TTL.
        """
        fetched_at = result.checked_at or self._clock()
        with self._lock:
            self._cache[key] = _Cached(fetched_at, result)
            current = {k: item for k, item in self._cache.items() if item.result.found is not None}
        if self._cache_path is None or result.found is None:
            return
        with self._file_lock:
            now = self._clock()
            on_disk = _load_cache(self._cache_path, now, self._ttl)
            on_disk.update({k: item for k, item in current.items() if now - self._ttl < item.fetched_at <= now})
            try:
                _write_cache(self._cache_path, on_disk)
            except OSError:
                return


def _slug_refusal(slug: str, key: str) -> str | None:
    """Why `slug` is not looked up for domain `key` (invalid, or naming another domain); None if fine."""
    value = slug.strip().lower()
    if not SLUG_PATTERN.fullmatch(value):
        return f"invalid registry slug {slug[:60]!r} (not looked up)"
    parts = split_slug(value)
    if parts is None:
        return f"registry slug {value!r} has no '<domain>-<number>' form (not looked up)"
    forms = {key.replace(".", ""), f"www.{key}".replace(".", "")}
    if parts[0] not in forms:
        return f"registry slug {value!r} does not name {key} (not looked up)"
    return None


def _check_base_url(base_url: str) -> str:
    """The registry base URL without trailing slash; RegistryError unless it is an http(s) URL with a host."""
    url = base_url.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError:
        host = None
        parts = None
    if parts is None or parts.scheme not in {"http", "https"} or not host or parts.query or parts.fragment:
        raise RegistryError(f"registry base_url {base_url[:100]!r}: expected http(s)://host[:port][/path]")
    return url
