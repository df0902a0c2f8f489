"""How an import changes the bitemporal register: one plan, carried out by every backend.

Every version has a valid time (valid_from inclusive, valid_to exclusive: when it was true in the world)
and a record time (recorded_at inclusive, superseded_at exclusive: when the toolkit believed it). An import
never changes a version except to mark it superseded; what it replaces is written again, bounded. So the
register can be read "as of D, as known now" (the default) or "as of D, as known at T" (a report once
sent, rebuilt exactly).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from soc.compliance.history import Finish, RegisterChanges, earliest_fact, field_changes, merged
from soc.core.clock import start_of_day


@dataclass(frozen=True)
class Version:
    """A version believed now (not superseded)."""

    id: Any
    valid_from: datetime
    valid_to: datetime | None
    data: dict[str, Any]
    actor: str
    source: str

    def contains(self, moment: datetime) -> bool:
        return self.valid_from <= moment and (self.valid_to is None or moment < self.valid_to)


@dataclass
class Plan:
    """What to write: versions to mark superseded (at `recorded`) and new versions to insert."""

    recorded: datetime
    changes: RegisterChanges = field(default_factory=RegisterChanges)
    problems: list[str] = field(default_factory=list)
    supersede: list[Any] = field(default_factory=list)
    insert: list[dict[str, Any]] = field(default_factory=list)
    """Rows with key, actor, source, recorded_at, data, valid_from, valid_to."""


def plan_import(items: Sequence[tuple[str, BaseModel, datetime | None]], known: Mapping[str, Sequence[Version]],
                actor: str, source: str, recorded: datetime, present: Collection[str] | None,
                finish: Finish) -> Plan:
    """The plan of one file: `items` are (key, record, effective moment or None for `recorded`), `known` the
    versions believed now of each key in valid-time order. With problems the plan must not be carried out."""
    plan = Plan(recorded)
    changes = plan.changes
    for key, record, at in items:
        effective = at or recorded
        if effective > recorded:
            plan.problems.append(f"'{key}': dated {effective:%d/%m/%Y}, in the future")
            continue
        rows = known.get(key, [])
        base = next((row for row in rows if row.contains(effective)), rows[0] if rows else None)
        data, found = finish(key, merged(base.data if base else None, record.model_dump(mode="json"), present))
        plan.problems += found
        if found or (base is not None and base.data == data):
            if not found:
                changes.unchanged.append(key)
            continue
        row = {"key": key, "actor": actor, "source": source, "recorded_at": recorded, "data": data}
        if base is None:
            first = earliest_fact(data)
            start = min(effective, start_of_day(first)) if first else effective
            if start < effective and first is not None:
                changes.backdated[key] = first
            plan.insert.append(row | {"valid_from": start, "valid_to": None})
            changes.added.append(key)
            continue
        if base.contains(effective):
            # split the version in force: its part before stays believed, the new one follows
            plan.supersede.append(base.id)
            if base.valid_from < effective:
                plan.insert.append(row | {"actor": base.actor, "source": base.source, "data": base.data,
                                          "valid_from": base.valid_from, "valid_to": effective})
            plan.insert.append(row | {"valid_from": effective, "valid_to": base.valid_to})
        else:  # the file is dated before everything known of this record
            plan.insert.append(row | {"valid_from": effective, "valid_to": base.valid_from})
        changes.changed.append(key)
        changes.fields += field_changes(key, base.data, data)
    return plan
