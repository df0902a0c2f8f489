"""Showing text that came from outside (portals, certificates, spreadsheets, inventories) without letting it act.

What collectors and imports record is stored verbatim: it is evidence. Every output boundary renders it
through `visible` (terminal, CSV/XLSX exports, reports, the dashboard) or `json_text` (JSON documents), so
no character from outside can drive a terminal (ESC and 0x9b CSI sequences: clear screen, move the cursor,
set the window title, OSC 8 hyperlinks), reorder what is shown (bidi overrides and isolates) or hide text
(zero-width and tag characters).

What is made visible — `UNSAFE_RANGES`, every code point of these Unicode general categories:
- Cc: the C0 controls U+0000–U+001F, DEL U+007F and the C1 controls U+0080–U+009F (0x9b is CSI);
- Cf: format characters — bidi marks, embeddings, overrides and isolates (U+061C, U+200E/U+200F,
  U+202A–U+202E, U+2066–U+2069), zero-width space/joiners (U+200B–U+200D), word joiner and invisible
  operators (U+2060–U+2064), BOM (U+FEFF), soft hyphen, tag characters (U+E0000 block) …;
- Cs: lone surrogates (they cannot even be written as UTF-8);
- Zl, Zp: U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR.
Letters, marks and spaces are kept, whatever they look like (Vietnamese combining tone marks, NBSP):
they neither move the cursor nor reorder text. A backslash is kept as it is, so the escape of a
character and the same text typed literally look alike: a reader can be misled about what was sent,
never about what is shown.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

UNSAFE_RANGES: Final[tuple[tuple[int, int], ...]] = (
    (0x0000, 0x001F), (0x007F, 0x009F), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C),
    (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E),
    (0x200B, 0x200F), (0x2028, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F), (0xD800, 0xDFFF),
    (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F),
)
"""Inclusive code point ranges shown as escapes: Unicode categories Cc, Cf, Cs, Zl and Zp (Unicode 15).

tests/adversarial/test_control_characters.py checks it covers every such code point of the running Python."""
MULTILINE_KEPT: Final = "\n\t"
"""What `visible(…, multiline=True)` keeps: line feeds and tabs (a cell's Alt+Enter, a multi-line message)."""
_NAMED: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _class(ranges: tuple[tuple[int, int], ...], skip: str = "") -> re.Pattern[str]:
    """A character class of `ranges` minus the characters of `skip`, written with escapes (no raw surrogate)."""
    parts = []
    for low, high in ranges:
        points = [c for c in range(low, high + 1) if chr(c) not in skip] if skip and low < 0x80 else None
        if points is None:
            parts.append(f"\\U{low:08x}-\\U{high:08x}")
        else:
            parts.extend(f"\\U{c:08x}" for c in points)
    return re.compile(f"[{''.join(parts)}]")


_UNSAFE: Final = _class(UNSAFE_RANGES)
_UNSAFE_MULTILINE: Final = _class(UNSAFE_RANGES, skip=MULTILINE_KEPT)
_UNSAFE_IN_JSON: Final = _class(tuple((max(low, 0x20), high) for low, high in UNSAFE_RANGES if high >= 0x20))
"""json.dumps already escapes U+0000–U+001F inside strings; outside strings they are its own indentation."""


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    point = ord(char)
    if point < 0x100:
        return f"\\x{point:02x}"
    return f"\\u{point:04x}" if point < 0x10000 else f"\\U{point:08x}"


def visible(text: str, *, multiline: bool = False) -> str:
    """`text` with every control, format, surrogate and separator character shown as an escape (`\\x1b`, `\\u202e`).

    Single-line by default (a line feed becomes `\\n`, so one value stays one line); `multiline=True`
    keeps line feeds and tabs. Everything else is returned unchanged, so Vietnamese text is as written.
    """
    return (_UNSAFE_MULTILINE if multiline else _UNSAFE).sub(_escape, text)


def _json_escape(match: re.Match[str]) -> str:
    point = ord(match.group())
    if point < 0x10000:
        return f"\\u{point:04x}"
    point -= 0x10000
    return f"\\u{0xD800 + (point >> 10):04x}\\u{0xDC00 + (point & 0x3FF):04x}"


def safe_json(text: str) -> str:
    """JSON text with the raw characters of `UNSAFE_RANGES` written as `\\uXXXX` escapes.

    A JSON reader gets exactly the same data (the evidence stays verbatim for machines), while the bytes
    hold no C1 control, bidi or invisible character for a terminal that shows the file. Such characters
    can only be inside strings, where an escape means the same character.
    """
    return _UNSAFE_IN_JSON.sub(_json_escape, text)


def json_text(document: Any, indent: int | None = 2) -> str:
    """`document` as JSON (UTF-8 text, non-ASCII letters kept) with every unsafe character escaped."""
    return safe_json(json.dumps(document, ensure_ascii=False, indent=indent))
