"""The register and coverage: import the agencies' spreadsheets (all or nothing), export, read, history.

A file is validated whole before anything is written (a broken file changes nothing, every problem
listed); a good file is applied in one transaction, audited, and the compliance findings re-evaluated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from soc.compliance.history import HistoryEntry, RegisterChanges
from soc.compliance.models import ApprovalStatus, CoverageRecord, SystemRecord
from soc.compliance.rules import RulesError, ruleset_for
from soc.compliance.sheet_files import SheetLimits
from soc.compliance.sheets import SheetError, SheetResult, read_coverage, read_systems, write_systems
from soc.compliance.vocabulary import Vocabulary, load_vocabulary
from soc.core.clock import LOCAL_ZONE, end_of_day, local_date, today
from soc.core.errors import ProblemsError
from soc.core.models import ScanRun
from soc.core.settings import Settings
from soc.inventory import Inventory
from soc.services.compliance import evaluate
from soc.services.context import ServiceContext, ServiceError

RecordT = TypeVar("RecordT", bound=BaseModel)


@dataclass(frozen=True)
class ImportResult(Generic[RecordT]):
    """What importing a file did: the sheet's records and warnings, what changed, the compliance run."""

    sheet: SheetResult[RecordT]
    changes: RegisterChanges
    evaluation: ScanRun | None
    evaluation_error: str | None = None
    """Set when the file was applied but the compliance evaluation failed (e.g. no rule set in force)."""
    effective: datetime | None = None
    effective_basis: str = "import"
    """Where the effective date came from: 'option' (--effective), 'file' (its 'as of' title), 'import' (now)."""


def agencies_of(inventory: Inventory) -> dict[str, str]:
    """Agency id → name, for matching the spreadsheets' agency column."""
    return {a.id: a.name for a in inventory.agencies}


def effective_moment(context: ServiceContext, effective: datetime | None) -> datetime | None:
    """When a file's content took effect: a naive time is local (Asia/Ho_Chi_Minh); never in the future
    (it would block every later import of the same records)."""
    if effective is None:
        return None
    moment = effective.replace(tzinfo=LOCAL_ZONE) if effective.tzinfo is None else effective
    if moment > context.clock.now():
        raise ServiceError(f"--effective {moment:%d/%m/%Y}: in the future (it would block every later import)")
    return moment


def _effective(context: ServiceContext, option: datetime | None, file_as_of: date | None,
               warnings: list[str]) -> tuple[datetime | None, str]:
    """When the file's undated facts take effect: --effective, else the file's 'as of' date, else now."""
    moment = effective_moment(context, option)
    if moment is not None:
        if file_as_of is not None and local_date(moment) != file_as_of:
            warnings.append(f"--effective {moment:%d/%m/%Y} used; the file itself says its data is as of "
                            f"{file_as_of:%d/%m/%Y}")
        return moment, "option"
    if file_as_of is not None:
        return effective_moment(context, datetime.combine(file_as_of, time())), "file"
    return None, "import"


def finish_system(key: str, data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A system as it will be stored after a file is merged over it: its legal basis recorded, and refused
    when it would stand approved without a level (e.g. the file has no level column and none is stored)."""
    record = with_legal_basis(SystemRecord.model_validate(data))
    if record.status is ApprovalStatus.APPROVED and record.approved_level is None:
        return data, [f"system '{key}': the status is approved but there is no approved level (the file has no "
                      "approved-level column and none is stored); add the column with the level"]
    return record.model_dump(mode="json"), []


def with_legal_basis(record: SystemRecord) -> SystemRecord:
    """An approved record keeps the rule set its level was approved under: the file's, or the one in
    force on the decision date — recorded now, so a later change of law never rewrites it."""
    if record.legal_basis or record.status is not ApprovalStatus.APPROVED or record.decision_date is None:
        return record
    try:
        basis = ruleset_for(record.decision_date).id
    except RulesError:  # a decision older than every rule set: leave it for a person to fill in
        return record
    return record.model_copy(update={"legal_basis": basis})


def vocabulary_of(context: ServiceContext) -> Vocabulary:
    """The spreadsheet words: the base vocabulary plus the SOC's own file (settings.vocabulary_file)."""
    return load_vocabulary(context.settings.vocabulary_file)


def sheet_limits(settings: Settings) -> SheetLimits:
    """How big an agency's spreadsheet may be (the SOC_SHEET_* settings)."""
    return SheetLimits(max_bytes=settings.sheet_max_bytes, max_unpacked_bytes=settings.sheet_max_unpacked_bytes,
                       max_ratio=settings.sheet_max_ratio, max_sheets=settings.sheet_max_sheets,
                       max_rows=settings.sheet_max_rows, max_columns=settings.sheet_max_columns,
                       max_cells=settings.sheet_max_cells)


def import_systems(context: ServiceContext, path: Path, inventory: Inventory,
                   effective: datetime | None = None) -> ImportResult[SystemRecord]:
    """Validate a register file whole (SheetError lists every problem), apply it, re-evaluate findings.

    Only the file's columns change stored values; its facts take effect on `effective`, else on the date
    the file states, else now (records seen for the first time are dated back by their own decision dates).
    """
    sheet = read_systems(_existing(path), agencies_of(inventory), vocabulary_of(context),
                         sheet_limits(context.settings))
    moment, basis = _effective(context, effective, sheet.as_of, sheet.warnings)
    return _apply(context, "register.systems.import", path, sheet, moment, basis,
                  lambda: context.backend.register.apply_systems(sheet.records, context.actor, path.name, moment,
                                                                 sheet.columns, finish_system))


def import_coverage(context: ServiceContext, path: Path, inventory: Inventory,
                    effective: datetime | None = None) -> ImportResult[CoverageRecord]:
    """Validate an anti-malware coverage file whole, apply it, re-evaluate findings."""
    sheet = read_coverage(_existing(path), agencies_of(inventory), vocabulary_of(context),
                          sheet_limits(context.settings))
    moment, basis = _effective(context, effective, sheet.as_of, sheet.warnings)
    return _apply(context, "register.coverage.import", path, sheet, moment, basis,
                  lambda: context.backend.register.apply_coverage(sheet.records, context.actor, path.name, moment,
                                                                  sheet.columns))


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise ServiceError(f"{path}: file not found")
    return path


def _apply(context: ServiceContext, action: str, path: Path, sheet: SheetResult[RecordT], moment: datetime | None,
           basis: str, apply: Callable[[], RegisterChanges]) -> ImportResult[RecordT]:
    try:
        changes = apply()
    except ProblemsError as exc:
        raise SheetError([f"{path.name}: {problem}" for problem in exc.problems]) from None
    effective = moment or context.clock.now()
    context.audit(action, path.name, after={**changes.summary(), "fields_changed": len(changes.fields),
                                            "keys": (changes.added + changes.changed)[:200],
                                            "effective": effective.isoformat(), "effective_basis": basis,
                                            "columns": sorted(sheet.columns)})
    try:
        run = evaluate(context)
    except RulesError as exc:
        return ImportResult(sheet, changes, None, str(exc), effective, basis)
    return ImportResult(sheet, changes, run, None, effective, basis)


def systems_as_of(context: ServiceContext, day: date | None = None, agency: str | None = None,
                  known_at: datetime | None = None) -> list[SystemRecord]:
    """The register as it stood at the end of `day` (default today), as known at `known_at` (default now)."""
    records = context.backend.register.systems_as_of(end_of_day(day or today(context.clock)), known_at)
    return sorted((r for r in records if agency is None or r.agency == agency), key=lambda r: (r.agency, r.id))


def coverage_as_of(context: ServiceContext, day: date | None = None, agency: str | None = None,
                   known_at: datetime | None = None) -> list[CoverageRecord]:
    """Anti-malware coverage as it stood at the end of `day` (default today), as known at `known_at`, by agency."""
    records = context.backend.register.coverage_as_of(end_of_day(day or today(context.clock)), known_at)
    return sorted((r for r in records if agency is None or r.agency == agency), key=lambda r: r.agency)


def export_systems(context: ServiceContext, path: Path, inventory: Inventory, day: date | None = None,
                   english: bool = False) -> Sequence[SystemRecord]:
    """Write the register as it stood on `day` to an XLSX or CSV file (the import format), atomically."""
    records = systems_as_of(context, day)
    write_systems(path, list(records), agencies_of(inventory), english=english)
    return records


def system_history(context: ServiceContext, system_id: str) -> list[HistoryEntry]:
    """Every version of one system; ServiceError when the register never had it."""
    history = context.backend.register.system_history(system_id)
    if not history:
        raise ServiceError(f"{system_id}: no such system in the register")
    return history
