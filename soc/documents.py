"""Printed documents: HTML turned into an A4 PDF with WeasyPrint, with no network and only known files.

Shared by the drills' after-action report and the monthly report. The HTML carries its own CSS (the
templates inline their stylesheet); fonts come from the system through fontconfig, so the stylesheets name
"Noto Sans" / "Noto Serif" (Debian's fonts-noto-core, every Vietnamese diacritic) on the body AND on the
`@page` margin boxes, or the page headers and footers fall back to a serif without them.

WeasyPrint would fetch any URL a document names (an `<img src="https://…">` from a scenario's text, a
`file:///etc/…`): the fetcher here refuses everything except `data:` URLs and files inside the directory the
caller names as `base_url` (its templates directory).
"""

from __future__ import annotations

import logging
import mimetypes
from pathlib import Path
from urllib.parse import unquote, urlsplit

from weasyprint import HTML  # type: ignore[import-untyped]
from weasyprint.urls import URLFetcher, URLFetcherResponse  # type: ignore[import-untyped]

MAX_RESOURCE = 5 * 1024 * 1024
"""Bound on one file a document may load (an image, a stylesheet)."""

_LOG = logging.getLogger(__name__)


class RefusedURL(ValueError):
    """A document asked for a URL it may not load (WeasyPrint logs it and leaves the resource out)."""


class LocalFetcher(URLFetcher):  # type: ignore[misc]
    """Loads `data:` URLs, and files inside `root` (symbolic links resolved); refuses every other URL."""

    def __init__(self, root: Path | None) -> None:
        super().__init__(timeout=1, allowed_protocols=("data", "file"), allow_redirects=False)
        self.root = root.resolve() if root is not None else None
        self.refused: list[str] = []

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> URLFetcherResponse:
        """The resource at `url`, or RefusedURL."""
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme == "file" and self.root is not None:
            parts = urlsplit(url)
            path = Path(unquote(parts.path)).resolve()
            if parts.netloc in ("", "localhost") and path.is_file() and path.is_relative_to(self.root):
                if path.stat().st_size > MAX_RESOURCE:
                    return self._refuse(url, "too large")
                kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                return URLFetcherResponse(path.as_uri(), path.read_bytes(), {"Content-Type": kind})
        return self._refuse(url, "not data: nor a file of the templates directory")

    def _refuse(self, url: str, why: str) -> URLFetcherResponse:
        self.refused.append(url)
        _LOG.warning("document resource refused (%s): %.200s", why, url)
        raise RefusedURL(f"refused {url[:200]!r}: {why}")


def template_root(base_url: str | None) -> Path | None:
    """The directory whose files a document may load: `base_url` as a path or a file: URL (None: no files)."""
    if base_url is None:
        return None
    parts = urlsplit(base_url)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme == "":
        return Path(base_url)
    return None  # an http(s) base would let relative URLs go to the network: no files at all


def html_to_pdf(html: str, base_url: str | None = None) -> bytes:
    """An A4 PDF of `html` (its page size and margins come from its own `@page` rules).

    `base_url` is the templates directory (a path or a file: URL): relative URLs resolve against it, and
    only files inside it load. Nothing is ever fetched from the network.
    """
    root = template_root(base_url)
    base = None if root is None else root.resolve().as_uri() + "/"
    document = HTML(string=html, base_url=base, url_fetcher=LocalFetcher(root), media_type="print")
    pdf = document.write_pdf()
    assert isinstance(pdf, bytes)
    return pdf

