"""Tín nhiệm mạng badges in a homepage: where they are, what domain and registry slug they name.

Pure functions, no network. The page is hostile input: it is parsed with the stdlib HTML parser
(through BeautifulSoup), scripts are never executed — string literals of inline scripts are
joined and parsed as markup, which is what `document.write` / `innerHTML` would produce —
and every size is bounded (page length, number of badges, length of each string).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

from bs4 import BeautifulSoup, Tag
from bs4.exceptions import ParserRejectedMarkup
from bs4.filter import SoupStrainer

from soc.core.observations import TrustBadge

REGISTRY_HOSTS = frozenset({"tinnhiemmang.vn", "www.tinnhiemmang.vn"})
"""Host names of the registry (badge images and detail links)."""
DETAIL_PREFIX = "/danh-ba-tin-nhiem/"
"""Path prefix of a label's detail page on the registry."""
CERT_PATH = "/handle_cert"
"""Path of the registry's badge image (`handle_cert?id=<domain>`)."""
LAZY_ATTRIBUTES = ("data-src", "data-lazy-src")
"""Attributes lazy-loading scripts read the real image URL from."""

MAX_PAGE_CHARS = 2 * 1024 * 1024
"""Pages longer than this (in characters) are not examined at all."""
MAX_BADGES = 20
MAX_TEXT = 512
"""Every string kept in a badge is cut to this many characters."""
MAX_SCRIPT_CHARS = 256 * 1024
"""Only this much of each inline script is searched for string literals."""
MAX_SCRIPTS = 500
MAX_IMAGES_PER_LINK = 16
MAX_QUERY_CHARS = 4096

SLUG_PATTERN = re.compile(r"[a-z0-9-]{1,128}")
"""A registry slug as accepted for a lookup (use with fullmatch)."""

_JS_STRING = re.compile(r"""'(?:[^'\\\r\n]|\\.)*'|"(?:[^"\\\r\n]|\\.)*"|`(?:[^`\\]|\\.)*`""", re.DOTALL)
_JS_ESCAPE = re.compile(r"\\(?:x([0-9a-fA-F]{2})|u\{([0-9a-fA-F]{1,6})\}|u([0-9a-fA-F]{4})|(\r\n|[\s\S]))")
_JS_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
_LINE_CONTINUATIONS = {"\n", "\r", "\r\n", "\u2028", "\u2029"}


def extract_badges(html: str, page_url: str) -> list[TrustBadge]:
    """The Tín nhiệm mạng badges embedded in a homepage, in page order, deduplicated, at most MAX_BADGES.

    `page_url` is the URL the page was read from; relative and protocol-relative URLs are resolved
    against it. A page longer than MAX_PAGE_CHARS yields no badge.
    """
    if len(html) > MAX_PAGE_CHARS:
        return []
    soup = _parse(html)
    if soup is None:
        return []
    return _unique(_all_badges(soup, page_url), MAX_BADGES)


def split_slug(slug: str) -> tuple[str, str] | None:
    """('topzonevn', '1635823490') for 'topzonevn-1635823490'; None when the slug has no '-<digits>' end."""
    domain, dash, number = slug.rpartition("-")
    if not dash or not domain or not number.isascii() or not number.isdigit():
        return None
    return domain, number


def _normal_host(host: str) -> str:
    """A host name lower-cased, without surrounding space or a trailing dot."""
    return host.strip().lower().rstrip(".")


def _strip_www(host: str) -> str:
    """The host without one leading "www."."""
    return host[4:] if host.startswith("www.") else host


def _parse(markup: str) -> BeautifulSoup | None:
    """The parse tree of `markup`'s links, images and scripts, with the stdlib parser (None if it gives up)."""
    try:
        return BeautifulSoup(markup, "html.parser", parse_only=SoupStrainer(["a", "img", "script"]))
    except (ParserRejectedMarkup, AssertionError):
        return None


def _all_badges(soup: BeautifulSoup, page_url: str) -> Iterator[TrustBadge]:
    """Badges of the page's markup, then those of the markup its inline scripts write."""
    yield from _badges_in(soup, page_url, in_script=False)
    for fragment in _script_fragments(soup):
        fragment_soup = _parse(fragment)
        if fragment_soup is not None:
            yield from _badges_in(fragment_soup, page_url, in_script=True)


def _unique(badges: Iterable[TrustBadge], limit: int) -> list[TrustBadge]:
    """The first `limit` distinct badges (consuming no more of the iterable than needed)."""
    seen: set[tuple[str | None, ...]] = set()
    result: list[TrustBadge] = []
    for badge in badges:
        key = (badge.how, badge.image_url, badge.link_url, badge.image_host, badge.slug)
        if key in seen:
            continue
        seen.add(key)
        result.append(badge)
        if len(result) >= limit:
            break
    return result


def _badges_in(soup: BeautifulSoup, page_url: str, in_script: bool) -> Iterator[TrustBadge]:
    """Badges of one parse tree in document order (images inside a registry link belong to that link's badge)."""
    inside_links: set[int] = set()
    for element in soup.find_all(["a", "img"]):
        if not isinstance(element, Tag):
            continue
        if element.name == "a":
            badge = _link_badge(element, page_url, inside_links)
        elif id(element) not in inside_links:
            badge = _image_badge(element, page_url)
        else:
            badge = None
        if badge is not None:
            yield badge.model_copy(update={"how": "script"}) if in_script else badge


def _link_badge(anchor: Tag, page_url: str, inside_links: set[int]) -> TrustBadge | None:
    """The badge made by a registry link and the best image inside it (None: not a registry link or no image)."""
    link = _registry_link(_attr(anchor, "href"), page_url)
    if link is None:
        return None
    images = [img for img in anchor.find_all("img", limit=MAX_IMAGES_PER_LINK) if isinstance(img, Tag)]
    inside_links.update(id(img) for img in images)
    if not images:
        return None
    link_url, slug = link
    how, image_url, image_host = _best_image(images, page_url)
    parts = split_slug(slug) if slug is not None else None
    return TrustBadge(
        how=how,
        image_url=_cap(image_url),
        link_url=_cap(link_url),
        image_host=_cap(image_host),
        slug=slug,
        slug_domain=parts[0] if parts else None,
        label_number=parts[1] if parts else None,
    )


def _best_image(images: list[Tag], page_url: str) -> tuple[str, str | None, str | None]:
    """(how, image URL, image host) for the images of a registry link: registry src, then lazy, then own copy."""
    for img in images:
        cert = _cert_image(_attr(img, "src"), page_url)
        if cert is not None:
            return "link+img", cert[0], cert[1]
    for img in images:
        cert = _lazy_cert_image(img, page_url)
        if cert is not None:
            return "link+data-src", cert[0], cert[1]
    return "link+self-hosted", _own_image_url(images[0], page_url), None


def _image_badge(img: Tag, page_url: str) -> TrustBadge | None:
    """The badge made by a registry image outside any registry link (None if it is no registry image)."""
    cert = _cert_image(_attr(img, "src"), page_url)
    how = "img"
    if cert is None:
        cert = _lazy_cert_image(img, page_url)
        how = "data-src"
    if cert is None:
        return None
    return TrustBadge(how=how, image_url=_cap(cert[0]), image_host=_cap(cert[1]))


def _lazy_cert_image(img: Tag, page_url: str) -> tuple[str, str | None] | None:
    """The registry image named by a lazy-loading attribute of `img`, if any."""
    for name in LAZY_ATTRIBUTES:
        cert = _cert_image(_attr(img, name), page_url)
        if cert is not None:
            return cert
    return None


def _own_image_url(img: Tag, page_url: str) -> str | None:
    """The URL of a non-registry image (lazy attribute first; inline data: URLs are not kept)."""
    for name in (*LAZY_ATTRIBUTES, "src"):
        url = _resolve(_attr(img, name), page_url)
        if url is not None and not url.lower().startswith("data:"):
            return _cap(url)
    return None


def _attr(tag: Tag, name: str) -> str | None:
    """An attribute's value as one string (multi-valued attributes joined by spaces)."""
    value = tag.get(name)
    if value is None:
        return None
    return value if isinstance(value, str) else " ".join(value)


def _resolve(value: str | None, page_url: str) -> str | None:
    """`value` (an attribute) as an absolute URL against the page; None if empty or unusable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return urljoin(page_url, value)
    except ValueError:
        return None


def _registry_parts(value: str | None, page_url: str) -> tuple[str, str, str] | None:
    """(absolute URL, path, query) of a URL on the registry host over http(s); None for any other URL."""
    url = _resolve(value, page_url)
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or host is None or host.rstrip(".") not in REGISTRY_HOSTS:
        return None
    return url, parts.path, parts.query


def _registry_link(href: str | None, page_url: str) -> tuple[str, str | None] | None:
    """(link URL, slug or None) of a link to a registry detail page; None for any other link."""
    parts = _registry_parts(href, page_url)
    if parts is None:
        return None
    url, path, _ = parts
    if not path.lower().startswith(DETAIL_PREFIX):
        return None
    segment = unquote(path[len(DETAIL_PREFIX) :].split("/", 1)[0]).strip().lower()
    slug = segment if SLUG_PATTERN.fullmatch(segment) else None
    return url, slug


def _cert_image(src: str | None, page_url: str) -> tuple[str, str | None] | None:
    """(image URL, domain of its `id` parameter or None) of a registry badge image; None for other images."""
    parts = _registry_parts(src, page_url)
    if parts is None:
        return None
    url, path, query = parts
    if path.lower().rstrip("/") != CERT_PATH:
        return None
    return url, _image_id(query)


def _image_id(query: str) -> str | None:
    """The `id` parameter of a badge image's query, lower-cased and stripped (None if absent or empty)."""
    try:
        ids = parse_qs(query[:MAX_QUERY_CHARS], max_num_fields=64).get("id")
    except ValueError:
        return None
    host = ids[0].strip().lower() if ids else ""
    return host or None


def _cap(text: str | None) -> str | None:
    """`text` cut to MAX_TEXT characters (lone surrogates replaced, so that it always serialises)."""
    if text is None:
        return None
    return text[:MAX_TEXT].encode("utf-8", "replace").decode("utf-8")


def _script_fragments(soup: BeautifulSoup) -> Iterator[str]:
    """For each inline script naming the registry: its string literals, unescaped and joined (the markup it writes)."""
    for count, script in enumerate(soup.find_all("script")):
        if count >= MAX_SCRIPTS:
            return
        if not isinstance(script, Tag) or script.has_attr("src"):
            continue
        text = script.get_text()[:MAX_SCRIPT_CHARS]
        fragment = "".join(_js_unescape(match.group(0)[1:-1]) for match in _JS_STRING.finditer(text))
        if "tinnhiemmang" in fragment.lower():
            yield fragment


def _js_unescape(body: str) -> str:
    """The value of a JavaScript string literal's body (escapes \\n, \\xHH, \\uHHHH, \\u{H}, \\/, \\" …)."""
    if "\\" not in body:
        return body
    return _JS_ESCAPE.sub(_js_escape_value, body)


def _js_escape_value(match: re.Match[str]) -> str:
    """The character one JavaScript escape sequence stands for."""
    hex2, braced, hex4, other = match.groups()
    code = hex2 or braced or hex4
    if code is not None:
        value = int(code, 16)
        return chr(value) if value <= 0x10FFFF else "\ufffd"
    if other in _LINE_CONTINUATIONS:
        return ""
    return _JS_SIMPLE_ESCAPES.get(other, other)
