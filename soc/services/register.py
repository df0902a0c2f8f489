"""The register and coverage: import the agencies' spreadsheets (all or nothing), export, read, history.

A file is validated whole before anything is written (a broken file changes nothing, every problem
listed); a good file is applied in one transaction, audited, and the compliance findings re-evaluated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel

from soc.compliance.history import HistoryEntry, RegisterChanges
from soc.compliance.models import ApprovalStatus, CoverageRecord, SystemRecord
from soc.compliance.rules import RulesError, ruleset_for
from soc.compliance.sheets import SheetResult, read_coverage, read_systems, write_systems
from soc.core.clock import LOCAL_ZONE, end_of_day, today
from soc.core.models import ScanRun
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


def import_systems(context: ServiceContext, path: Path, inventory: Inventory,
                   effective: datetime | None = None) -> ImportResult[SystemRecord]:
    """Validate a register file whole (SheetError lists every problem), apply it, re-evaluate findings."""
    moment = effective_moment(context, effective)
    sheet = read_systems(_existing(path), agencies_of(inventory))
    records = [with_legal_basis(r) for r in sheet.records]
    return _apply(context, "register.systems.import", path, sheet,
                  lambda: context.backend.register.apply_systems(records, context.actor, path.name, moment))


def import_coverage(context: ServiceContext, path: Path, inventory: Inventory,
                    effective: datetime | None = None) -> ImportResult[CoverageRecord]:
    """Validate an anti-malware coverage file whole, apply it, re-evaluate findings."""
    moment = effective_moment(context, effective)
    sheet = read_coverage(_existing(path), agencies_of(inventory))
    return _apply(context, "register.coverage.import", path, sheet,
                  lambda: context.backend.register.apply_coverage(sheet.records, context.actor, path.name, moment))


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise ServiceError(f"{path}: file not found")
    return path


def _apply(context: ServiceContext, action: str, path: Path, sheet: SheetResult[RecordT],
           apply: Callable[[], RegisterChanges]) -> ImportResult[RecordT]:
    changes = apply()
    context.audit(action, path.name, after={**changes.summary(), "fields_changed": len(changes.fields),
                                            "keys": (changes.added + changes.changed)[:200]})
    try:
        run = evaluate(context)
    except RulesError as exc:
        return ImportResult(sheet, changes, None, str(exc))
    return ImportResult(sheet, changes, run)


def systems_as_of(context: ServiceContext, day: date | None = None, agency: str | None = None) -> list[SystemRecord]:
    """The register as it stood at the end of `day` (default today), by agency and id."""
    records = context.backend.register.systems_as_of(end_of_day(day or today(context.clock)))
    return sorted((r for r in records if agency is None or r.agency == agency), key=lambda r: (r.agency, r.id))


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
