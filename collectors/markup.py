"""Reading a hostile HTML page in bounded time and memory: a stream of tokens, never a tree.

The stdlib tokenizer (html.parser) is fed the page in pieces and builds nothing: each start tag, end tag
and run of text goes to the sinks, which keep only what they need, so nesting costs nothing (a tree of
100,000 nested elements cost 16 s and 249 MB through BeautifulSoup). What the tokenizer itself could
spend is bounded too:

- at most MAX_PAGE_CHARS characters and MAX_TOKENS tokens are read, in pieces of PIECE_CHARS;
- no piece fed to it holds more than MAX_TAG_SEPARATORS characters after which an attribute may start, and
  a start tag with that many stops the reading: the stdlib's start-tag regex keeps about 1 kB per
  attribute (300 MB for a 1 MB tag of attributes);
- a construct still open when the page ends (a tag, comment or script without its end) is dropped, as
  HTML's tokenizer drops it at end of file, and never re-read as text (`close()` does that, quadratic in
  older Pythons: CVE-2025-6069);
- `<![...` is a bogus comment ending at the next `>`, as in HTML, not an SGML marked section that is
  searched for its end and refused with AssertionError by `_markupbase`.

Whatever stops the reading early is returned as a reason: the page was read only in part, so what needs
the whole page (a badge, mixed content) must not be judged absent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html.parser import HTMLParser
from typing import Protocol

MAX_PAGE_CHARS = 2 * 1024 * 1024
"""Characters of a page read at most (max_body is 1 MiB by default)."""
MAX_TOKENS = 100_000
"""Tokens (tags, runs of text, comments) read at most: ~0.5 s on a slow, busy core. A real 1 MB homepage has
some 60,000; a page of `<<<<` or of nested `<a><b><i>` more than three times that."""
MAX_TAG_SEPARATORS = 8192
"""Characters after which an attribute may start (white space, quotes, `/`): at most this many in one piece fed
to the tokenizer, and a start tag still open with this many stops the reading. The start-tag regex so never sees
twice as many (~15 MB of its state at worst); a 500 KB ASP.NET __VIEWSTATE value (base64: one `/` in 64) fits."""
MAX_ATTRIBUTE_CHARS = 8192
"""Attribute values are cut to this many characters before use (URLs kept are cut far shorter)."""
PIECE_CHARS = 64 * 1024
"""Characters fed at once at most (fewer where separators are dense). A construct still open is re-read with
each piece, which stays well under a second even for a 2 MB comment of spaces."""

Attrs = Sequence[tuple[str, str | None]]
"""A start tag's attributes as the tokenizer gives them: lower-case names, values unescaped (None: no value)."""

_SEPARATORS = "".join(char for char in map(chr, range(0x3001)) if char.isspace() or char in "'\"/")
"""What the start-tag regex lets an attribute follow: quotes, `/` and white space (`\\s`: U+3000 is the last)."""
_ASCII_SEPARATORS = "".join(char for char in _SEPARATORS if char.isascii())
_TAG_OPEN = re.compile(r"<[a-zA-Z]")


class Sink(Protocol):
    """Receives a page's tokens in order (each decides what to keep, and keeps it bounded)."""

    def start(self, tag: str, attrs: Attrs) -> None:
        """A start tag (`<a/>` is a start tag then an end tag)."""

    def end(self, tag: str) -> None:
        """An end tag."""

    def text(self, data: str) -> None:
        """A run of text, character references resolved (raw inside script and style)."""


def attribute(attrs: Attrs, name: str) -> str | None:
    """The attribute's value as a browser reads it (the last one when repeated; '' when valueless), bounded."""
    found: str | None = None
    for key, item in attrs:
        if key == name:
            found = item or ""
    return found[:MAX_ATTRIBUTE_CHARS] if found is not None else None


def scan(markup: str, sinks: Sequence[Sink]) -> str | None:
    """Feed the page's tokens to `sinks`; None when it was read whole, else why it was read only in part."""
    tokenizer = _Tokenizer(sinks)
    end = min(len(markup), MAX_PAGE_CHARS)
    try:
        tokenizer.read(markup, end)
    except _Stop as stop:
        return str(stop)
    except Exception as exc:  # the stdlib tokenizer's own surprise on hostile input: what was read stands
        return f"page read up to a construct the HTML reader gave up on ({type(exc).__name__})"
    if len(markup) > end:
        return f"page cut at {MAX_PAGE_CHARS} characters"
    return None


class _Stop(Exception):
    """Raised inside the tokenizer: reading ends here, for the reason given."""


class _Tokenizer(HTMLParser):
    """html.parser fed in bounded pieces, dispatching tokens to sinks and counting them."""

    def __init__(self, sinks: Sequence[Sink]) -> None:
        super().__init__(convert_charrefs=True)
        self._sinks = sinks
        self._tokens = 0

    def read(self, markup: str, end: int) -> None:
        """Feed markup[:end] in pieces; what is still pending at the end is an unterminated construct, dropped."""
        pos, in_tag = 0, 0
        while pos < end:
            limit = min(end, pos + PIECE_CHARS)
            count = _separators(markup, pos, limit)
            while count > MAX_TAG_SEPARATORS:  # halving ends: a piece of MAX_TAG_SEPARATORS characters fits
                limit = pos + (limit - pos) // 2
                count = _separators(markup, pos, limit)
            pending = len(self.rawdata)
            self.feed(markup[pos:limit])
            if self.cdata_elem or not _TAG_OPEN.match(self.rawdata):
                in_tag = 0
            elif len(self.rawdata) == pending + limit - pos:  # still the start tag pending before this piece
                in_tag += count
            else:
                in_tag = _separators(self.rawdata, 0, len(self.rawdata))
            if in_tag >= MAX_TAG_SEPARATORS:
                raise _Stop(f"page read up to a start tag with room for more than {MAX_TAG_SEPARATORS} attributes")
            pos = limit

    def _token(self) -> None:
        self._tokens += 1
        if self._tokens > MAX_TOKENS:
            raise _Stop(f"page read up to its first {MAX_TOKENS} markup tokens")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._token()
        for sink in self._sinks:
            sink.start(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        self._token()
        for sink in self._sinks:
            sink.end(tag)

    def handle_data(self, data: str) -> None:
        self._token()
        for sink in self._sinks:
            sink.text(data)

    def handle_comment(self, data: str) -> None:
        self._token()

    def handle_decl(self, decl: str) -> None:
        self._token()

    def handle_pi(self, data: str) -> None:
        self._token()

    def unknown_decl(self, data: str) -> None:
        self._token()

    def parse_html_declaration(self, i: int) -> int:
        if self.rawdata.startswith("<![", i):
            return self.parse_bogus_comment(i)
        return super().parse_html_declaration(i)


def _separators(text: str, start: int, end: int) -> int:
    """How many characters of text[start:end] an attribute may follow (str.count: no regex, no list)."""
    chars = _ASCII_SEPARATORS if text.isascii() else _SEPARATORS
    return sum(text.count(char, start, end) for char in chars)
