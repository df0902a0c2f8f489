"""What the lab portals say over HTTP: homepage, headers, trust-label badge, security.txt, http:// listener.

Each case has an `HttpProfile`; the good profile sends every security header, redirects http:// to
https://, publishes security.txt and shows a valid Tín nhiệm mạng badge that the lab registry
confirms. The web cases each break exactly one of these.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from types import MappingProxyType
from typing import Literal


@dataclass(frozen=True)
class RegistryEntry:
    """One labelled website as the registry's detail page shows it."""

    domain: str
    owner: str
    issued: date = date(2024, 3, 12)
    level: Literal["basic", "advanced"] = "basic"
    status: Literal["revoked", "expired"] | None = None
    """None: a label in force (the page shows no status text)."""
    name: str | None = None
    """The website's name (defaults to the domain)."""
    layout: Literal["table", "inline"] = "table"
    """'table': label and value in table cells; 'inline': "Label: value" paragraphs."""


GOOD_HEADERS: Mapping[str, str] = MappingProxyType({
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'self'",
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Server": "nginx",
})
REGISTRY = "https://tinnhiemmang.vn"
METADATA_URL = "http://169.254.169.254/latest/meta-data/"
"""Where the 'redirect to the cloud metadata service' case points (must be refused, never fetched)."""
LABEL_NUMBER_BASE = 1_700_000_000

Responder = Callable[[str], bytes]
"""Request path → complete HTTP response bytes."""


class Badge(StrEnum):
    """How a case shows the trust label and what the lab registry says about it."""

    VALID = "valid"
    LAZY = "lazy"
    SCRIPT = "script"
    NONE = "none"
    OTHER = "other"
    EXPIRED = "expired"
    REVOKED = "revoked"
    UNLISTED = "unlisted"


class Redirect(StrEnum):
    """What the case's http:// listener does."""

    HTTPS = "https"
    NONE = "none"
    METADATA = "metadata"


@dataclass(frozen=True)
class HttpProfile:
    """HTTP behaviour of a lab portal."""

    headers: Mapping[str, str] = field(default_factory=lambda: GOOD_HEADERS)
    redirect: Redirect = Redirect.HTTPS
    security_txt: bool = True
    badge: Badge = Badge.VALID
    extra_body: str = ""
    open_ports: tuple[int, ...] = ()
    """Extra TCP ports left open on the portal's address (for the ports collector)."""
    title: str | None = None
    """The homepage's title text (written HTML-escaped, so the page's title is exactly this text); default
    "Cổng thông tin điện tử — HOST"."""


def label_slug(host: str, slot: int) -> str:
    """The registry slug of a lab host: the host without dots, a dash and a 10-digit number."""
    return f"{host.replace('.', '')}-{LABEL_NUMBER_BASE + slot}"


def badge_html(badge: Badge, host: str, slug: str) -> str:
    """The badge markup a portal embeds (in the styles seen in the wild)."""
    link = f"{REGISTRY}/danh-ba-tin-nhiem/{slug}"
    image = f"{REGISTRY}/handle_cert?id={host}"
    if badge is Badge.NONE:
        return ""
    if badge is Badge.OTHER:
        other = "cong-khac.vn"
        return (f'<a href="{REGISTRY}/danh-ba-tin-nhiem/{other.replace(".", "")}-1635823490">'
                f'<img src="{REGISTRY}/handle_cert?id={other}" alt="Tín nhiệm mạng"></a>')
    if badge is Badge.LAZY:
        return (f"<A HREF='//tinnhiemmang.vn/danh-ba-tin-nhiem/{slug}' target=_blank>"
                f"<IMG class=lazy data-src='{image}'></A>")
    if badge is Badge.SCRIPT:
        markup = f'<a href="{link}"><img src="{image}" alt="Tín nhiệm mạng"></a>'.replace('"', '\\"')
        return f'<div id="tnm"></div><script>document.getElementById("tnm").innerHTML = "{markup}";</script>'
    return f'<a href="{link}" target="_blank"><img src="{image}" alt="Chứng nhận Tín nhiệm mạng"></a>'


def response(status: str, headers: Mapping[str, str], body: bytes) -> bytes:
    """A complete HTTP/1.1 response (Connection: close)."""
    head = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items()),
            f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def homepage(host: str, description: str, profile: HttpProfile, slug: str) -> bytes:
    """The portal's homepage in Vietnamese (UTF-8 declared in the header), with its badge."""
    title = profile.title if profile.title is not None else f"Cổng thông tin điện tử — {host}"
    body = (
        "<!DOCTYPE html><html lang='vi'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body>"
        f"<h1>Cổng thông tin điện tử</h1><p>{html.escape(description)}</p>{profile.extra_body}"
        f"<footer>{badge_html(profile.badge, host, slug)}</footer></body></html>"
    ).encode()
    headers = {"Content-Type": "text/html; charset=utf-8", **profile.headers}
    return response("200 OK", headers, body)


def https_responder(host: str, description: str, profile: HttpProfile, slug: str) -> Responder:
    """What the TLS server answers for each path."""
    page = homepage(host, description, profile, slug)
    security_txt = response("200 OK", {"Content-Type": "text/plain; charset=utf-8"},
                            f"Contact: mailto:soc@{host}\nPreferred-Languages: vi, en\n".encode())
    not_found = response("404 Not Found", {"Content-Type": "text/plain"}, b"not found")

    def respond(path: str) -> bytes:
        if path == "/":
            return page
        if path == "/.well-known/security.txt" and profile.security_txt:
            return security_txt
        return not_found

    return respond


def http_responder(profile: HttpProfile, https_url: str, host: str, description: str, slug: str) -> Responder:
    """What the case's http:// listener answers: a redirect to https, the page itself, or a bad redirect."""
    if profile.redirect is Redirect.NONE:
        page = homepage(host, description, profile, slug)
        return lambda _path: page
    target = METADATA_URL if profile.redirect is Redirect.METADATA else https_url
    moved = response("301 Moved Permanently", {"Location": target, "Content-Type": "text/plain"}, b"moved")
    return lambda _path: moved


def registry_entry(badge: Badge, host: str) -> RegistryEntry | None:
    """What the lab registry publishes for a case's label (None: the registry does not list it)."""
    if badge in (Badge.NONE, Badge.OTHER, Badge.UNLISTED):
        return None
    status: Literal["revoked", "expired"] | None = None
    if badge is Badge.EXPIRED:
        status = "expired"
    elif badge is Badge.REVOKED:
        status = "revoked"
    return RegistryEntry(domain=host, owner="Phòng thí nghiệm SOC Đồng Nai", status=status,
                         level="advanced" if badge is Badge.VALID else "basic")
