"""Spreadsheet cells (CSV, XLSX) holding text from outside: shown as it is, never run as a formula."""

from __future__ import annotations

from typing import Final

from soc.core.untrusted import visible

FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
"""A cell starting like this is run as a formula by spreadsheet programs: written with a leading '."""
XLSX_CELL_MAX: Final = 32_767
"""The most characters an Excel cell holds (a longer one makes Excel "repair" the file)."""


def neutralise_formula(text: str) -> str:
    """`text` with a leading apostrophe when a spreadsheet program would read it as a formula."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def cell_text(text: str) -> str:
    """Outside text as a cell: control, bidi and invisible characters as escapes (line feeds and tabs kept,
    as in a cell's Alt+Enter), and never a formula (`=HYPERLINK(…)` is written `'=HYPERLINK(…)`)."""
    return neutralise_formula(visible(text, multiline=True))
