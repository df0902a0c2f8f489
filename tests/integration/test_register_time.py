"""The register on real input: bitemporal history (last month's figures after this month's import, "as known
at" for audit), missing columns that never erase data, and the words agencies write (with suggestions)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

import openpyxl  # type: ignore[import-untyped]
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from soc.cli import app
from soc.cli.common import CliState
from soc.compliance.models import ApprovalStatus
from soc.compliance.sheets import SheetError
from soc.compliance.vocabulary import VocabularyError, load_vocabulary
from soc.core.clock import LOCAL_ZONE, FixedClock, end_of_day
from soc.core.models import FindingStatus
from soc.core.settings import Settings
from soc.inventory import Inventory, load_inventory
from soc.services import register as register_service
from soc.services.compliance import kpis
from soc.services.context import ServiceContext
from soc.services.findings import list_findings
from soc.store import open_backend
from soc.store.sqlite.schema import alembic_config, create_engine_for

DEC_1 = datetime(2026, 12, 1, 8, 30, tzinfo=LOCAL_ZONE)
NOV_30 = date(2026, 11, 30)
HEADER = ["Mã hệ thống", "Tên hệ thống", "Cơ quan chủ quản", "Cấp độ được phê duyệt", "Trạng thái", "Ngày phê duyệt",
          "Đáp ứng yêu cầu"]


def sheet(path: Path, rows: Sequence[Sequence[object]], header: Sequence[str] = HEADER,
          title: str | None = None) -> Path:
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "HTTT"
    ws.append([title or "DANH MỤC HỆ THỐNG THÔNG TIN"])
    ws.append([])
    ws.append(list(header))
    for row in rows:
        ws.append(list(row))
    book.save(path)
    return path


NOVEMBER_ROWS: list[list[object]] = [
    ["HT1", "Quản lý văn bản", "stp", 3, "Đã phê duyệt", "15/05/2026", "Đáp ứng"],
    ["HT2", "Một cửa điện tử", "stp", 2, "Đã phê duyệt", "02/07/2026", "Chưa đáp ứng"],
    ["HT3", "Cổng thông tin", "syt", None, "Đang thẩm định", None, None],
]


def open_findings(context: ServiceContext) -> set[tuple[str, str]]:
    found = list_findings(context, statuses=[FindingStatus.OPEN]).findings
    return {(f.portal_url, f.check_id) for f in found}


@pytest.fixture
def inventory(inventory_path: Path) -> Inventory:
    return load_inventory(inventory_path)


def approved_kpi(context: ServiceContext, inventory: Inventory, day: date, known_at: datetime | None = None,
                 agency: str | None = None) -> tuple[int, int]:
    report = kpis(context, inventory, day, agency, known_at)
    scope = report.province if agency is None else report.agencies[0]
    kpi = next(k for k in scope.kpis if k.id == "systems_approved")
    return kpi.numerator, kpi.denominator


# --- 1. last month's figures after this month's import -----------------------------------------------------


def test_an_import_on_the_1st_gives_last_months_figures(context: ServiceContext, clock: FixedClock,
                                                        inventory: Inventory, tmp_path: Path) -> None:
    clock.advance(DEC_1 - clock.now())
    path = sheet(tmp_path / "t11.xlsx", NOVEMBER_ROWS, title="Số liệu tính đến ngày 30/11/2026")
    result = register_service.import_systems(context, path, inventory)
    assert result.effective_basis == "file" and result.sheet.as_of == NOV_30
    assert approved_kpi(context, inventory, NOV_30) == (2, 3)
    # Decisions keep their own dates: in June only HT1 was approved; the others existed from their own dates.
    assert approved_kpi(context, inventory, date(2026, 6, 30)) == (1, 1)


def test_without_an_as_of_date_decisions_still_date_their_systems(context: ServiceContext, clock: FixedClock,
                                                                 inventory: Inventory, tmp_path: Path) -> None:
    clock.advance(DEC_1 - clock.now())
    result = register_service.import_systems(context, sheet(tmp_path / "t.xlsx", NOVEMBER_ROWS), inventory)
    assert result.effective_basis == "import" and set(result.changes.backdated) == {"HT1", "HT2"}
    assert approved_kpi(context, inventory, NOV_30, agency="stp") == (2, 2)
    assert approved_kpi(context, inventory, NOV_30, agency="syt") == (0, 0)  # HT3 has no date of its own
    report = kpis(context, inventory, NOV_30)
    syt = next(s for s in report.agencies if s.id == "syt")
    assert syt.data_from == date(2026, 12, 1)
    assert syt.note == "Chưa có dữ liệu sổ đăng ký trước ngày 01/12/2026 / No register data before 01/12/2026"


def test_a_date_before_any_data_is_said_in_words_in_the_cli_and_json(tmp_path: Path, inventory_path: Path) -> None:
    db = tmp_path / "cli.db"
    path = sheet(tmp_path / "t.xlsx", NOVEMBER_ROWS, title="Số liệu tính đến ngày 25/11/2026")
    assert run("systems", "import", str(path), "-i", str(inventory_path), "--db", str(db)).exit_code == 0
    result = run("compliance", "--as-of", "2026-01-31", "--json", "-i", str(inventory_path), "--db", str(db))
    data = json.loads(result.output)
    assert data["province"]["note"] == ("Chưa có dữ liệu sổ đăng ký trước ngày 15/05/2026 / "
                                        "No register data before 15/05/2026")
    assert [s["note"] is not None for s in data["agencies"]] == [True, True]
    table = run("compliance", "--as-of", "2026-01-31", "-i", str(inventory_path), "--db", str(db))
    assert "No register data before 15/05/2026" in table.output
    later = json.loads(run("compliance", "--as-of", "2026-11-26", "--json", "-i", str(inventory_path),
                           "--db", str(db)).output)
    assert later["province"]["note"] is None and later["province"]["data_from"] == "2026-05-15"


def test_as_known_at_rebuilds_what_was_said_then(context: ServiceContext, clock: FixedClock, inventory: Inventory,
                                                 tmp_path: Path) -> None:
    clock.advance(datetime(2026, 11, 1, 9, 0, tzinfo=LOCAL_ZONE) - clock.now())
    submitted = [["HT1", "Quản lý văn bản", "stp", None, "Đã trình", None, None]]
    register_service.import_systems(context, sheet(tmp_path / "t10.xlsx", submitted,
                                                   title="Số liệu tính đến ngày 31/10/2026"), inventory)
    sent_at = clock.now() + timedelta(hours=1)  # the October report was sent then
    clock.advance(DEC_1 - clock.now())
    approved = [["HT1", "Quản lý văn bản", "stp", 3, "Đã phê duyệt", "20/10/2026", None]]
    register_service.import_systems(context, sheet(tmp_path / "t11.xlsx", approved,
                                                   title="Số liệu tính đến ngày 30/11/2026"), inventory)
    october = date(2026, 10, 31)
    assert approved_kpi(context, inventory, october, known_at=sent_at) == (0, 1)  # what the report said
    assert approved_kpi(context, inventory, NOV_30) == (1, 1)
    # Known now, the state on 31/10 is still the October file's (a version is true from its effective date).
    assert approved_kpi(context, inventory, october) == (0, 1)
    assert kpis(context, inventory, october, known_at=sent_at).known_at == sent_at
    assert [e.source for e in register_service.system_history(context, "HT1")] == ["t10.xlsx", "t11.xlsx"]


def test_a_correction_dated_in_the_past_changes_now_but_not_what_was_known(
        context: ServiceContext, clock: FixedClock, inventory: Inventory, tmp_path: Path) -> None:
    clock.advance(datetime(2026, 11, 1, 9, 0, tzinfo=LOCAL_ZONE) - clock.now())
    wrong = [["HT1", "Quản lý văn bản", "stp", None, "Đã trình", None, None]]
    register_service.import_systems(context, sheet(tmp_path / "a.xlsx", wrong), inventory,
                                    effective=datetime(2026, 10, 1))
    before_correction = clock.now()
    clock.advance(timedelta(days=10))
    right = [["HT1", "Quản lý văn bản", "stp", 2, "Đã phê duyệt", "01/10/2026", None]]
    register_service.import_systems(context, sheet(tmp_path / "b.xlsx", right), inventory,
                                    effective=datetime(2026, 10, 1))
    assert approved_kpi(context, inventory, date(2026, 10, 15)) == (1, 1)
    assert approved_kpi(context, inventory, date(2026, 10, 15), known_at=before_correction) == (0, 1)


def test_effective_in_the_future_is_refused(context: ServiceContext, inventory: Inventory, tmp_path: Path) -> None:
    with pytest.raises(Exception, match="in the future"):
        register_service.import_systems(context, sheet(tmp_path / "a.xlsx", NOVEMBER_ROWS), inventory,
                                        effective=context.clock.now() + timedelta(days=3))
    with pytest.raises(Exception, match="in the future"):
        kpis(context, inventory, NOV_30, known_at=context.clock.now() + timedelta(days=1))


def test_migration_keeps_old_history_as_it_was_believed(tmp_path: Path) -> None:
    """A store written before the register was bitemporal answers as before, and "as known at" too."""
    from alembic import command

    db = tmp_path / "old.db"
    config = alembic_config()
    old = create_engine_for(db)
    with old.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0004")
    old.dispose()
    t1, t2 = "2026-03-01T02:00:00.000000+00:00", "2026-04-10T02:00:00.000000+00:00"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        for valid_from, valid_to, status in ((t1, t2, "not_started"), (t2, None, "approved")):
            data = {"id": "HT1", "name": "A", "agency": "stp", "status": status,
                    "approved_level": 2 if status == "approved" else None}
            conn.execute(sa.text("INSERT INTO system_versions (system_id, valid_from, valid_to, actor, source, data)"
                                 " VALUES ('HT1', :f, :t, 'a', 's', :d)"),
                         {"f": valid_from, "t": valid_to, "d": json.dumps(data)})
    engine.dispose()
    backend = open_backend(db)
    try:
        register = backend.register
        march, may = datetime(2026, 3, 15, tzinfo=LOCAL_ZONE), datetime(2026, 5, 1, tzinfo=LOCAL_ZONE)
        assert [r.status for r in register.systems_as_of(march)] == [ApprovalStatus.NOT_STARTED]
        assert [r.status for r in register.systems_as_of(may)] == [ApprovalStatus.APPROVED]
        # On 20 March the toolkit believed HT1 not started, for then and for May.
        assert [r.status for r in register.systems_as_of(may, known_at=march)] == [ApprovalStatus.NOT_STARTED]
        assert len(register.system_history("HT1")) == 2
    finally:
        backend.close()


# --- 2. a missing column never erases data ------------------------------------------------------------------


def test_a_file_without_the_approved_level_column_keeps_the_stored_levels(
        context: ServiceContext, clock: FixedClock, inventory: Inventory, tmp_path: Path) -> None:
    register_service.import_systems(context, sheet(tmp_path / "full.xlsx", NOVEMBER_ROWS), inventory)
    before = approved_kpi(context, inventory, clock.now().date())
    findings_before = open_findings(context)
    clock.advance(timedelta(days=2))
    header = ["Mã hệ thống", "Tên hệ thống", "Cơ quan chủ quản", "Trạng thái"]  # no level, no decision date
    rows = [["HT1", "Quản lý văn bản điện tử", "stp", "Đã phê duyệt"], ["HT2", "Một cửa điện tử", "stp",
                                                                        "Đã phê duyệt"]]
    result = register_service.import_systems(context, sheet(tmp_path / "names.xlsx", rows, header), inventory)
    assert result.sheet.columns == {"id", "name", "agency", "status"}
    assert result.changes.changed == ["HT1"] and {c.field for c in result.changes.fields} == {"name"}
    stored = {r.id: r for r in register_service.systems_as_of(context, clock.now().date())}
    assert (stored["HT1"].approved_level, stored["HT1"].decision_date) == (3, date(2026, 5, 15))
    assert stored["HT2"].requirements is not None  # a column the file lacks is never read as "all empty"
    assert approved_kpi(context, inventory, clock.now().date()) == before
    assert open_findings(context) == findings_before  # no false findings opened by "missing" levels


def test_a_present_blank_cell_clears_and_an_approved_status_needs_a_level(
        context: ServiceContext, inventory: Inventory, tmp_path: Path) -> None:
    register_service.import_systems(context, sheet(tmp_path / "full.xlsx", NOVEMBER_ROWS), inventory)
    blank_level_approved = [["HT1", "Quản lý văn bản", "stp", None, "Đã phê duyệt", "15/05/2026", "Đáp ứng"]]
    with pytest.raises(SheetError) as refused:
        register_service.import_systems(context, sheet(tmp_path / "bad.xlsx", blank_level_approved), inventory)
    assert refused.value.problems == [
        "bad.xlsx: sheet 'HTTT' row 4, column 'Cấp độ được phê duyệt': the status is approved but the approved "
        "level is blank; write the level, or change the status if the approval was withdrawn (a blank level "
        "clears the stored one)"]
    withdrawn = [["HT1", "Quản lý văn bản", "stp", None, "Trả lại hồ sơ", None, "Đáp ứng"]]
    register_service.import_systems(context, sheet(tmp_path / "withdrawn.xlsx", withdrawn), inventory)
    record = next(r for r in register_service.systems_as_of(context) if r.id == "HT1")
    assert (record.approved_level, record.status) == (None, ApprovalStatus.RETURNED)


def test_a_new_approved_system_without_a_level_column_is_refused_whole(
        context: ServiceContext, inventory: Inventory, tmp_path: Path) -> None:
    header = ["Mã hệ thống", "Tên hệ thống", "Cơ quan chủ quản", "Trạng thái"]
    rows = [["HT7", "Hệ thống mới", "stp", "Đã trình"], ["HT8", "Hệ thống khác", "syt", "Đã phê duyệt"]]
    with pytest.raises(SheetError) as refused:
        register_service.import_systems(context, sheet(tmp_path / "new.xlsx", rows, header), inventory)
    assert refused.value.problems == [
        "new.xlsx: system 'HT8': the status is approved but there is no approved level (the file has no "
        "approved-level column and none is stored); add the column with the level"]
    assert register_service.systems_as_of(context) == []  # all or nothing: HT7 was not kept either


def test_a_required_column_missing_is_named(context: ServiceContext, inventory: Inventory, tmp_path: Path) -> None:
    header = ["Mã hệ thống", "Tên hệ thống", "Cơ quan chủ quản", "Trạng thá"]
    with pytest.raises(SheetError) as refused:
        register_service.import_systems(context, sheet(tmp_path / "x.xlsx", [["HT1", "A", "stp", "x"]], header),
                                        inventory)
    assert "required column 'Trạng thái' is missing (the header 'Trạng thá' is close: did you mean " \
           "'Trạng thái'?)" in refused.value.problems[0]


# --- 3. the words agencies write ----------------------------------------------------------------------------


def test_an_unknown_status_gets_the_closest_words(context: ServiceContext, inventory: Inventory,
                                                  tmp_path: Path) -> None:
    rows: list[list[object]] = [["HT1", "A", "stp", 2, "Đã phê duyt", "15/05/2026", None],
                                 ["HT2", "B", "stp", None, "dang tham dinhh", None, None]]
    with pytest.raises(SheetError) as refused:
        register_service.import_systems(context, sheet(tmp_path / "x.xlsx", rows), inventory)
    first, second = refused.value.problems
    assert "'Đã phê duyt' is not a known status (did you mean 'Đã phê duyệt'" in first
    assert "'dang tham dinhh' is not a known status (did you mean 'Đang thẩm định'" in second


def test_short_english_headers_and_a_near_miss_header_is_an_error(context: ServiceContext, inventory: Inventory,
                                                                   tmp_path: Path) -> None:
    header = ["ID", "Name", "Owner", "Approved lvl", "Status", "Approval date", "Compliance"]
    rows = [["HT1", "A", "stp", 3, "Approved", "15/05/2026", "Met"]]
    result = register_service.import_systems(context, sheet(tmp_path / "en.xlsx", rows, header), inventory)
    assert {"approved_level", "requirements", "decision_date"} <= result.sheet.columns
    typo = ["ID", "Name", "Owner", "Aproved level", "Status", "Approval date", "Requirments met"]
    with pytest.raises(SheetError) as refused:
        register_service.import_systems(context, sheet(tmp_path / "typo.xlsx", rows, typo), inventory)
    assert refused.value.problems == [
        "typo.xlsx: sheet 'HTTT' row 3, column 'Aproved level' (D): not a known column (did you mean 'Approved "
        "level'?); rename the header, or the SOC can add it to its vocabulary file",
        "typo.xlsx: sheet 'HTTT' row 3, column 'Requirments met' (G): not a known column (did you mean "
        "'Requirements met'?); rename the header, or the SOC can add it to its vocabulary file"]


def test_the_soc_extends_the_vocabulary_without_a_code_change(db_path: Path, clock: FixedClock,
                                                             inventory: Inventory, tmp_path: Path) -> None:
    extra = tmp_path / "words.yaml"
    extra.write_text('values:\n  status:\n    under_appraisal: {vi: ["Sở TT&TT đang xem hồ sơ"]}\n'
                     'columns:\n  systems:\n    approved_level: {en: ["Lvl"]}\n', encoding="utf-8")
    header = ["ID", "Name", "Owner", "Lvl", "Status"]
    rows = [["HT1", "A", "stp", None, "Sở TT&TT đang xem hồ sơ"]]
    backend = open_backend(db_path, clock)
    try:
        plain = ServiceContext(Settings(db=db_path), backend, clock, "lan")
        with pytest.raises(SheetError):
            register_service.import_systems(plain, sheet(tmp_path / "a.xlsx", rows, header), inventory)
        extended = ServiceContext(Settings(db=db_path, vocabulary_file=extra), backend, clock, "lan")
        result = register_service.import_systems(extended, sheet(tmp_path / "a.xlsx", rows, header), inventory)
        assert result.sheet.records[0].status is ApprovalStatus.UNDER_APPRAISAL
        assert "approved_level" in result.sheet.columns
    finally:
        backend.close()


def test_a_bad_vocabulary_file_names_the_file_and_the_place(tmp_path: Path) -> None:
    bad = tmp_path / "words.yaml"
    bad.write_text('values:\n  status:\n    aproved: {vi: ["x"]}\n    approved: {vi: ["Đã trình"]}\n',
                   encoding="utf-8")
    with pytest.raises(VocabularyError) as refused:
        load_vocabulary(bad)
    assert "values.status.aproved: not one of" in refused.value.problems[0]
    bad.write_text('values:\n  status:\n    approved: {vi: ["Đã trình"]}\n', encoding="utf-8")
    with pytest.raises(VocabularyError) as ambiguous:
        load_vocabulary(bad)
    assert ambiguous.value.problems == [f"{bad}: values.status: 'Đã trình' would mean both 'submitted' and "
                                        "'approved' (words are compared without case, diacritics and punctuation)"]


def test_the_base_vocabulary_names_every_column_and_value() -> None:
    from soc.compliance.vocabulary import BASE_VOCABULARY, COLUMN_FIELDS, VALUE_CHOICES

    for sheet_name, fields in COLUMN_FIELDS.items():
        assert set(BASE_VOCABULARY.columns[sheet_name]) == fields
    for kind, choices in VALUE_CHOICES.items():
        assert set(BASE_VOCABULARY.values[kind]) == choices
        assert all(BASE_VOCABULARY.values[kind][c].vi and BASE_VOCABULARY.values[kind][c].en for c in choices)


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), obj=CliState(FixedClock(DEC_1)))


def test_end_of_day_is_local() -> None:
    assert end_of_day(NOV_30).tzinfo is LOCAL_ZONE
