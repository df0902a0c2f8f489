"""The agencies' spreadsheet files read within limits: XLSX streamed cell by cell, CSV bounded.

A file from outside is hostile until read: a 5 KB workbook can claim a cell at XFD1048576, unpack to
gigabytes or hold a million shared strings. Every limit of `SheetLimits` (the SOC_SHEET_* settings) is
checked before the part it guards is read wherever the file states a size (the file, its zip
directory, each part's unpacked size and compression ratio, the number of sheets, a sheet's stated
dimension), and again on what is actually there while reading (rows, columns, cells, XML elements).
A file over a limit is refused with its reason, never half read.

Of a workbook only what a register needs is read: the package manifest, the workbook part and its
relationships and the styles (which number formats are dates), each at most `PART_BYTES`, and the
shared strings and worksheets, streamed (`XMLPullParser`, every element dropped once handled), each
cell decoded as openpyxl's own worksheet parser decodes it (plain text cells directly, the others by it).
Rows stay sparse: nothing is allocated for the empty cells between two values, nor beyond a row's last
value.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast
from xml.etree.ElementTree import Element, XMLPullParser, fromstring

from soc.core.errors import ProblemsError

MIB: Final = 1024 * 1024
PART_BYTES: Final = 4 * MIB
"""The manifest, the workbook part, its relationships and the styles are parsed whole: each at most this."""
RATIO_FROM_BYTES: Final = MIB
"""A part's compression ratio is judged from this unpacked size (tiny parts compress oddly well)."""
DIRECTORY_BYTES: Final = MIB
"""The zip directory is parsed whole (an entry per part): a workbook's is a few kilobytes."""
ELEMENTS_PER_CELL: Final = 4
"""XML elements allowed in the streamed parts per allowed cell (a cell is 2–3: <c>, <v>, an inline <is><t>)."""
ELEMENTS_PER_VALUE: Final = 1000
"""XML elements one cell or shared string may hold (rich text runs); they are kept until it ends."""
FEED_BYTES: Final = 64 * 1024
FEED_MAX_BYTES: Final = 8 * MIB
"""A streamed part is fed to the XML parser 64 KB at a time, more (up to 8 MB) inside one long token."""
CSV_LINE_CHARS: Final = 256 * 1024
"""The longest line of a CSV file (the csv module builds a whole record in memory)."""

_MAIN: Final = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_ROW: Final = _MAIN + "row"
_CELL: Final = _MAIN + "c"
_DIMENSION: Final = _MAIN + "dimension"
_MERGE: Final = _MAIN + "mergeCell"
_STRING: Final = _MAIN + "si"
_TEXT: Final = _MAIN + "t"
_INLINE: Final = _MAIN + "is"
_VALUE: Final = _MAIN + "v"
_LINE: Final = re.compile(r"[^\r\n]+")


@dataclass(frozen=True)
class SheetLimits:
    """How big a spreadsheet file may be; defaults are those of the SOC_SHEET_* settings (`soc.core.settings`)."""

    max_bytes: int = 20 * MIB
    """The file's size (XLSX or CSV)."""
    max_unpacked_bytes: int = 64 * MIB
    """The unpacked size of all of an XLSX workbook's parts together."""
    max_ratio: int = 100
    """How many times its packed size a workbook part may unpack to (saved workbooks: about 5–15)."""
    max_sheets: int = 20
    max_rows: int = 20_000
    """The last row a sheet may use (per sheet; a CSV file: its number of lines)."""
    max_columns: int = 100
    """The last column a sheet may use (100 = CV)."""
    max_cells: int = 400_000
    """Cells in the whole file (each cell element of a workbook, merged cells included, each field of a CSV
    file), and entries of a workbook's shared-string table; it bounds the time a file takes (some 10 µs a cell)."""


class WorkbookError(ProblemsError):
    """The file cannot be read, or is over a limit: the problem names the file and, when it can, the sheet."""


@dataclass(frozen=True)
class Merge:
    """A merged range of a sheet, 1-based."""

    ref: str
    min_row: int
    min_col: int
    max_row: int
    max_col: int

    def covers(self, row: int, col: int) -> bool:
        return self.min_row <= row <= self.max_row and self.min_col <= col <= self.max_col


@dataclass
class RawSheet:
    """One sheet of a workbook, or a CSV file read with one delimiter: rows of values, 1-based and sparse
    (a row ends at its last value; a formula cell or an error cell is listed apart, its value None)."""

    title: str | None
    rows: list[list[object]] = field(default_factory=list)
    formulas: dict[tuple[int, int], str] = field(default_factory=dict)
    errors: set[tuple[int, int]] = field(default_factory=set)
    merges: list[Merge] = field(default_factory=list)

    def put(self, row: int, col: int, value: object) -> None:
        while len(self.rows) < row:
            self.rows.append([])
        cells = self.rows[row - 1]
        if len(cells) < col:
            cells.extend([None] * (col - len(cells)))
        cells[col - 1] = value


def _size(count: int) -> str:
    return f"{count / MIB:.1f} MB" if count >= MIB else f"{count // 1024} KB"


def _check_size(path: Path, limits: SheetLimits) -> None:
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise WorkbookError([f"{path.name}: {_size(size)}, larger than the {_size(limits.max_bytes)} a spreadsheet "
                             "may be (SOC_SHEET_MAX_BYTES); split the file"])


def _unreadable(file: str, exc: BaseException) -> WorkbookError:
    return WorkbookError([f"{file}: not a readable XLSX workbook ({type(exc).__name__}: {exc})"])


# --- XLSX --------------------------------------------------------------------------------------------------


def read_xlsx(path: Path, limits: SheetLimits) -> list[RawSheet]:
    """The worksheets of an XLSX workbook, in order (chart sheets have no cells); `WorkbookError` if the file
    is damaged or over a limit."""
    _check_size(path, limits)
    _check_directory(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise _unreadable(path.name, exc) from None
    with archive:
        _check_parts(path.name, archive, limits)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return _Workbook(path.name, archive, limits).read()
        except WorkbookError:
            raise
        except Exception as exc:  # a damaged workbook can fail anywhere inside openpyxl or the XML parser
            raise _unreadable(path.name, exc) from None


def _check_directory(path: Path) -> None:
    """Refuse a zip directory too big to be a workbook's before zipfile parses it (an object per entry)."""
    end_record = getattr(zipfile, "_EndRecData", None)  # private, but the stdlib's only reader of the end record
    size_field = getattr(zipfile, "_ECD_SIZE", None)
    if end_record is None or size_field is None:
        return
    with path.open("rb") as handle:
        record = end_record(handle)
    if record is not None and record[size_field] > DIRECTORY_BYTES:
        raise WorkbookError([f"{path.name}: its zip directory is {_size(record[size_field])} (a workbook's is a "
                             "few KB): not a workbook"])


def _check_parts(file: str, archive: zipfile.ZipFile, limits: SheetLimits) -> None:
    """Zip bombs: refuse by the sizes the directory states (zipfile never unpacks more than a part's stated size)."""
    problems = []
    total = 0
    for info in archive.infolist():
        total += info.file_size
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            problems.append(f"{file}: part '{info.filename}' is compressed with method {info.compress_type}, not "
                            "deflate as in every saved workbook; not a workbook")
        elif info.file_size > RATIO_FROM_BYTES and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            ratio = info.file_size // max(info.compress_size, 1)
            problems.append(f"{file}: part '{info.filename}' unpacks to {ratio} times its packed size (more than "
                            f"{limits.max_ratio}, SOC_SHEET_MAX_RATIO): a zip bomb, not a saved workbook")
    if total > limits.max_unpacked_bytes:
        problems.insert(0, f"{file}: unpacks to {_size(total)}, more than the {_size(limits.max_unpacked_bytes)} "
                           "a workbook may (SOC_SHEET_MAX_UNPACKED_BYTES); split the file")
    if problems:
        raise WorkbookError(problems)


@dataclass
class _Budget:
    """What the streamed parts of one file have used of the cell and element limits."""

    limits: SheetLimits
    cells: int = 0
    elements: int = 0

    def add_cells(self, count: int, where: str) -> None:
        self.cells += count
        if self.cells > self.limits.max_cells:
            raise WorkbookError([f"{where}: more than {self.limits.max_cells} cells in the file "
                                 "(SOC_SHEET_MAX_CELLS); split the file"])


class _Workbook:
    """One workbook being read: its archive, the limits, what has been used of them."""

    def __init__(self, file: str, archive: zipfile.ZipFile, limits: SheetLimits) -> None:
        self.file = file
        self.archive = archive
        self.limits = limits
        self.budget = _Budget(limits)
        self.names = set(archive.namelist())

    def read(self) -> list[RawSheet]:
        from openpyxl.packaging.manifest import Manifest  # type: ignore[import-untyped]  # workbooks only
        from openpyxl.packaging.relationship import get_rels_path  # type: ignore[import-untyped]
        from openpyxl.reader.workbook import WorkbookParser  # type: ignore[import-untyped]
        from openpyxl.styles.stylesheet import apply_stylesheet  # type: ignore[import-untyped]
        from openpyxl.xml.constants import (  # type: ignore[import-untyped]
            ARC_CONTENT_TYPES,
            ARC_STYLE,
            ARC_WORKBOOK,
            SHARED_STRINGS,
            XLSM,
            XLSX,
            XLTM,
            XLTX,
        )

        manifest = Manifest.from_tree(fromstring(self.archive.read(self._small(ARC_CONTENT_TYPES))))
        part = next((found for kind in (XLTM, XLTX, XLSM, XLSX) if (found := manifest.find(kind))), None)
        workbook_name = self._small(part.PartName[1:] if part is not None else ARC_WORKBOOK)
        if get_rels_path(workbook_name) in self.names:
            self._small(get_rels_path(workbook_name))
        parser = WorkbookParser(self.archive, workbook_name, keep_links=False)  # no external links read
        parser.parse()
        if ARC_STYLE in self.names:
            self._small(ARC_STYLE)
            apply_stylesheet(self.archive, parser.wb)
        sheets = [(str(sheet.name), rel.target) for sheet, rel in parser.find_sheets()
                  if "chartsheet" not in rel.Type and rel.target in self.names]
        if len(sheets) > self.limits.max_sheets:
            raise WorkbookError([f"{self.file}: {len(sheets)} sheets, more than {self.limits.max_sheets} "
                                 "(SOC_SHEET_MAX_SHEETS); keep the register on fewer sheets"])
        strings_part = manifest.find(SHARED_STRINGS)
        strings_name = strings_part.PartName[1:] if strings_part is not None else None
        strings = self._strings(strings_name) if strings_name in self.names else []
        return [self._sheet(title, name, strings, parser.wb) for title, name in sheets]

    def _small(self, name: str) -> str:
        """`name`, once checked to be small enough to be parsed whole (at most `PART_BYTES`) before it is read."""
        info = self.archive.getinfo(name)
        if info.file_size > PART_BYTES:
            raise WorkbookError([f"{self.file}: part '{name}' unpacks to {_size(info.file_size)}, more than the "
                                 f"{_size(PART_BYTES)} it may have: not a saved workbook"])
        return name

    def _stream(self, name: str, where: str, keep: str, starts: frozenset[str] = frozenset(),
                ends: frozenset[str] = frozenset()) -> Iterator[tuple[str, Element]]:
        """The start events of `starts` tags and the end events of `ends` tags of a part's XML. Once its end
        has passed, an element is dropped from the tree, except inside a `keep` element, whose handler reads
        them (they go with it).

        The part is fed to the parser `FEED_BYTES` at a time, doubled up to `FEED_MAX_BYTES` while a feed
        gives no event: expat before 2.6 parses an unfinished token again at each feed, so one huge token (a
        comment, an attribute) fed in iterparse's 16 KB reads costs quadratic time — 65 s for 21 MB."""
        budget, most = self.budget, self.limits.max_cells * ELEMENTS_PER_CELL
        parser: XMLPullParser[Element] = XMLPullParser(events=("start", "end"))
        stack: list[Element] = []
        kept = 0
        size = FEED_BYTES
        with self.archive.open(name) as source:
            while True:
                chunk = source.read(size)
                if chunk:
                    parser.feed(chunk)
                else:
                    parser.close()
                found = False
                for event, element in cast(Iterator[tuple[str, Element]], parser.read_events()):
                    found = True
                    tag = element.tag
                    if event == "start":
                        budget.elements += 1
                        if budget.elements > most:
                            raise WorkbookError([f"{where}: more than {most} XML elements ({ELEMENTS_PER_CELL} "
                                                 "per allowed cell, SOC_SHEET_MAX_CELLS): not a register"])
                        stack.append(element)
                        if kept or tag == keep:
                            kept += 1
                            if kept > ELEMENTS_PER_VALUE:
                                raise WorkbookError([f"{where}: a cell or string of more than "
                                                     f"{ELEMENTS_PER_VALUE} XML elements: not a register"])
                        if tag in starts:
                            yield event, element
                        continue
                    if tag in ends:
                        yield event, element
                    stack.pop()
                    if tag == keep:
                        kept = 0
                    if not kept and stack:
                        stack[-1].remove(element)
                if not chunk:
                    return
                size = FEED_BYTES if found else min(size * 2, FEED_MAX_BYTES)

    def _strings(self, name: str) -> list[str]:
        """The shared-string table, each entry as openpyxl reads it (plain text of its runs, no phonetics)."""
        where = f"{self.file}: shared strings"
        strings: list[str] = []
        for _, element in self._stream(name, where, keep=_STRING, ends=frozenset({_STRING})):
            strings.append(_text(element).replace("x005F_", ""))
            if len(strings) > self.limits.max_cells:
                raise WorkbookError([f"{where}: more than {self.limits.max_cells} of them (SOC_SHEET_MAX_CELLS); "
                                     "split the file"])
        return strings

    def _sheet(self, title: str, name: str, strings: list[str], workbook: Any) -> RawSheet:
        from openpyxl.worksheet._reader import WorkSheetParser  # type: ignore[import-untyped]

        sheet = RawSheet(title)
        where = f"{self.file}: sheet '{title}'"
        cells = WorkSheetParser(None, strings, data_only=False, epoch=workbook.epoch,
                                date_formats=getattr(workbook, "_date_formats", set()),
                                timedelta_formats=getattr(workbook, "_timedelta_formats", set()))
        for event, element in self._stream(name, where, keep=_CELL, starts=frozenset({_ROW}),
                                           ends=frozenset({_CELL, _DIMENSION, _MERGE})):
            tag = element.tag
            if event == "start":
                self._start_row(cells, element)
            elif tag == _CELL:
                self._cell(sheet, _text_cell(cells, element, strings) or cells.parse_cell(element), where)
            elif tag == _DIMENSION:
                self._dimension(element.get("ref"), where)
            else:
                self._merge(sheet, element.get("ref"), where)
        return sheet

    def _start_row(self, cells: Any, element: Element) -> None:
        """What openpyxl's row parser does before its cells (cells without a reference count from it)."""
        number = element.get("r")
        if number is None:
            cells.row_counter += 1
        else:
            value = float(number)
            if not value.is_integer():
                raise ValueError(f"{number} is not a valid row number")
            cells.row_counter = int(value)
        cells.col_counter = 0

    def _cell(self, sheet: RawSheet, cell: dict[str, Any], where: str) -> None:
        row, col = cell["row"], cell["column"]
        if row < 1 or col < 1:
            raise WorkbookError([f"{where}: a cell at row {row}, column {col}, outside any sheet: not a saved "
                                 "workbook"])
        if row > self.limits.max_rows or col > self.limits.max_columns:
            raise self._extent(where, row, col)
        self.budget.add_cells(1, where)
        value, kind = cell["value"], cell["data_type"]
        if kind == "f":
            sheet.formulas[(row, col)] = str(getattr(value, "text", value))
            return
        if kind == "e":
            sheet.errors.add((row, col))
        if value is not None:
            sheet.put(row, col, value)

    def _dimension(self, ref: str | None, where: str) -> None:
        """The extent the sheet states (Excel's used range): refused before any cell when over the limits."""
        bounds = _bounds(ref)
        if bounds is not None and (bounds[3] > self.limits.max_rows or bounds[2] > self.limits.max_columns):
            raise self._extent(where, bounds[3], bounds[2], stated=ref)

    def _merge(self, sheet: RawSheet, ref: str | None, where: str) -> None:
        bounds = _bounds(ref)
        if bounds is None or ref is None:
            return
        min_col, min_row, max_col, max_row = bounds
        if max_row > self.limits.max_rows or max_col > self.limits.max_columns:
            raise self._extent(where, max_row, max_col, merged=ref)
        self.budget.add_cells(max(1, (max_row - min_row + 1) * (max_col - min_col + 1)), where)
        sheet.merges.append(Merge(ref, min_row, min_col, max_row, max_col))

    def _extent(self, where: str, row: int, col: int, *, stated: str | None = None,
                merged: str | None = None) -> WorkbookError:
        from openpyxl.utils.cell import get_column_letter  # type: ignore[import-untyped]

        over, what = [], []
        if col > self.limits.max_columns:
            over.append(f"more than {self.limits.max_columns} columns (SOC_SHEET_MAX_COLUMNS)")
            what.append("columns")
        if row > self.limits.max_rows:
            over.append(f"more than {self.limits.max_rows} rows (SOC_SHEET_MAX_ROWS)")
            what.insert(0, "rows")
        how = f" (its stated dimension {stated})" if stated else f" (merged cells {merged})" if merged else ""
        return WorkbookError([f"{where} extends to cell {get_column_letter(min(col, 18278))}{row}{how}: "
                              f"{' and '.join(over)}; delete the {' and '.join(what)} beyond the data (they may "
                              "hold only formatting), or split the file"])


def _text(element: Element) -> str:
    """A shared or inline string's text as openpyxl's `Text.content` gives it; a lone <t> read directly."""
    if len(element) == 1 and element[0].tag == _TEXT:
        return element[0].text or ""
    from openpyxl.cell.text import Text  # type: ignore[import-untyped]

    return str(Text.from_tree(element).content)


def _text_cell(cells: Any, element: Element, strings: list[str]) -> dict[str, Any] | None:
    """openpyxl's parse of a plain text cell, a shared string (t="s", a lone <v>) or an inline string of one
    <t> (without building openpyxl's rich-text model, most of the time of a workbook openpyxl wrote); None
    for every other cell (openpyxl's parser reads those)."""
    kind = element.get("t")
    if len(element) != 1:
        return None
    child = element[0]
    if kind == "s" and child.tag == _VALUE and child.text:
        value = strings[int(child.text)]
    elif kind == "inlineStr" and child.tag == _INLINE and len(child) == 1 and child[0].tag == _TEXT:
        value = child[0].text or ""
    else:
        return None
    from openpyxl.utils.cell import coordinate_to_tuple

    coordinate = element.get("r")
    if coordinate:
        row, column = coordinate_to_tuple(coordinate)
        cells.col_counter = column
    else:
        cells.col_counter += 1
        row, column = cells.row_counter, cells.col_counter
    return {"row": row, "column": column, "value": value, "data_type": "s"}


def _bounds(ref: str | None) -> tuple[int, int, int, int] | None:
    """(min_col, min_row, max_col, max_row) of a range reference; None when it is not a closed range."""
    from openpyxl.utils.cell import range_boundaries

    if not ref:
        return None
    try:
        bounds = range_boundaries(ref)
    except (ValueError, TypeError):
        return None
    if any(not isinstance(value, int) or value < 1 for value in bounds):
        return None
    return bounds[0], bounds[1], bounds[2], bounds[3]


# --- CSV ---------------------------------------------------------------------------------------------------


def read_csv(path: Path, limits: SheetLimits) -> list[RawSheet]:
    """The rows of a CSV file, once per delimiter tried (',' then ';'). A reading over a limit is dropped; the
    file is refused when no other reading finds more than one column (the other delimiter is not the file's)."""
    _check_size(path, limits)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise WorkbookError([f"{path.name}: not UTF-8 text (in Excel, save as 'CSV UTF-8')"]) from None
    for line in _LINE.finditer(text):
        if line.end() - line.start() > CSV_LINE_CHARS:
            number = text.count("\n", 0, line.start()) + 1
            raise WorkbookError([f"{path.name}: line {number} is longer than {CSV_LINE_CHARS} characters: not a "
                                 "register"])
    sheets: list[RawSheet] = []
    refused: list[WorkbookError] = []
    for delimiter in (",", ";"):
        try:
            sheets.append(_csv_sheet(path.name, text, delimiter, limits))
        except csv.Error as exc:
            raise WorkbookError([f"{path.name}: not a readable CSV file ({exc})"]) from None
        except WorkbookError as exc:
            refused.append(exc)
    if refused and all(max(map(len, sheet.rows), default=0) <= 1 for sheet in sheets):
        raise refused[0]  # the other delimiter reads one column per line: not the file's own
    return sheets


def _csv_sheet(file: str, text: str, delimiter: str, limits: SheetLimits) -> RawSheet:
    sheet = RawSheet(None)
    budget = _Budget(limits)
    for number, record in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), start=1):
        while record and not record[-1]:
            record.pop()  # trailing empty fields: Excel writes them up to the widest row
        if number > limits.max_rows:
            raise WorkbookError([f"{file}: more than {limits.max_rows} rows (SOC_SHEET_MAX_ROWS); split the file"])
        if len(record) > limits.max_columns:
            raise WorkbookError([f"{file}: row {number} has {len(record)} columns, more than {limits.max_columns} "
                                 "(SOC_SHEET_MAX_COLUMNS)"])
        budget.add_cells(len(record), file)
        sheet.rows.append(list[object](record))
    return sheet


__all__ = ["Merge", "RawSheet", "SheetLimits", "WorkbookError", "read_csv", "read_xlsx"]
