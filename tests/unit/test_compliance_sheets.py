"""Register and coverage spreadsheets as agencies send them: tolerant reading, every problem listed, round trips."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path

import openpyxl  # type: ignore[import-untyped]
import pytest

from soc.compliance.models import (
    ApprovalStatus,
    CoverageRecord,
    Environment,
    ProtectionLayers,
    RequirementStatus,
    SystemRecord,
)
from soc.compliance.sheets import (
    COVERAGE_COLUMNS,
    SYSTEM_COLUMNS,
    SheetError,
    read_coverage,
    read_systems,
    write_coverage,
    write_systems,
)

AGENCIES = {
    "stttt": "Sở Thông tin và Truyền thông",
    "syt": "Sở Y tế",
    "ubnd-bienhoa": "UBND thành phố Biên Hòa",
}
TITLE = "DANH MỤC HỆ THỐNG THÔNG TIN CỦA SỞ THÔNG TIN VÀ TRUYỀN THÔNG"

# Headers as agencies type them: upper case, no diacritics, double spaces, Alt+Enter, '(*)', other dashes.
VI_HEADER = [
    "STT",
    "MÃ HỆ THỐNG (*)",
    "Tên hệ thống  thông tin",
    "cơ quan chủ quản",
    "Cap do de xuat",
    "Cấp độ\nđược phê duyệt",
    "Tình trạng phê duyệt (*)",
    "Số quyết định",
    "Ngày phê duyệt",
    "Cơ quan phê duyệt",
    "Đang vận hành",
    "Môi trường",
    "Dịch vụ công",
    "Đáp ứng yêu cầu",
    "Ngày đánh giá",
    "Ngày đánh giá lại",
    "Căn cứ pháp lý",
    "Lớp 1 - Tại chỗ",
    "Lớp 2: Giám sát",
    "lớp 3 – kiểm tra độc lập",
    "LỚP 4 - KẾT NỐI NCSC",
    "Ghi chú nội bộ",
]
VI_ROWS = [
    [
        "=ROW()-4",  # the row-number column is never read, so its formula does not matter
        "HT-01",
        "Cổng dịch vụ công tỉnh",
        "stttt",
        "Cấp độ 3",
        3.0,
        "Đã phê duyệt",
        "123/QĐ-UBND",
        datetime(2024, 3, 15),
        "UBND tỉnh Đồng Nai",
        "Có",
        "Sản xuất",
        "x",
        "Đáp ứng",
        "05/04/2024",
        "05/04/2026",
        "nd85-2016",
        "x",
        "X",
        None,
        "x",
        "ghi chú",
    ],
    [
        2,
        "HT-02",
        "Hệ thống quản lý văn bản và điều hành",
        "sở y tế",
        "III",
        None,
        "Da trinh",
        None,
        None,
        None,
        "không",
        "Thử nghiệm có dữ liệu thật",
        None,
        "Đáp ứng một phần",
        "1/2/2024",
        None,
        None,
    ],
    [],
    [3, "HT-03", "Phần mềm một cửa điện tử", "UBND Thành phố Biên Hoà", 2, None, "Chưa triển khai"],
]
VI_EXPECTED = [
    SystemRecord(
        id="HT-01",
        name="Cổng dịch vụ công tỉnh",
        agency="stttt",
        proposed_level=3,
        approved_level=3,
        status=ApprovalStatus.APPROVED,
        decision_number="123/QĐ-UBND",
        decision_date=date(2024, 3, 15),
        approving_authority="UBND tỉnh Đồng Nai",
        in_operation=True,
        environment=Environment.PRODUCTION,
        handles_admin_procedures=True,
        requirements=RequirementStatus.MET,
        requirements_assessed=date(2024, 4, 5),
        next_reassessment=date(2026, 4, 5),
        legal_basis="nd85-2016",
        layers=ProtectionLayers(on_site_team=True, monitoring=True, inspection=False, ncsc_connected=True),
    ),
    SystemRecord(
        id="HT-02",
        name="Hệ thống quản lý văn bản và điều hành",
        agency="syt",
        proposed_level=3,
        status=ApprovalStatus.SUBMITTED,
        environment=Environment.TEST_REAL_DATA,
        requirements=RequirementStatus.PARTLY,
        requirements_assessed=date(2024, 2, 1),
    ),
    SystemRecord(
        id="HT-03",
        name="Phần mềm một cửa điện tử",
        agency="ubnd-bienhoa",
        proposed_level=2,
        status=ApprovalStatus.NOT_STARTED,
    ),
]

MINIMAL_HEADER = ["STT", "Mã hệ thống", "Tên hệ thống", "Cơ quan chủ quản", "Cấp độ được phê duyệt", "Trạng thái"]


def build_xlsx(
    path: Path,
    sheets: Mapping[str, Sequence[Sequence[object]]],
    merges: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    """A workbook with the given sheets (rows from row 1) and merged ranges."""
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
        for ref in (merges or {}).get(title, []):
            sheet.merge_cells(ref)
    workbook.save(path)
    return path


def register(path: Path, header: Sequence[object], rows: Sequence[Sequence[object]], sheet: str = "HTTT") -> Path:
    """A register the usual way: merged title, subtitle, blank row, header on row 4, data from row 5."""
    title_rows: list[Sequence[object]] = [[TITLE], ["(Kèm theo Công văn số 123/STTTT-CNTT ngày 05/03/2025)"], []]
    return build_xlsx(path, {sheet: [*title_rows, header, *rows]}, {sheet: ["A1:V1", "A2:V2"]})


def problems_of(excinfo: pytest.ExceptionInfo[SheetError]) -> list[str]:
    return excinfo.value.problems


# --- column definitions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("columns", [SYSTEM_COLUMNS, COVERAGE_COLUMNS])
def test_aliases_are_unambiguous_after_folding(columns: tuple[object, ...]) -> None:
    from soc.compliance.sheets import _normalise

    folded = [_normalise(alias) for column in columns for alias in column.headers]  # type: ignore[attr-defined]
    assert len(folded) == len(set(folded))


def test_every_system_field_has_a_column() -> None:
    keys = {column.key.partition(".")[0] for column in SYSTEM_COLUMNS}
    assert keys == set(SystemRecord.model_fields)
    layers = {column.key.partition(".")[2] for column in SYSTEM_COLUMNS if column.key.startswith("layers.")}
    assert layers == set(ProtectionLayers.model_fields)


# --- good registers ----------------------------------------------------------------------------------------


def test_vietnamese_register_with_title_rows_and_varied_headers(tmp_path: Path) -> None:
    path = build_xlsx(
        tmp_path / "heThong.xlsx",
        {"HTTT": [[TITLE], [], [], VI_HEADER, *VI_ROWS], "Sheet2": []},
        {"HTTT": ["A1:V1"]},
    )
    result = read_systems(path, AGENCIES)
    assert result.records == VI_EXPECTED
    assert result.warnings == [
        "heThong.xlsx: sheet 'HTTT' row 4, column 'Ghi chú nội bộ' (V): not a known column; ignored"
    ]


def test_english_register(tmp_path: Path) -> None:
    header = [
        "System ID",
        "System name",
        "Owner",
        "Approved level",
        "STATUS",
        "Decision date",
        "In operation",
        "Requirements met",
        "NCSC connection",
        "Environment",
    ]
    rows: list[list[object]] = [
        [
            "HT-01",
            "Provincial public-service portal",
            "stttt",
            3,
            "approved",
            "2024-03-15",
            "Yes",
            "met",
            "1",
            "production",
        ],
        ["HT-02", "Hospital information system", "Sở Y tế", None, "dossier_drafted", None, "no", "not met", "0", None],
    ]
    result = read_systems(build_xlsx(tmp_path / "systems.xlsx", {"Systems": [header, *rows]}), AGENCIES)
    assert result.warnings == []
    first, second = result.records
    assert (first.approved_level, first.status, first.decision_date) == (3, ApprovalStatus.APPROVED, date(2024, 3, 15))
    assert first.in_operation and first.layers.ncsc_connected and first.requirements == RequirementStatus.MET
    assert (second.agency, second.status, second.requirements) == (
        "syt",
        ApprovalStatus.DOSSIER_DRAFTED,
        RequirementStatus.NOT_MET,
    )
    assert not second.in_operation and second.environment == Environment.PRODUCTION


def test_csv_with_bom_and_semicolons(tmp_path: Path) -> None:
    text = (
        "DANH MỤC HỆ THỐNG THÔNG TIN;;;;;\n"
        "STT;Mã HTTT;Tên hệ thống;Đơn vị chủ quản;Cấp độ phê duyệt;Trạng thái;Ngày quyết định\n"
        '1;HT-01;"Cổng thông tin; điện tử";Sở Thông tin và Truyền thông;Cấp độ 2;Đã phê duyệt;03/04/2024\n'
        ";;;;;;\n"
        "2;HT-02;Hệ thống thư điện tử;syt;;Không phê duyệt;\n"
    )
    path = tmp_path / "he_thong.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    records = read_systems(path, AGENCIES).records
    assert [r.id for r in records] == ["HT-01", "HT-02"]
    assert records[0].name == "Cổng thông tin; điện tử"
    assert records[0].decision_date == date(2024, 4, 3)  # 03/04 is the 3rd of April, never March 4th
    assert records[0].approved_level == 2
    assert records[1].status == ApprovalStatus.REJECTED


def test_csv_with_commas_and_no_bom(tmp_path: Path) -> None:
    path = tmp_path / "systems.csv"
    path.write_text("ID,Name,Agency,Status\nHT-9,Mail,stttt,submitted\n", encoding="utf-8")
    assert read_systems(path, AGENCIES).records == [
        SystemRecord(id="HT-9", name="Mail", agency="stttt", status=ApprovalStatus.SUBMITTED)
    ]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("Chưa triển khai", ApprovalStatus.NOT_STARTED),
        ("not started", ApprovalStatus.NOT_STARTED),
        ("Đang lập hồ sơ", ApprovalStatus.DOSSIER_DRAFTED),
        ("ĐÃ LẬP HỒ SƠ", ApprovalStatus.DOSSIER_DRAFTED),
        ("Đã gửi thẩm định", ApprovalStatus.SUBMITTED),
        ("Đã thẩm định", ApprovalStatus.APPRAISED),
        ("appraised", ApprovalStatus.APPRAISED),
        ("da phe duyet", ApprovalStatus.APPROVED),
        ("Từ chối", ApprovalStatus.REJECTED),
        ("rejected", ApprovalStatus.REJECTED),
        ("Đang xây dựng hồ sơ đề xuất cấp độ", ApprovalStatus.DOSSIER_DRAFTED),
        ("Chờ thẩm định", ApprovalStatus.SUBMITTED),
        ("Đang thẩm định", ApprovalStatus.UNDER_APPRAISAL),
        ("under review", ApprovalStatus.UNDER_APPRAISAL),
        ("Đã thẩm định, chờ phê duyệt", ApprovalStatus.APPRAISED),
        ("Đã được phê duyệt", ApprovalStatus.APPROVED),
        ("Yêu cầu bổ sung hồ sơ", ApprovalStatus.RETURNED),
        ("Returned for revision", ApprovalStatus.RETURNED),
        ("Không được phê duyệt", ApprovalStatus.REJECTED),
        ("refused", ApprovalStatus.REJECTED),
    ],
)
def test_status_words(tmp_path: Path, cell: str, expected: ApprovalStatus) -> None:
    level = 3 if expected is ApprovalStatus.APPROVED else None
    path = register(tmp_path / "s.xlsx", MINIMAL_HEADER, [[1, "HT-1", "Hệ thống", "stttt", level, cell]])
    assert read_systems(path, AGENCIES).records[0].status == expected


@pytest.mark.parametrize(
    ("cell", "expected"),
    [(1, 1), (5.0, 5), ("4", 4), ("Cấp độ 3", 3), ("cap do 2", 2), ("Cấp 1", 1), ("IV", 4), ("Cấp độ V", 5)],
)
def test_level_forms(tmp_path: Path, cell: object, expected: int) -> None:
    path = register(tmp_path / "l.xlsx", MINIMAL_HEADER, [[1, "HT-1", "Hệ thống", "stttt", cell, "Đã phê duyệt"]])
    assert read_systems(path, AGENCIES).records[0].approved_level == expected


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("25/12/2024", date(2024, 12, 25)),
        ("5/1/2024", date(2024, 1, 5)),
        ("05-01-2024", date(2024, 1, 5)),
        ("05.01.2024", date(2024, 1, 5)),
        ("2024-01-05", date(2024, 1, 5)),
        (datetime(2024, 1, 5), date(2024, 1, 5)),
        (date(2024, 1, 5), date(2024, 1, 5)),
    ],
)
def test_date_forms(tmp_path: Path, cell: object, expected: date) -> None:
    header = [*MINIMAL_HEADER, "Ngày quyết định"]
    path = register(tmp_path / "d.xlsx", header, [[1, "HT-1", "Hệ thống", "stttt", 3, "Đã phê duyệt", cell]])
    assert read_systems(path, AGENCIES).records[0].decision_date == expected


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("Có", True), ("co", True), ("x", True), ("Yes", True), (1, True), ("TRUE", True), (True, True),
     ("Không", False), ("", False), (None, False), ("No", False), (0, False), ("false", False)],
)  # fmt: skip
def test_yes_no_forms(tmp_path: Path, cell: object, expected: bool) -> None:
    header = [*MINIMAL_HEADER, "Đang vận hành"]
    path = register(tmp_path / "b.xlsx", header, [[1, "HT-1", "Hệ thống", "stttt", 3, "Đã phê duyệt", cell]])
    assert read_systems(path, AGENCIES).records[0].in_operation is expected


def test_empty_trailing_sheet_and_instruction_sheet(tmp_path: Path) -> None:
    rows: list[Sequence[object]] = [MINIMAL_HEADER, [1, "HT-1", "Hệ thống", "stttt", 3, "Đã phê duyệt"]]
    path = build_xlsx(
        tmp_path / "w.xlsx",
        {"Hướng dẫn": [["Điền mỗi hệ thống trên một dòng"]], "HTTT": rows, "Sheet1": [], "Sheet2": [[None, "  "]]},
    )
    result = read_systems(path, AGENCIES)
    assert [r.id for r in result.records] == ["HT-1"]
    assert result.warnings == ["w.xlsx: sheet 'Hướng dẫn': no information-system register header; sheet ignored"]


def test_sheets_with_identical_layout_are_both_read(tmp_path: Path) -> None:
    path = build_xlsx(
        tmp_path / "w.xlsx",
        {
            "Khối sở": [MINIMAL_HEADER, [1, "HT-1", "Hệ thống 1", "stttt", 3, "Đã phê duyệt"]],
            "Khối huyện": [MINIMAL_HEADER, [1, "HT-2", "Hệ thống 2", "ubnd-bienhoa", 2, "Đã trình"]],
        },
    )
    assert [r.id for r in read_systems(path, AGENCIES).records] == ["HT-1", "HT-2"]


# --- broken registers: every problem, by row and column, nothing returned -------------------------------------


def test_missing_required_column(tmp_path: Path) -> None:
    header = ["STT", "Mã hệ thống", "Tên hệ thống", "Cơ quan chủ quản", "Cấp độ được phê duyệt"]
    path = register(tmp_path / "heThong.xlsx", header, [[1, "HT-1", "Hệ thống", "stttt", 3]])
    with pytest.raises(SheetError) as excinfo:
        read_systems(path, AGENCIES)
    assert problems_of(excinfo) == [
        "heThong.xlsx: sheet 'HTTT' row 4: required column 'Trạng thái' is missing "
        "(accepted headers: 'Trạng thái', 'Tình trạng phê duyệt', 'Tình trạng', 'Trạng thái phê duyệt', "
        "'Tình trạng hồ sơ', 'Tiến độ phê duyệt', 'Status', 'Approval status', 'State')"
    ]


def test_no_header_at_all(tmp_path: Path) -> None:
    path = build_xlsx(tmp_path / "x.xlsx", {"Data": [["a", "b"], [1, 2]]})
    with pytest.raises(SheetError, match=r"x.xlsx: sheet 'Data': no information-system register header in the first"):
        read_systems(path, AGENCIES)


def test_unknown_agency(tmp_path: Path) -> None:
    rows: list[list[object]] = [[1, "HT-1", "Hệ thống", "Sở Ngoại vụ", 3, "Đã phê duyệt"]]
    path = register(tmp_path / "heThong.xlsx", MINIMAL_HEADER, rows)
    with pytest.raises(SheetError) as excinfo:
        read_systems(path, AGENCIES)
    assert problems_of(excinfo) == [
        "heThong.xlsx: sheet 'HTTT' row 5, column 'Cơ quan chủ quản': 'Sở Ngoại vụ' is not a known agency "
        "(write its id or its name as in the inventory)"
    ]


def test_level_7_message_names_file_sheet_row_and_column(tmp_path: Path) -> None:
    rows: list[list[object]] = [
        [1, "HT-1", "Hệ thống 1", "stttt", 3, "Đã phê duyệt"],
        [2, "HT-2", "Hệ thống 2", "stttt", 2, "Đã phê duyệt"],
        [3, "HT-3", "Hệ thống 3", "stttt", 7, "Đã phê duyệt"],
    ]
    with pytest.raises(SheetError) as excinfo:
        read_systems(register(tmp_path / "heThong.xlsx", MINIMAL_HEADER, rows), AGENCIES)
    assert problems_of(excinfo) == [
        "heThong.xlsx: sheet 'HTTT' row 7, column 'Cấp độ được phê duyệt': 7 is not a level 1–5"
    ]


def test_impossible_date(tmp_path: Path) -> None:
    header = [*MINIMAL_HEADER, "Ngày phê duyệt"]
    path = register(tmp_path / "h.xlsx", header, [[1, "HT-1", "Hệ thống", "stttt", 3, "Đã phê duyệt", "31/02/2024"]])
    with pytest.raises(SheetError) as excinfo:
        read_systems(path, AGENCIES)
    assert problems_of(excinfo) == [
        "h.xlsx: sheet 'HTTT' row 5, column 'Ngày phê duyệt': '31/02/2024' is not a real date "
        "(dates are read as dd/mm/yyyy)"
    ]


def test_month_first_date_is_not_guessed(tmp_path: Path) -> None:
    header = [*MINIMAL_HEADER, "Ngày phê duyệt"]
    path = register(tmp_path / "h.xlsx", header, [[1, "HT-1", "Hệ thống", "stttt", 3, "Đã phê duyệt", "12/31/2024"]])
    with pytest.raises(SheetError, match=r"'12/31/2024' is not a real date"):
        read_systems(path, AGENCIES)


def test_duplicated_system_id_names_both_rows(tmp_path: Path) -> None:
    rows: list[list[object]] = [
        [1, "HT-1", "Hệ thống 1", "stttt", 3, "Đã phê duyệt"],
        [2, "HT-2", "Hệ thống 2", "stttt", 3, "Đã phê duyệt"],
        [3, "ht-1", "Hệ thống 3", "syt", 3, "Đã phê duyệt"],
    ]
    with pytest.raises(SheetError) as excinfo:
        read_systems(register(tmp_path / "h.xlsx", MINIMAL_HEADER, rows), AGENCIES)
    assert problems_of(excinfo) == [
        "h.xlsx: sheet 'HTTT' row 7, column 'Mã hệ thống': system id 'ht-1' is already used in row 5"
    ]


def test_duplicated_id_across_sheets(tmp_path: Path) -> None:
    row: list[object] = [1, "HT-1", "Hệ thống", "stttt", 3, "Đã phê duyệt"]
    path = build_xlsx(tmp_path / "w.xlsx", {"A": [MINIMAL_HEADER, row], "B": [MINIMAL_HEADER, row]})
    with pytest.raises(SheetError) as excinfo:
        read_systems(path, AGENCIES)
    assert problems_of(excinfo) == [
        "w.xlsx: sheet 'B' row 2, column 'Mã hệ thống': system id 'HT-1' is already used in sheet 'A' row 2"
    ]


def test_formula_cell_is_rejected(tmp_path: Path) -> None:
    rows: list[list[object]] = [[1, "HT-1", "Hệ thống", "stttt", "=2+1", "Đã phê duyệt"]]
    with pytest.raises(SheetError) as excinfo:
        read_systems(register(tmp_path / "h.xlsx", MINIMAL_HEADER, rows), AGENCIES)
    (problem,) = problems_of(excinfo)
    assert problem.startswith("h.xlsx: sheet 'HTTT' row 5, column 'Cấp độ được phê duyệt': contains a formula (=2+1)")
    assert "Paste Special → Values" in problem


def test_header_spanning_two_columns(tmp_path: Path) -> None:
    header: list[object] = ["Mã hệ thống", "Tên hệ thống", None, "Cơ quan chủ quản", "Trạng thái"]
    path = build_xlsx(
        tmp_path / "h.xlsx",
        {"HTTT": [header, ["HT-1", "Cổng", "thông tin", "stttt", "Đã trình"]]},
        {"HTTT": ["B1:C1"]},
    )
    with pytest.raises(SheetError) as excinfo:
        read_systems(path, AGENCIES)
    assert problems_of(excinfo) == [
        "h.xlsx: sheet 'HTTT' row 1: header cells B1:C1 are merged ('Tên hệ thống'); unmerge them so that every "
        "column has its own header in a single row"
    ]


def test_two_row_header_with_group_cell(tmp_path: Path) -> None:
    top: list[object] = ["Mã hệ thống", "Tên hệ thống", "Cơ quan chủ quản", "Trạng thái", "Mô hình 4 lớp"]
    below: list[object] = [None, None, None, None, "Lớp 1 - Tại chỗ", "Lớp 2 - Giám sát"]
    path = build_xlsx(
        tmp_path / "h.xlsx",
        {"HTTT": [top, below, ["HT-1", "Cổng", "stttt", "Đã trình", "x", "x"]]},
        {"HTTT": ["A1:A2", "B1:B2", "C1:C2", "D1:D2", "E1:F1"]},
    )
    with pytest.raises(SheetError) as excinfo:
        read_systems(path, AGENCIES)
    problems = problems_of(excinfo)
    assert len(problems) == 5
    assert all("unmerge" in p for p in problems)
    assert any("header cells E1:F1 are merged ('Mô hình 4 lớp')" in p for p in problems)


def test_merged_cells_in_data_rows(tmp_path: Path) -> None:
    rows: list[list[object]] = [
        [1, "HT-1", "Hệ thống 1", "stttt", 3, "Đã phê duyệt"],
        [2, "HT-2", "Hệ thống 2", None, 3, "Đã phê duyệt"],
    ]
    path = build_xlsx(tmp_path / "h.xlsx", {"HTTT": [MINIMAL_HEADER, *rows]}, {"HTTT": ["D2:D3"]})
    with pytest.raises(SheetError) as excinfo:
        read_systems(path, AGENCIES)
    assert problems_of(excinfo) == [
        "h.xlsx: sheet 'HTTT' row 2, column 'Cơ quan chủ quản': cells D2:D3 are merged; unmerge them and fill in "
        "the value on every row"
    ]


def test_several_errors_are_all_listed(tmp_path: Path) -> None:
    header = [*MINIMAL_HEADER, "Ngày phê duyệt", "Đang vận hành", "Môi trường"]
    rows: list[list[object]] = [
        [1, "HT-1", "Hệ thống 1", "Sở Nội vụ", 7, "Đã phê duyệt", "31/02/2024", "Có", "Sản xuất"],
        [2, "HT-2", None, "stttt", 3, "đã xong", "15/03/2024", "có lẽ", "Sản xuất"],
        [3, "HT-1", "Hệ thống 3", "syt", 2, "Đã trình", 45000, "Không", "Thử nghiệm"],
    ]
    with pytest.raises(SheetError) as excinfo:
        read_systems(register(tmp_path / "heThong.xlsx", header, rows), AGENCIES)
    where = "heThong.xlsx: sheet 'HTTT'"
    problems = problems_of(excinfo)
    assert problems[:4] == [
        f"{where} row 5, column 'Cơ quan chủ quản': 'Sở Nội vụ' is not a known agency "
        "(write its id or its name as in the inventory)",
        f"{where} row 5, column 'Cấp độ được phê duyệt': 7 is not a level 1–5",
        f"{where} row 5, column 'Ngày phê duyệt': '31/02/2024' is not a real date (dates are read as dd/mm/yyyy)",
        f"{where} row 6, column 'Tên hệ thống': a value is required",
    ]
    assert problems[4].startswith(f"{where} row 6, column 'Trạng thái': 'đã xong' is not a known status (accepted: ")
    assert problems[5].startswith(f"{where} row 6, column 'Đang vận hành': 'có lẽ' is not a known yes/no value")
    assert problems[6:] == [
        f"{where} row 7, column 'Mã hệ thống': system id 'HT-1' is already used in row 5",
        f"{where} row 7, column 'Ngày phê duyệt': 45000 is a number, not a date "
        "(format the cell as a date or write dd/mm/yyyy)",
        f"{where} row 7, column 'Môi trường': 'Thử nghiệm' is not a known environment (accepted: 'Sản xuất', "
        "'Production', 'Thử nghiệm có dữ liệu thật', 'Test with real data', and their usual variants; the SOC "
        "can add words in its vocabulary file)",
    ]


def test_two_columns_for_the_same_field(tmp_path: Path) -> None:
    header = ["Mã hệ thống", "ID", "Tên hệ thống", "Cơ quan chủ quản", "Trạng thái"]
    path = build_xlsx(tmp_path / "h.xlsx", {"HTTT": [header, ["HT-1", "1", "Cổng", "stttt", "Đã trình"]]})
    with pytest.raises(SheetError) as excinfo:
        read_systems(path, AGENCIES)
    assert problems_of(excinfo) == [
        "h.xlsx: sheet 'HTTT' row 1: columns 'Mã hệ thống' (A) and 'ID' (B) both mean 'Mã hệ thống'; keep only one"
    ]


def test_sheets_with_different_layouts_are_ambiguous(tmp_path: Path) -> None:
    other = ["Mã hệ thống", "Tên hệ thống", "Cơ quan chủ quản", "Trạng thái"]
    path = build_xlsx(
        tmp_path / "w.xlsx",
        {
            "2024": [MINIMAL_HEADER, [1, "HT-1", "A", "stttt", 3, "Đã trình"]],
            "2025": [other, ["HT-2", "B", "syt", "Đã trình"]],
        },
    )
    with pytest.raises(SheetError, match=r"sheets '2024' and '2025' both have .* header but with different columns"):
        read_systems(path, AGENCIES)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("he_thong.xls", b"\xd0\xcf\x11\xe0", r"he_thong.xls: not an .xlsx or .csv file \(old Excel 97–2003 format"),
        ("he_thong.pdf", b"%PDF-1.4", r"he_thong.pdf: not an .xlsx or .csv file$"),
        ("he_thong.xlsx", b"PK\x03\x04 broken", r"he_thong.xlsx: not a readable XLSX workbook \(BadZipFile"),
        ("he_thong.csv", b"M\xe3 h\xea th\xf4ng", r"he_thong.csv: not UTF-8 text"),
        ("he_thong.csv", b"", r"he_thong.csv: contains no data"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SheetError, match=message):
        read_systems(path, AGENCIES)


# --- round trips -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["out.xlsx", "out.csv"])
@pytest.mark.parametrize("english", [False, True])
def test_register_round_trip(tmp_path: Path, name: str, english: bool) -> None:
    path = tmp_path / name
    tricky = SystemRecord(id="007", name="=không phải công thức", agency="syt", status=ApprovalStatus.REJECTED)
    records = [*VI_EXPECTED, tricky]
    write_systems(path, records, AGENCIES, english=english)
    result = read_systems(path, AGENCIES)
    assert result.records == records
    assert result.warnings == []
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left behind


def test_written_register_looks_like_the_forms(tmp_path: Path) -> None:
    write_systems(tmp_path / "vi.csv", VI_EXPECTED[:1], AGENCIES)
    header, first = (tmp_path / "vi.csv").read_text(encoding="utf-8-sig").splitlines()[:2]
    assert header.startswith(
        "Mã hệ thống,Tên hệ thống,Cơ quan chủ quản,Cấp độ đề xuất,Cấp độ được phê duyệt,Trạng thái"
    )
    assert first.startswith(
        "HT-01,Cổng dịch vụ công tỉnh,Sở Thông tin và Truyền thông,3,3,Đã phê duyệt,123/QĐ-UBND,15/03/2024"
    )
    write_systems(tmp_path / "en.xlsx", VI_EXPECTED[:1], AGENCIES, english=True)
    sheet = openpyxl.load_workbook(tmp_path / "en.xlsx").active
    assert [c.value for c in sheet[1]][:3] == ["ID", "Name", "Agency"]
    assert sheet["F2"].value == "Approved"
    assert sheet["H2"].value == datetime(2024, 3, 15) and sheet["H2"].number_format == "DD/MM/YYYY"


def test_write_refuses_unknown_agency_and_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    write_systems(path, VI_EXPECTED, AGENCIES)
    before = path.read_bytes()
    bad = SystemRecord(id="HT-9", name="X", agency="so-ngoai-vu")
    with pytest.raises(SheetError, match=r"out.xlsx: record 4: agency 'so-ngoai-vu' is not a known agency"):
        write_systems(path, [*VI_EXPECTED, bad], AGENCIES)
    assert path.read_bytes() == before


# --- coverage ----------------------------------------------------------------------------------------------

COVERAGE_HEADER = [
    "STT",
    "Đơn vị",
    "Tổng số máy tính",
    "Số máy đã cài phòng chống mã độc",
    "Số máy kết nối NCSC",
    "Ngày số liệu",
]


def test_coverage_sheet(tmp_path: Path) -> None:
    rows: list[list[object]] = [
        [1, "Sở Thông tin và Truyền thông", 120, 118.0, "100", datetime(2025, 6, 30)],
        [2, "syt", "1.250", "1.200", 950, "30/06/2025"],
    ]
    path = build_xlsx(tmp_path / "pcmd.xlsx", {"PCMĐ": [["BÁO CÁO PHÒNG CHỐNG MÃ ĐỘC"], COVERAGE_HEADER, *rows]})
    assert read_coverage(path, AGENCIES).records == [
        CoverageRecord(
            agency="stttt", total_computers=120, protected=118, reporting_to_ncsc=100, as_of=date(2025, 6, 30)
        ),
        CoverageRecord(
            agency="syt", total_computers=1250, protected=1200, reporting_to_ncsc=950, as_of=date(2025, 6, 30)
        ),
    ]


def test_coverage_sheet_with_impossible_counts(tmp_path: Path) -> None:
    rows: list[list[object]] = [
        [1, "stttt", 120, 130, 100],
        [2, "syt", 50, 40, 45],
        [3, "Sở Y tế", 10, -1, 0],
    ]
    with pytest.raises(SheetError) as excinfo:
        read_coverage(build_xlsx(tmp_path / "pcmd.xlsx", {"PCMĐ": [COVERAGE_HEADER, *rows]}), AGENCIES)
    where = "pcmd.xlsx: sheet 'PCMĐ'"
    assert problems_of(excinfo) == [
        f"{where} row 2, column 'Số máy đã cài phòng chống mã độc': 130 protected computers is more than the total "
        "of 120",
        f"{where} row 3, column 'Số máy kết nối NCSC': 45 computers reporting to NCSC is more than the 40 protected",
        f"{where} row 4, column 'Đơn vị': agency 'syt' is already used in row 3",
        f"{where} row 4, column 'Số máy đã cài phòng chống mã độc': -1 is not a number of computers "
        "(a whole number, 0 or more)",
    ]


@pytest.mark.parametrize("name", ["c.xlsx", "c.csv"])
@pytest.mark.parametrize("english", [False, True])
def test_coverage_round_trip(tmp_path: Path, name: str, english: bool) -> None:
    records = [
        CoverageRecord(
            agency="stttt", total_computers=120, protected=118, reporting_to_ncsc=100, as_of=date(2025, 6, 30)
        ),
        CoverageRecord(agency="ubnd-bienhoa", total_computers=0, protected=0, reporting_to_ncsc=0),
    ]
    write_coverage(tmp_path / name, records, AGENCIES, english=english)
    assert read_coverage(tmp_path / name, AGENCIES).records == records
