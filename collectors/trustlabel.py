"""Tín nhiệm mạng badges in a homepage: where they are, what domain and registry slug they name.

Pure functions, no network. The page is hostile input: it is read as a stream of tokens
(`collectors.markup`, no tree, bounded in time and memory whatever the nesting), scripts are never
executed — string literals of inline scripts are joined and read as markup, which is what
`document.write` / `innerHTML` would produce — and every size is bounded (page length, tokens, links,
images, scripts, badges, length of each string). A bound that stops the search early is recorded
(`BadgeFinder.cut`): the page then has no confident "no badge" verdict.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

from collectors.markup import MAX_PAGE_CHARS as MAX_PAGE_CHARS  # re-exported: the page bound badges are read under
from collectors.markup import Attrs, attribute, scan
from soc.core.observations import TrustBadge

REGISTRY_HOSTS = frozenset({"tinnhiemmang.vn", "www.tinnhiemmang.vn"})
"""Host names of the registry (badge images and detail links)."""
DETAIL_PREFIX = "/danh-ba-tin-nhiem/"
"""Path prefix of a label's detail page on the registry."""
CERT_PATH = "/handle_cert"
"""Path of the registry's badge image (`handle_cert?id=<domain>`)."""
LAZY_ATTRIBUTES = ("data-src", "data-lazy-src")
"""Attributes lazy-loading scripts read the real image URL from."""

MAX_BADGES = 20
MAX_TEXT = 512
"""Every string kept in a badge is cut to this many characters."""
MAX_SCRIPT_CHARS = 256 * 1024
"""Only this much of each inline script is searched for string literals."""
MAX_SCRIPTS = 500
MAX_LINKS = 5000
"""Links (`<a>`) examined; a page with more is searched no further for links."""
MAX_IMAGES = 5000
"""Images (`<img>`) examined; a page with more is searched no further for images."""
MAX_CANDIDATES = 1000
"""Registry links and images kept before deduplication."""
MAX_IMAGES_PER_LINK = 16
MAX_QUERY_CHARS = 4096

SLUG_PATTERN = re.compile(r"[a-z0-9-]{1,128}")
"""A registry slug as accepted for a lookup (use with fullmatch)."""

_JS_LITERALS = {
    quote: re.compile(rf"{quote}((?:[^{quote}\\{newlines}]++|\\.)*+)({quote})?", re.DOTALL)
    for quote, newlines in (("'", "\r\n"), ('"', "\r\n"), ("`", ""))
}
"""A string literal from its opening quote; group 2 is None when it is not closed (by a line end, or the end).
Possessive: no backtracking state is kept, however long the literal."""
_JS_QUOTE = re.compile(r"""['"`]""")
_JS_ESCAPE = re.compile(r"\\(?:x([0-9a-fA-F]{2})|u\{([0-9a-fA-F]{1,6})\}|u([0-9a-fA-F]{4})|(\r\n|[\s\S]))")
_JS_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
_LINE_CONTINUATIONS = {"\n", "\r", "\r\n", "\u2028", "\u2029"}


def extract_badges(html: str, page_url: str) -> list[TrustBadge]:
    """The Tín nhiệm mạng badges embedded in a homepage, in page order, deduplicated, at most MAX_BADGES.

    `page_url` is the URL the page was read from; relative and protocol-relative URLs are resolved
    against it. Only the first MAX_PAGE_CHARS characters of a page are read.
    """
    finder = BadgeFinder(page_url)
    scan(html, [finder])
    return finder.badges()


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


@dataclass
class _Link:
    """A registry link met in the page: its badge's place, and what the first images inside it show."""

    url: str
    slug: str | None
    images: int = 0
    cert: tuple[str, str | None] | None = None
    """The first image inside with a registry `src`: (image URL, its `id`)."""
    lazy: tuple[str, str | None] | None = None
    """The first image inside naming a registry image in a lazy-loading attribute."""
    own: str | None = None
    """The URL of the first image inside (for a self-hosted copy of the badge)."""
    closed: bool = False


@dataclass(frozen=True)
class _Image:
    """What one `<img>` offers a badge (all strings bounded)."""

    cert: tuple[str, str | None] | None
    lazy: tuple[str, str | None] | None
    own: str | None


class BadgeFinder:
    """A markup sink (`collectors.markup.scan`) that finds the page's badges as its tokens stream by.

    An image belongs to every registry link open around it (up to MAX_IMAGES_PER_LINK images each), a link
    being open from `<a>` to the `</a>` that closes it or the end of the page; an image in no registry link
    is a badge of its own. Inline scripts are searched when they end. Badges keep page order: a link's at its
    `<a>`, then those written by scripts.
    """

    def __init__(self, page_url: str, in_script: bool = False) -> None:
        self.page_url = page_url
        self.in_script = in_script
        """Reading markup a script writes: its badges are 'script' ones, and its scripts are not read."""
        self.cut: str | None = None
        """Why the page was not searched whole (a bound reached): then no badge does not mean none shown."""
        self._found: list[TrustBadge | _Link] = []
        self._open: list[_Link | None] = []
        self._hungry: list[_Link] = []
        """Open registry links with room for more images."""
        self._links = self._images = self._scripts = 0
        self._script: list[str] | None = None
        self._script_chars = 0
        self._written: list[TrustBadge] = []

    def start(self, tag: str, attrs: Attrs) -> None:
        """A start tag: links, images and inline scripts are looked at."""
        if tag == "a":
            self._open.append(self._link(attrs))
        elif tag == "img":
            self._image(attrs)
        elif tag == "script" and not self.in_script:
            self._script_start(attrs)

    def end(self, tag: str) -> None:
        """An end tag: `</a>` closes the innermost open link, `</script>` ends the script being read."""
        if tag == "a" and self._open:
            link = self._open.pop()
            if link is not None:
                link.closed = True
        elif tag == "script" and self._script is not None:
            self._script_end()

    def text(self, data: str) -> None:
        """Text: kept only inside an inline script, up to MAX_SCRIPT_CHARS."""
        if self._script is None:
            return
        room = MAX_SCRIPT_CHARS - self._script_chars
        if len(data) > room:
            self._limit(f"an inline script longer than {MAX_SCRIPT_CHARS} characters")
        if room > 0:
            self._script.append(data[:room])
            self._script_chars += min(room, len(data))

    def badges(self) -> list[TrustBadge]:
        """The badges found, in page order, deduplicated, at most MAX_BADGES."""
        found = (_link_badge(item) if isinstance(item, _Link) else item for item in self._found)
        how = {"how": "script"} if self.in_script else None
        page = (badge.model_copy(update=how) if how else badge for badge in found if badge is not None)
        return _unique([*page, *self._written] if self._written else page, MAX_BADGES)

    def _limit(self, reason: str) -> None:
        self.cut = self.cut or reason

    def _candidate(self, item: TrustBadge | _Link) -> bool:
        if len(self._found) >= MAX_CANDIDATES:
            self._limit(f"more than {MAX_CANDIDATES} registry links and images")
            return False
        self._found.append(item)
        return True

    def _link(self, attrs: Attrs) -> _Link | None:
        self._links += 1
        if self._links > MAX_LINKS:
            self._limit(f"more than {MAX_LINKS} links")
            return None
        registry = _registry_link(attribute(attrs, "href"), self.page_url)
        if registry is None:
            return None
        link = _Link(url=registry[0], slug=registry[1])
        if not self._candidate(link):
            return None
        self._hungry.append(link)
        return link

    def _image(self, attrs: Attrs) -> None:
        self._images += 1
        if self._images > MAX_IMAGES:
            self._limit(f"more than {MAX_IMAGES} images")
            return
        image = _Image(cert=_capped(_cert_image(attribute(attrs, "src"), self.page_url)),
                       lazy=_capped(_lazy_cert_image(attrs, self.page_url)), own=_own_image_url(attrs, self.page_url))
        hungry = [link for link in self._hungry if not link.closed]
        for link in hungry:  # each link takes at most MAX_IMAGES_PER_LINK images: linear in all
            link.images += 1
            link.cert, link.lazy = link.cert or image.cert, link.lazy or image.lazy
            if link.images == 1:
                link.own = image.own
        self._hungry = [link for link in hungry if link.images < MAX_IMAGES_PER_LINK]
        if not hungry:
            badge = _image_badge(image)
            if badge is not None:
                self._candidate(badge)

    def _script_start(self, attrs: Attrs) -> None:
        self._scripts += 1
        if self._scripts > MAX_SCRIPTS:
            self._limit(f"more than {MAX_SCRIPTS} scripts")
        elif all(name != "src" for name, _ in attrs):
            self._script, self._script_chars = [], 0

    def _script_end(self) -> None:
        text, self._script = "".join(self._script or ()), None
        fragment = "".join(_js_unescape(literal) for literal in _string_literals(text))
        if "tinnhiemmang" not in fragment.lower():
            return
        written = BadgeFinder(self.page_url, in_script=True)
        cut = scan(fragment, [written])
        if cut or written.cut:
            self._limit(f"markup written by a script: {cut or written.cut}")
        room = MAX_CANDIDATES - len(self._written)
        self._written += written.badges()[:room]


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


def _link_badge(link: _Link) -> TrustBadge | None:
    """The badge made by a registry link and the best image inside it (None: no image inside)."""
    if not link.images:
        return None
    how, image_url, image_host = "link+self-hosted", link.own, None
    for kind, cert in (("link+img", link.cert), ("link+data-src", link.lazy)):
        if cert is not None:
            how, (image_url, image_host) = kind, cert
            break
    parts = split_slug(link.slug) if link.slug is not None else None
    return TrustBadge(
        how=how,
        image_url=image_url,
        link_url=_cap(link.url),
        image_host=image_host,
        slug=link.slug,
        slug_domain=parts[0] if parts else None,
        label_number=parts[1] if parts else None,
    )


def _image_badge(image: _Image) -> TrustBadge | None:
    """The badge made by a registry image outside any registry link (None if it is no registry image)."""
    if image.cert is not None:
        return TrustBadge(how="img", image_url=image.cert[0], image_host=image.cert[1])
    if image.lazy is not None:
        return TrustBadge(how="data-src", image_url=image.lazy[0], image_host=image.lazy[1])
    return None


def _lazy_cert_image(attrs: Attrs, page_url: str) -> tuple[str, str | None] | None:
    """The registry image named by a lazy-loading attribute of an image, if any."""
    for name in LAZY_ATTRIBUTES:
        cert = _cert_image(attribute(attrs, name), page_url)
        if cert is not None:
            return cert
    return None


def _own_image_url(attrs: Attrs, page_url: str) -> str | None:
    """The URL of a non-registry image (lazy attribute first; inline data: URLs are not kept)."""
    for name in (*LAZY_ATTRIBUTES, "src"):
        url = _resolve(attribute(attrs, name), page_url)
        if url is not None and not url.lower().startswith("data:"):
            return _cap(url)
    return None


def _capped(cert: tuple[str, str | None] | None) -> tuple[str, str | None] | None:
    """A registry image's (URL, id) with both strings cut to MAX_TEXT."""
    return (_cap(cert[0]) or "", _cap(cert[1])) if cert is not None else None


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


def _string_literals(script: str) -> Iterator[str]:
    """The bodies of a script's closed string literals, in order: '…' and "…" end at a line end, `…` only
    at the end. Linear: an unclosed literal is not looked for again inside itself (a scan from a later quote
    of the same kind, within it, sees the same characters and fails the same way)."""
    dead = {quote: -1 for quote in _JS_LITERALS}
    pos = 0
    while (opening := _JS_QUOTE.search(script, pos)) is not None:
        start = opening.start()
        quote = script[start]
        if start < dead[quote]:
            pos = start + 1
            continue
        literal = _JS_LITERALS[quote].match(script, start)
        if literal is None:  # cannot happen: the body may be empty
            return
        if literal.group(2) is not None:
            yield literal.group(1)
            pos = literal.end()
        else:
            dead[quote], pos = literal.end(), start + 1


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
