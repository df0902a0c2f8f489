"""The spreadsheets agencies send: the information-system register and anti-malware coverage, XLSX or CSV.

Headers may be Vietnamese or English, with or without diacritics; values likewise. Reading is all or
nothing: every problem is collected, each naming the file, the sheet (XLSX), the row as the spreadsheet
shows it and the column header as written, and `SheetError` is raised if there is any.
"""

from __future__ import annotations

import csv
import difflib
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Final, Generic, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from soc.compliance.models import (
    ApprovalStatus,
    CoverageRecord,
    Environment,
    RequirementStatus,
    SystemRecord,
)
from soc.compliance.sheet_files import Merge, SheetLimits, WorkbookError, read_csv, read_xlsx
from soc.compliance.vocabulary import BASE_VOCABULARY, Sheet, ValueKind, Vocabulary, fold
from soc.core.cells import FORMULA_STARTS, neutralise_formula
from soc.core.errors import ProblemsError
from soc.core.files import atomic_write
from soc.core.untrusted import visible

RecordT = TypeVar("RecordT", bound=BaseModel)
Kind = Literal["text", "agency", "level", "status", "date", "bool", "environment", "requirements", "count"]
CellValue = str | int | date | None

HEADER_SEARCH_ROWS: Final = 15
"""The header row is looked for in this many rows from the top (title rows often come first)."""


class SheetError(ProblemsError):
    """The spreadsheet cannot be used; `problems` lists every problem, each naming file, sheet, row and column."""


@dataclass(frozen=True)
class SheetResult(Generic[RecordT]):
    """The records of a spreadsheet, in sheet and row order, and the warnings about what was ignored."""

    records: list[RecordT]
    warnings: list[str]
    columns: frozenset[str] = frozenset()
    """The record fields the file has a column for: only these may change stored values."""
    as_of: date | None = None
    """The date the file says its figures are as of (a title such as 'Số liệu tính đến ngày 30/11/2026')."""


@dataclass(frozen=True)
class Column:
    """One spreadsheet column: the record field it fills, its accepted headers and the kind of its values."""

    key: str
    """Record field; 'layers.<field>' for the protection layers."""
    vietnamese: tuple[str, ...]
    english: tuple[str, ...]
    kind: Kind
    required: bool = False

    @property
    def headers(self) -> tuple[str, ...]:
        """Every accepted header, Vietnamese first."""
        return self.vietnamese + self.english

    def header(self, english: bool = False) -> str:
        """The header written out: the first Vietnamese (or English) alias."""
        return self.english[0] if english else self.vietnamese[0]


@dataclass(frozen=True)
class Labels:
    """The words for one value; the first Vietnamese (or English) one is the one written out."""

    vietnamese: tuple[str, ...]
    english: tuple[str, ...]


_SYSTEM_FIELDS: Final[tuple[tuple[str, Kind, bool], ...]] = (
    ("id", "text", True), ("name", "text", True), ("agency", "agency", True), ("proposed_level", "level", False),
    ("approved_level", "level", False), ("status", "status", True), ("decision_number", "text", False),
    ("decision_date", "date", False), ("approving_authority", "text", False), ("in_operation", "bool", False),
    ("environment", "environment", False), ("handles_admin_procedures", "bool", False),
    ("requirements", "requirements", False), ("requirements_assessed", "date", False),
    ("next_reassessment", "date", False), ("legal_basis", "text", False), ("layers.on_site_team", "bool", False),
    ("layers.monitoring", "bool", False), ("layers.inspection", "bool", False),
    ("layers.ncsc_connected", "bool", False),
)
"""The register of information systems (hệ thống thông tin): one column per `SystemRecord` field, its kind,
and whether a file must have it. The headers are data (`vocabulary.yaml`)."""

_COVERAGE_FIELDS: Final[tuple[tuple[str, Kind, bool], ...]] = (
    ("agency", "agency", True), ("total_computers", "count", True), ("protected", "count", True),
    ("reporting_to_ncsc", "count", True), ("as_of", "date", False),
)
"""Anti-malware coverage, one column per `CoverageRecord` field."""


def columns_for(sheet: Sheet, vocabulary: Vocabulary = BASE_VOCABULARY) -> tuple[Column, ...]:
    """The columns of one kind of spreadsheet with the headers the vocabulary accepts."""
    fields = _SYSTEM_FIELDS if sheet == "systems" else _COVERAGE_FIELDS
    columns = []
    for key, kind, required in fields:
        words = vocabulary.column(sheet, key)
        columns.append(Column(key, words.vi or (key,), words.en or (key,), kind, required))
    return tuple(columns)


SYSTEM_COLUMNS: Final = columns_for("systems")
COVERAGE_COLUMNS: Final = columns_for("coverage")
IGNORED_HEADERS: Final = BASE_VOCABULARY.ignored_headers
"""Row-number and remark columns found on nearly every form: ignored without a warning."""

_CHOICES: Final[Mapping[ValueKind, tuple[str, Callable[[str], object]]]] = {
    "status": ("status", ApprovalStatus),
    "environment": ("environment", Environment),
    "requirements": ("requirements value", RequirementStatus),
    "bool": ("yes/no value", lambda text: text == "true"),
}


def value_labels(kind: ValueKind, vocabulary: Vocabulary = BASE_VOCABULARY) -> dict[object, Labels]:
    """Each value of a kind with its words."""
    convert = _CHOICES[kind][1]
    return {convert(choice): Labels(words.vi, words.en) for choice, words in vocabulary.values.get(kind, {}).items()}


STATUS_LABELS: Final = value_labels("status")
ENVIRONMENT_LABELS: Final = value_labels("environment")
REQUIREMENT_LABELS: Final = value_labels("requirements")
BOOLEAN_LABELS: Final = value_labels("bool")
"""An empty cell is also 'no'."""


class _CellProblem(Exception):
    """A cell value that cannot be used; the message says why."""


# --- text normalisation -------------------------------------------------------------------------------------


_normalise = functools.lru_cache(maxsize=4096)(fold)
"""Folded text, remembered: the same few words (statuses, yes/no, agencies) fill most cells of a register."""


def _display(text: str) -> str:
    """Text as written, on one line (headers often contain Alt+Enter line breaks)."""
    return " ".join(text.split())


def _show(value: object) -> str:
    """A cell value as quoted in a message."""
    if isinstance(value, str):
        return f"'{_display(value)}'"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    return str(value)


def _is_empty(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _column_letter(index: int) -> str:
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


# --- value parsing ------------------------------------------------------------------------------------------


def _suggest(text: str, words: Sequence[str], cutoff: float = 0.6, n: int = 3) -> list[str]:
    """The known words closest to `text` (compared folded), best first."""
    folded: dict[str, str] = {}
    for word in words:
        folded.setdefault(_normalise(word), word)
    return [folded[match] for match in difflib.get_close_matches(_normalise(text), list(folded), n=n, cutoff=cutoff)]


def _did_you_mean(close: Sequence[str]) -> str:
    return " (did you mean " + " or ".join(f"'{word}'" for word in close) + "?)" if close else ""


@dataclass(frozen=True)
class _Lookup:
    """What cell values are matched against: the known agencies (by id or name) and the value words."""

    names: Mapping[str, str]
    index: Mapping[str, frozenset[str]]
    vocabulary: Vocabulary
    choices: dict[ValueKind, tuple[dict[str, object], list[str], list[str]]] = field(
        default_factory=dict, compare=False)
    """Per value kind, built at its first cell (folding every word per cell cost seconds a thousand rows):
    folded word → value, every word, the words written out."""

    @classmethod
    def build(cls, agencies: Mapping[str, str], vocabulary: Vocabulary = BASE_VOCABULARY) -> _Lookup:
        index: dict[str, set[str]] = {}
        for agency_id, name in agencies.items():
            for text in (agency_id, name):
                index.setdefault(_normalise(text), set()).add(agency_id)
        return cls(dict(agencies), {key: frozenset(ids) for key, ids in index.items()}, vocabulary)

    def choice(self, kind: ValueKind, value: object) -> object:
        """A vocabulary value (status, environment, requirements, yes/no), or `_CellProblem` with suggestions."""
        what, convert = _CHOICES[kind]
        if kind == "bool" and (isinstance(value, bool) or value in (0, 1)):
            return bool(value)
        if kind not in self.choices:
            index: dict[str, object] = {}
            words: list[str] = []
            main: list[str] = []
            for choice, labels in self.vocabulary.values.get(kind, {}).items():
                words += [*labels.vi, *labels.en]
                main += [*labels.vi[:1], *labels.en[:1]]
                index.update({_normalise(word): convert(choice) for word in (*labels.vi, *labels.en, choice)})
            self.choices[kind] = (index, words, main)
        index, words, main = self.choices[kind]
        text = _normalise(value) if isinstance(value, str) else None
        if text is None or text not in index:
            close = _suggest(value, words) if isinstance(value, str) else []
            accepted = ", ".join(f"'{word}'" for word in main)
            raise _CellProblem(f"{_show(value)} is not a known {what}{_did_you_mean(close)} (accepted: {accepted}, "
                               "and their usual variants; the SOC can add words in its vocabulary file)")
        return index[text]

    def resolve(self, value: object) -> str:
        text = _parse_text(value)
        if text in self.names:
            return text
        ids = self.index.get(_normalise(text), frozenset())
        if len(ids) > 1:
            raise _CellProblem(f"{_show(value)} matches several agencies ({', '.join(sorted(ids))}); write the id")
        if not ids:
            raise _CellProblem(f"{_show(value)} is not a known agency{self._suggestion(text)}")
        return next(iter(ids))

    def label(self, agency_id: str) -> str:
        """The agency's name when it finds the agency again on reading, else its id."""
        name = self.names[agency_id]
        return name if self.index.get(_normalise(name)) == frozenset({agency_id}) else agency_id

    def _suggestion(self, text: str) -> str:
        names = {_normalise(name): name for name in self.names.values()}
        close = difflib.get_close_matches(_normalise(text), list(names), n=1, cutoff=0.75)
        return f" (did you mean '{names[close[0]]}'?)" if close else " (write its id or its name as in the inventory)"


def _parse_text(value: object) -> str:
    if isinstance(value, str):
        text = value.strip()
        return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_STARTS) else text
    if isinstance(value, date):
        raise _CellProblem(f"{_show(value)} is a date, not text (format the cell as Text and retype it)")
    if isinstance(value, bool):
        raise _CellProblem(f"{_show(value)} is a TRUE/FALSE value, not text")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_ROMAN: Final = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5}


def _parse_level(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _CellProblem(f"{_show(value)} is not a level 1–5")
    if isinstance(value, float) and not value.is_integer():
        raise _CellProblem(f"{_show(value)} is not a level 1–5")
    if isinstance(value, int | float):
        number = int(value)
    else:
        text = re.sub(r"^(cap do|cap|level)\s*", "", _normalise(value))
        match = re.fullmatch(r"([0-9]+)(?: 0+)?", text)
        if match:
            number = int(match[1])
        elif text in _ROMAN:
            number = _ROMAN[text]
        else:
            raise _CellProblem(f"{_show(value)} is not a level (write 1–5, e.g. 3 or 'Cấp độ 3')")
    if not 1 <= number <= 5:
        raise _CellProblem(f"{_show(value)} is not a level 1–5")
    return number


_DMY: Final = re.compile(r"([0-9]{1,2})([/.-])([0-9]{1,2})\2([0-9]{4})")
_YMD: Final = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:[ T]00:00(?::00)?)?")


def _parse_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise _CellProblem(f"{_show(value)} is a number, not a date (format the cell as a date or write dd/mm/yyyy)")
    if not isinstance(value, str):
        raise _CellProblem(f"{_show(value)} is not a date (write dd/mm/yyyy)")
    text = value.strip()
    if match := _DMY.fullmatch(text):
        day, month, year = int(match[1]), int(match[3]), int(match[4])
    elif match := _YMD.fullmatch(text):
        year, month, day = int(match[1]), int(match[2]), int(match[3])
    else:
        raise _CellProblem(f"{_show(value)} is not a date (write dd/mm/yyyy, e.g. 25/03/2024)")
    try:
        return date(year, month, day)
    except ValueError:
        raise _CellProblem(f"{_show(value)} is not a real date (dates are read as dd/mm/yyyy)") from None


def _parse_count(value: object) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[0-9]+|[0-9]{1,3}([., \u00a0])[0-9]{3}(?:\1[0-9]{3})*", text):
            number = int(re.sub(r"[^0-9]", "", text))
    if number is None or number < 0:
        raise _CellProblem(f"{_show(value)} is not a number of computers (a whole number, 0 or more)")
    return number


def _parse(kind: Kind, value: object, lookup: _Lookup) -> object:
    """A non-empty cell's value as the record wants it, or `_CellProblem`."""
    if kind == "text":
        return _parse_text(value)
    if kind == "agency":
        return lookup.resolve(value)
    if kind == "level":
        return _parse_level(value)
    if kind == "date":
        return _parse_date(value)
    if kind == "count":
        return _parse_count(value)
    return lookup.choice(kind, value)


# --- grids: a sheet or a CSV file as rows of cell values --------------------------------------------------


@dataclass
class _Grid:
    """One sheet of a workbook, or a CSV file: rows of cell values, 1-based like the spreadsheet."""

    file: str
    sheet: str | None
    rows: list[list[object]]
    formulas: dict[tuple[int, int], str] = field(default_factory=dict)
    errors: set[tuple[int, int]] = field(default_factory=set)
    merges: list[Merge] = field(default_factory=list)

    def cell(self, row: int, col: int) -> object:
        cells = self.rows[row - 1] if row <= len(self.rows) else []
        return cells[col - 1] if col <= len(cells) else None

    def where(self, row: int | None = None, header: str | None = None) -> str:
        place = " ".join(part for part in (self.sheet_name(), f"row {row}" if row else "") if part)
        if header is not None:
            place += f", column '{_display(header)}'"
        return f"{self.file}: {place}" if place else self.file

    def sheet_name(self) -> str:
        return f"sheet '{self.sheet}'" if self.sheet is not None else ""

    def is_empty(self) -> bool:
        return not self.formulas and all(_is_empty(value) for cells in self.rows for value in cells)


def _open(path: Path, limits: SheetLimits) -> list[_Grid]:
    """The sheets of an XLSX workbook, or the rows of a CSV file (one grid per delimiter tried), read within
    `limits` (`soc.compliance.sheet_files`): a file over one is refused with the reason."""
    suffix = path.suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        hint = " (old Excel 97–2003 format: open it in Excel and save as .xlsx)" if suffix == ".xls" else ""
        raise SheetError([f"{path.name}: not an .xlsx or .csv file{hint}"])
    if not path.is_file():
        raise SheetError([f"{path.name}: no such file"])
    try:
        sheets = read_xlsx(path, limits) if suffix == ".xlsx" else read_csv(path, limits)
    except WorkbookError as exc:
        raise SheetError(exc.problems) from None
    if not sheets:
        raise SheetError([f"{path.name}: contains no data"])
    return [_Grid(path.name, raw.title, raw.rows, raw.formulas, raw.errors, raw.merges) for raw in sheets]


# --- the header row --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Header:
    """A row read as a header: which column holds which field, and what was not recognised."""

    row: int
    columns: tuple[tuple[int, Column, str], ...]
    unknown: tuple[tuple[int, str], ...]
    ignored: tuple[int, ...]

    def fields(self) -> set[str]:
        return {column.key for _, column, _ in self.columns}

    def layout(self) -> tuple[tuple[int, str], ...]:
        known = [(col, column.key) for col, column, _ in self.columns]
        return tuple(sorted(known + [(col, "?" + _normalise(text)) for col, text in self.unknown]))


@dataclass(frozen=True)
class _Schema(Generic[RecordT]):
    """What one kind of spreadsheet holds."""

    what: str
    sheet: Sheet
    columns: tuple[Column, ...]
    model: type[RecordT]
    unique: str
    unique_what: str
    titles: tuple[str, str]
    check: Callable[[Mapping[str, object]], list[tuple[str, str]]]
    ignored: tuple[str, ...] = ()
    """Row-number and remark headers, ignored without a warning."""

    def index(self) -> dict[str, Column]:
        return {_normalise(alias): column for column in self.columns for alias in column.headers}

    def required(self) -> list[Column]:
        return [column for column in self.columns if column.required]


def _match_header(grid: _Grid, row: int, schema: _Schema[RecordT]) -> _Header:
    index = schema.index()
    ignored_words = {_normalise(text) for text in schema.ignored}
    columns, unknown, ignored = [], [], []
    cells = grid.rows[row - 1] if row <= len(grid.rows) else []
    for col, value in enumerate(cells, start=1):
        if _is_empty(value):
            continue
        text = str(value).strip()
        key = _normalise(text)
        if key in index:
            columns.append((col, index[key], text))
        elif key in ignored_words:
            ignored.append(col)
        else:
            unknown.append((col, text))
    return _Header(row, tuple(columns), tuple(unknown), tuple(ignored))


@dataclass(frozen=True)
class _Scan:
    """Where a grid's header is, or the best near miss."""

    grid: _Grid
    header: _Header | None
    near: _Header | None


def _scan(grid: _Grid, schema: _Schema[RecordT]) -> _Scan:
    required = {column.key for column in schema.required()}
    near: _Header | None = None
    for row in range(1, min(HEADER_SEARCH_ROWS, len(grid.rows)) + 1):
        header = _match_header(grid, row, schema)
        if required <= header.fields():
            return _Scan(grid, header, None)
        if len(header.fields()) >= 2 and (near is None or len(header.fields()) > len(near.fields())):
            near = header
    return _Scan(grid, None, near)


def _missing_columns(scan: _Scan, schema: _Schema[RecordT]) -> list[str]:
    grid = scan.grid
    if scan.near is None:
        expected = ", ".join(f"'{column.vietnamese[0]}'" for column in schema.required())
        return [
            f"{grid.where()}: no {schema.what} header in the first {HEADER_SEARCH_ROWS} rows "
            f"(expected at least the columns {expected})"
        ]
    near_by_key: dict[str, str] = {}
    for _col, text in scan.near.unknown:
        near = _near_column(text, schema)
        if near is not None:
            near_by_key.setdefault(near[0].key, text)
    return [
        f"{grid.where(scan.near.row)}: required column '{column.vietnamese[0]}' is missing"
        + (f" (the header '{_display(near_by_key[column.key])}' is close: did you mean '{column.vietnamese[0]}'?)"
           if column.key in near_by_key else "")
        + f" (accepted headers: {', '.join(repr(alias) for alias in column.headers)})"
        for column in schema.required()
        if column.key not in scan.near.fields()
    ]


def _header_problems(grid: _Grid, header: _Header) -> list[str]:
    problems = []
    for merge in grid.merges:
        if merge.min_row <= header.row <= merge.max_row:
            text = grid.cell(merge.min_row, merge.min_col)
            shown = f" ({_show(text)})" if not _is_empty(text) else ""
            problems.append(
                f"{grid.where(header.row)}: header cells {merge.ref} are merged{shown}; unmerge them so that "
                "every column has its own header in a single row"
            )
    first: dict[str, tuple[int, str]] = {}
    for col, column, text in header.columns:
        if column.key not in first:
            first[column.key] = (col, text)
            continue
        other_col, other = first[column.key]
        problems.append(
            f"{grid.where(header.row)}: columns '{_display(other)}' ({_column_letter(other_col)}) and "
            f"'{_display(text)}' ({_column_letter(col)}) both mean '{column.vietnamese[0]}'; keep only one"
        )
    return problems


NEAR_HEADER_CUTOFF: Final = 0.8
"""How alike (difflib ratio, folded text) an unknown header must be to a known one to be taken as a typo."""


def _near_column(text: str, schema: _Schema[RecordT]) -> tuple[Column, str] | None:
    """The known column an unknown header most probably means, and the header it resembles."""
    folded = _normalise(text)
    best: tuple[float, Column, str] | None = None
    for column in schema.columns:
        for alias in column.headers:
            known = _normalise(alias)
            ratio = difflib.SequenceMatcher(None, folded, known).ratio()
            extends = folded.startswith(known + " ") and len(known) >= 4  # "Approved level (1-5)"
            score = max(ratio, 0.9 if extends else 0.0)
            if score >= NEAR_HEADER_CUTOFF and (best is None or score > best[0]):
                best = (score, column, alias)
    return (best[1], best[2]) if best else None


def _unknown_headers(grid: _Grid, header: _Header, schema: _Schema[RecordT]) -> tuple[list[str], list[str]]:
    """Problems for unknown headers that look like a known column the file lacks (a typo would silently leave
    the column unread), and warnings for the other unknown headers."""
    problems, warnings_ = [], []
    have = header.fields()
    for col, text in header.unknown:
        place = f"{grid.where(header.row, text)} ({_column_letter(col)})"
        near = _near_column(text, schema)
        if near is None:
            warnings_.append(f"{place}: not a known column; ignored")
        elif near[0].key in have:
            warnings_.append(f"{place}: not a known column; ignored (it resembles '{near[1]}', which another "
                             "column already provides)")
        else:
            problems.append(f"{place}: not a known column (did you mean '{near[1]}'?); rename the header, or "
                            "the SOC can add it to its vocabulary file")
    return problems, warnings_


def _header_warnings(grid: _Grid, header: _Header) -> list[str]:
    found: list[str] = []
    headed = {col for col, _, _ in header.columns} | {col for col, _ in header.unknown} | set(header.ignored)
    stray = sorted(
        {
            col
            for cells in grid.rows[header.row :]
            for col, value in enumerate(cells, start=1)
            if col not in headed and not _is_empty(value)
        }
    )
    found += [f"{grid.where()}: column {_column_letter(col)} has values but no header; ignored" for col in stray]
    return found


def _select(grids: list[_Grid], schema: _Schema[RecordT], is_csv: bool) -> tuple[list[_Scan], list[str]]:
    """The grids to read (all with the same header layout), and warnings about the sheets ignored."""
    scans = [_scan(grid, schema) for grid in grids if not grid.is_empty()]
    if is_csv:
        scans = sorted(scans, key=lambda s: (s.header is None, -len(s.near.fields()) if s.near else 0))[:1]
    if not scans:
        raise SheetError([f"{grids[0].file}: contains no data"])
    found = [scan for scan in scans if scan.header is not None]
    if not found:
        raise SheetError([problem for scan in scans for problem in _missing_columns(scan, schema)])
    first = found[0]
    for other in found[1:]:
        if _layout(other) != _layout(first):
            raise SheetError(
                [
                    f"{first.grid.file}: sheets '{first.grid.sheet}' and '{other.grid.sheet}' both have a "
                    f"{schema.what} header but with different columns; keep the data on one sheet or give "
                    "both sheets the same columns"
                ]
            )
    ignored = [f"{scan.grid.where()}: no {schema.what} header; sheet ignored" for scan in scans if scan not in found]
    return found, ignored


_AS_OF_PHRASE: Final = re.compile(
    r"(?:so lieu |du lieu )?(?:tinh den|den|cap nhat den|as of|as at|data as of)(?: ngay)?\s*$"
    r"|(?:so lieu |du lieu )?(?:tinh den|den|cap nhat den|as of|as at|data as of)(?: ngay)? "
    r"([0-9]{1,2}) ([0-9]{1,2}) ([0-9]{4})\b")


def _title_date(grid: _Grid, row: int) -> tuple[date | None, str | None]:
    """A date stated in a title row: 'Số liệu tính đến ngày 30/11/2026', or a label cell then a date cell."""
    cells = grid.rows[row - 1] if row <= len(grid.rows) else []
    for col, value in enumerate(cells):
        if not isinstance(value, str):
            continue
        match = _AS_OF_PHRASE.search(_normalise(value))
        if match is None:
            continue
        if match[1]:
            day, month, year = int(match[1]), int(match[2]), int(match[3])
            try:
                return date(year, month, day), None
            except ValueError:
                return None, f"{grid.where(row)}: the title's date {_show(value)} is not a real date"
        following = next((c for c in cells[col + 1:] if not _is_empty(c)), None)
        if isinstance(following, date):
            return (following.date() if isinstance(following, datetime) else following), None
    return None, None


def _as_of(scans: Sequence[_Scan], parsed: _Parsed[RecordT]) -> date | None:
    """The one 'as of' date the file's title rows state (a problem when sheets state different ones)."""
    found: dict[date, str] = {}
    for scan in scans:
        if scan.header is None:
            continue
        for row in range(1, scan.header.row):
            day, problem = _title_date(scan.grid, row)
            if problem:
                parsed.problems.append(problem)
            if day is not None:
                found.setdefault(day, scan.grid.where(row))
                break
    if len(found) > 1:
        parsed.problems.append("the title rows state different 'as of' dates: " + "; ".join(
            f"{place}: {day:%d/%m/%Y}" for day, place in sorted(found.items())))
        return None
    return next(iter(found), None)


def _layout(scan: _Scan) -> tuple[tuple[int, str], ...]:
    return scan.header.layout() if scan.header else ()


# --- rows ----------------------------------------------------------------------------------------------


@dataclass
class _Parsed(Generic[RecordT]):
    """What the rows of the selected grids gave."""

    records: list[RecordT] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seen: dict[str, tuple[_Grid, int]] = field(default_factory=dict)
    unchecked: str | None = None
    """Where checking stopped (file, sheet and row) once `MAX_PROBLEMS` were found."""

    def listed(self) -> list[str]:
        """The problems, at most `MAX_PROBLEMS`, and where checking stopped if it did."""
        if self.unchecked is None and len(self.problems) <= MAX_PROBLEMS:
            return self.problems
        place = self.unchecked or "the rest of the file"
        return [*self.problems[:MAX_PROBLEMS],
                f"{place}: not checked, nor anything after it: only the first {MAX_PROBLEMS} problems are listed; "
                "correct them and import the file again"]


MAX_PROBLEMS: Final = 1000
"""Problems listed at most; past them the remaining rows are not checked (a wholly wrong or hostile file would
cost minutes of 'did you mean' suggestions, and nobody reads further)."""


def _data_merges(grid: _Grid, header: _Header) -> tuple[list[str], set[tuple[int, int]]]:
    """Problems for merged cells below the header in read columns, and the cells they hide."""
    read = {col: text for col, _, text in header.columns}
    problems, hidden = [], set()
    for merge in grid.merges:
        cols = [col for col in range(merge.min_col, merge.max_col + 1) if col in read]
        if merge.min_row <= header.row or not cols:
            continue
        problems.append(
            f"{grid.where(merge.min_row, read[cols[0]])}: cells {merge.ref} are merged; unmerge them and fill "
            "in the value on every row"
        )
        hidden |= {(row, col) for row in range(merge.min_row, merge.max_row + 1) for col in cols} - {
            (merge.min_row, merge.min_col)
        }
    return problems, hidden


_CELL_CONTROL: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""The control characters (Unicode Cc: C0, DEL, C1) a cell may not hold: all but tab and the line breaks of
Alt+Enter. NUL and most of C0 cannot even be written to a workbook; the others drive terminals."""


def _control_character(text: str) -> str | None:
    """The first control character of `text` a cell may not hold, as an escape (e.g. \\x07), else None."""
    found = _CELL_CONTROL.search(text)
    return f"\\x{ord(found[0]):02x}" if found else None


def _read_cell(grid: _Grid, row: int, col: int, column: Column, lookup: _Lookup) -> object:
    """One cell's parsed value (None when empty, False for an empty yes/no), or `_CellProblem`."""
    if (row, col) in grid.formulas:
        raise _CellProblem(
            f"contains a formula ({grid.formulas[(row, col)]}); replace it with its value (copy, then "
            "Paste Special → Values): a formula's saved result may be stale or missing"
        )
    value = grid.cell(row, col)
    if (row, col) in grid.errors:
        raise _CellProblem(f"contains the Excel error {value}; correct or clear the cell")
    if isinstance(value, str) and (control := _control_character(value)):
        raise _CellProblem(f"contains a control character ({control}); retype the cell without it (it is "
                           "invisible, often pasted from another program, and breaks the register's exports)")
    if _is_empty(value):
        if column.required:
            raise _CellProblem("a value is required")
        return False if column.kind == "bool" else None
    return _parse(column.kind, value, lookup)


def _build(schema: _Schema[RecordT], values: Mapping[str, object]) -> tuple[RecordT | None, list[tuple[str, str]]]:
    """The record from parsed values (None ones left to the model's defaults), or (key, message) problems."""
    data: dict[str, object] = {}
    nested: dict[str, dict[str, object]] = {}
    for key, value in values.items():
        head, _, tail = key.partition(".")
        if value is None:
            continue
        if tail:
            nested.setdefault(head, {})[tail] = value
        else:
            data[key] = value
    try:
        record = schema.model.model_validate(data | nested)
    except ValidationError as exc:
        return None, [(".".join(str(part) for part in error["loc"]), error["msg"]) for error in exc.errors()]
    return record, schema.check(values)


def _parse_row(
    grid: _Grid, header: _Header, row: int, hidden: set[tuple[int, int]], lookup: _Lookup
) -> tuple[dict[str, object], list[str]]:
    values: dict[str, object] = {}
    problems = []
    for col, column, text in header.columns:
        if (row, col) in hidden:
            continue
        try:
            values[column.key] = _read_cell(grid, row, col, column, lookup)
        except _CellProblem as exc:
            problems.append(f"{grid.where(row, text)}: {exc}")
    return values, problems


def _is_blank_row(grid: _Grid, header: _Header, row: int) -> bool:
    return all(_is_empty(grid.cell(row, col)) and (row, col) not in grid.formulas for col, _, _ in header.columns)


def _parse_grid(scan: _Scan, schema: _Schema[RecordT], lookup: _Lookup, parsed: _Parsed[RecordT]) -> None:
    grid, header = scan.grid, scan.header
    assert header is not None
    unknown_problems, unknown_warnings = _unknown_headers(grid, header, schema)
    parsed.warnings += unknown_warnings + _header_warnings(grid, header)
    header_problems = _header_problems(grid, header) + unknown_problems
    if header_problems:
        parsed.problems += header_problems
        return
    merge_problems, hidden = _data_merges(grid, header)
    parsed.problems += merge_problems
    headers = {column.key: text for _, column, text in header.columns}
    rows = [row for row in range(header.row + 1, len(grid.rows) + 1) if not _is_blank_row(grid, header, row)]
    if not rows:
        parsed.warnings.append(f"{grid.where()}: no data rows below the header (row {header.row})")
    for row in rows:
        if len(parsed.problems) >= MAX_PROBLEMS:
            parsed.unchecked = grid.where(row)
            return
        values, problems = _parse_row(grid, header, row, hidden, lookup)
        _check_unique(grid, row, values, headers, schema, parsed)
        if not problems and not any((row, col) in hidden for col, _, _ in header.columns):
            record, record_problems = _build(schema, values)
            problems = [_locate(grid, row, headers, key, message) for key, message in record_problems]
            if record is not None and not problems:
                parsed.records.append(record)
        parsed.problems += problems


def _locate(grid: _Grid, row: int, headers: Mapping[str, str], key: str, message: str) -> str:
    header = headers.get(key) or headers.get(key.partition(".")[0])
    return f"{grid.where(row, header)}: {message}"


def _check_unique(
    grid: _Grid,
    row: int,
    values: Mapping[str, object],
    headers: Mapping[str, str],
    schema: _Schema[RecordT],
    parsed: _Parsed[RecordT],
) -> None:
    value = values.get(schema.unique)
    if not isinstance(value, str):
        return
    key = value.casefold()
    if key not in parsed.seen:
        parsed.seen[key] = (grid, row)
        return
    first_grid, first_row = parsed.seen[key]
    place = f"row {first_row}" if first_grid is grid else f"{first_grid.sheet_name()} row {first_row}"
    parsed.problems.append(
        f"{grid.where(row, headers[schema.unique])}: {schema.unique_what} '{value}' is already used in {place}"
    )


def _read(path: Path, agencies: Mapping[str, str], schema: _Schema[RecordT],
          vocabulary: Vocabulary, limits: SheetLimits | None) -> SheetResult[RecordT]:
    schema = replace(schema, columns=columns_for(schema.sheet, vocabulary), ignored=vocabulary.ignored_headers)
    grids = _open(path, limits or SheetLimits())
    scans, ignored = _select(grids, schema, is_csv=path.suffix.lower() == ".csv")
    parsed: _Parsed[RecordT] = _Parsed(warnings=ignored)
    index = _Lookup.build(agencies, vocabulary)
    for scan in scans:
        if parsed.unchecked is None:
            _parse_grid(scan, schema, index, parsed)
    as_of = _as_of(scans, parsed)
    if parsed.problems:
        raise SheetError(parsed.listed())
    columns = frozenset(key for scan in scans if scan.header for key in scan.header.fields())
    return SheetResult(parsed.records, parsed.warnings, columns, as_of)


# --- writing -------------------------------------------------------------------------------------------


def _format(column: Column, value: object, lookup: _Lookup, english: bool) -> CellValue:
    """A record value as written in a cell: stored text is evidence from outside, so its control, bidi and
    invisible characters are written as visible escapes (`\\x1b`; line feeds and tabs kept). XLSX cannot
    hold most C0 controls at all (openpyxl's IllegalCharacterError), and CSV is often read with `cat`."""
    cell = _cell_value(column, value, lookup, english)
    return visible(cell, multiline=True) if isinstance(cell, str) else cell


def _cell_value(column: Column, value: object, lookup: _Lookup, english: bool) -> CellValue:
    if value is None:
        return None
    if column.kind in _CHOICES:
        choice = str(value.value) if isinstance(value, Enum) else str(value).lower()
        words = lookup.vocabulary.value(column.kind, choice)  # type: ignore[arg-type]  # kind is a ValueKind
        written = words.en if english else words.vi
        return written[0] if written else choice
    if column.kind == "agency":
        return lookup.label(str(value))
    if isinstance(value, str | int | date):
        return value
    return str(value)


def _get(record: BaseModel, key: str) -> object:
    value: object = record
    for part in key.split("."):
        value = getattr(value, part)
    return value


def _check_records(path: Path, records: Sequence[RecordT], lookup: _Lookup, schema: _Schema[RecordT]) -> list[str]:
    problems = []
    seen: dict[str, int] = {}
    for number, record in enumerate(records, start=1):
        agency = str(_get(record, "agency"))
        if agency not in lookup.names:
            problems.append(f"{path.name}: record {number}: agency '{agency}' is not a known agency")
        key = str(_get(record, schema.unique)).casefold()
        if key in seen:
            problems.append(
                f"{path.name}: record {number}: {schema.unique_what} '{_get(record, schema.unique)}' is already "
                f"used by record {seen[key]}"
            )
        seen.setdefault(key, number)
    return problems


def _write_xlsx(path: Path, title: str, rows: Sequence[Sequence[CellValue]]) -> None:
    import openpyxl  # type: ignore[import-untyped]
    from openpyxl.styles import Font  # type: ignore[import-untyped]

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = title
    for row in rows:
        sheet.append(list(row))
    for cells in sheet.iter_rows():
        for cell in cells:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # text such as '=…' or '#N/A' stays text, never a formula or error
            elif isinstance(cell.value, date):
                cell.number_format = "DD/MM/YYYY"
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        sheet.column_dimensions[cell.column_letter].width = max(12, min(40, len(str(cell.value)) + 4))
    sheet.freeze_panes = "A2"
    workbook.save(path)


def _write_csv(path: Path, rows: Sequence[Sequence[CellValue]]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        for row in rows:
            writer.writerow(_csv_text(value) for value in row)


def _csv_text(value: CellValue) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    text = str(value)
    return neutralise_formula(text) if isinstance(value, str) else text


def _write(
    path: Path, records: Sequence[RecordT], agencies: Mapping[str, str], schema: _Schema[RecordT], english: bool
) -> None:
    suffix = path.suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        raise SheetError([f"{path.name}: can only write .xlsx or .csv files"])
    index = _Lookup.build(agencies)
    problems = _check_records(path, records, index, schema)
    if problems:
        raise SheetError(problems)
    rows: list[list[CellValue]] = [[column.header(english) for column in schema.columns]]
    rows += [[_format(c, _get(record, c.key), index, english) for c in schema.columns] for record in records]
    title = schema.titles[1] if english else schema.titles[0]
    if suffix == ".xlsx":
        atomic_write(path, lambda tmp: _write_xlsx(tmp, title, rows), suffix=path.suffix, new_mode=0o644)
    else:
        atomic_write(path, lambda tmp: _write_csv(tmp, rows), suffix=path.suffix, new_mode=0o644)


# --- the two spreadsheets ------------------------------------------------------------------------------


def _system_checks(values: Mapping[str, object]) -> list[tuple[str, str]]:
    if values.get("status") is ApprovalStatus.APPROVED and "approved_level" in values \
            and values["approved_level"] is None:
        return [("approved_level", "the status is approved but the approved level is blank; write the level, or "
                 "change the status if the approval was withdrawn (a blank level clears the stored one)")]
    return []


def _coverage_checks(values: Mapping[str, object]) -> list[tuple[str, str]]:
    total, protected, reporting = (values.get(key) for key in ("total_computers", "protected", "reporting_to_ncsc"))
    problems = []
    if isinstance(total, int) and isinstance(protected, int) and protected > total:
        problems.append(("protected", f"{protected} protected computers is more than the total of {total}"))
    if isinstance(protected, int) and isinstance(reporting, int) and reporting > protected:
        problems.append(
            ("reporting_to_ncsc", f"{reporting} computers reporting to NCSC is more than the {protected} protected")
        )
    return problems


_SYSTEMS: Final = _Schema(
    "information-system register",
    "systems",
    SYSTEM_COLUMNS,
    SystemRecord,
    "id",
    "system id",
    ("Danh mục HTTT", "Systems"),
    _system_checks,
)
_COVERAGE: Final = _Schema(
    "anti-malware coverage",
    "coverage",
    COVERAGE_COLUMNS,
    CoverageRecord,
    "agency",
    "agency",
    ("Phòng chống mã độc", "Anti-malware coverage"),
    _coverage_checks,
)


def read_systems(path: Path, agencies: Mapping[str, str], vocabulary: Vocabulary = BASE_VOCABULARY,
                 limits: SheetLimits | None = None) -> SheetResult[SystemRecord]:
    """Read a register of information systems (XLSX or CSV); `agencies` maps id → name; `SheetError` on any
    problem, or when the file is over `limits` (default: `SheetLimits()`)."""
    return _read(path, agencies, _SYSTEMS, vocabulary, limits)


def read_coverage(path: Path, agencies: Mapping[str, str], vocabulary: Vocabulary = BASE_VOCABULARY,
                  limits: SheetLimits | None = None) -> SheetResult[CoverageRecord]:
    """Read an anti-malware coverage sheet (XLSX or CSV); `agencies` maps id → name; `SheetError` on any
    problem, or when the file is over `limits` (default: `SheetLimits()`)."""
    return _read(path, agencies, _COVERAGE, vocabulary, limits)


def write_systems(
    path: Path, records: Sequence[SystemRecord], agencies: Mapping[str, str], *, english: bool = False
) -> None:
    """Write a register as XLSX or CSV (by extension), Vietnamese headers and values unless `english`, atomically."""
    _write(path, records, agencies, _SYSTEMS, english)


def write_coverage(
    path: Path, records: Sequence[CoverageRecord], agencies: Mapping[str, str], *, english: bool = False
) -> None:
    """Write a coverage sheet as XLSX or CSV (by extension), Vietnamese unless `english`, atomically."""
    _write(path, records, agencies, _COVERAGE, english)


__all__ = [
    "BOOLEAN_LABELS",
    "COVERAGE_COLUMNS",
    "ENVIRONMENT_LABELS",
    "HEADER_SEARCH_ROWS",
    "IGNORED_HEADERS",
    "REQUIREMENT_LABELS",
    "STATUS_LABELS",
    "SYSTEM_COLUMNS",
    "Column",
    "Labels",
    "SheetError",
    "SheetResult",
    "read_coverage",
    "read_systems",
    "write_coverage",
    "write_systems",
]
