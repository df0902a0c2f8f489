"""The register's history as data: what an import changed, each version of a record, and the rules that
place a file's facts in time and merge a partial file over what is stored. Pure.

The register is bitemporal: every version has a valid time (when it was true in the world) and a record
time (when the toolkit learned it). A file's facts take effect on its effective date (the file's own
"as of" date, or the import's --effective, else the day it is imported); a record seen for the first time
is dated back to the earliest date of its own facts (decision date, assessment date, coverage "as of"),
because those facts say the system existed by then.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

FACT_DATE_FIELDS = ("decision_date", "requirements_assessed", "as_of")
"""Record fields that date a fact of their own (systems: decision and assessment; coverage: its figures)."""


Finish = Callable[[str, dict[str, Any]], tuple[dict[str, Any], list[str]]]
"""Completes a merged record (key, JSON) before it is stored: the record, and problems that refuse the file."""


def keep_record(key: str, data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The `Finish` that stores a merged record as it is."""
    return data, []


class FieldChange(BaseModel):
    """One field of one record changed by one import."""

    key: str
    field: str
    old: Any = None
    new: Any = None


class RegisterChanges(BaseModel):
    """What applying a file changed."""

    added: list[str] = Field(default_factory=list)
    changed: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    fields: list[FieldChange] = Field(default_factory=list)
    """Field-level changes of the records that existed before (new records are listed in `added`)."""
    backdated: dict[str, date] = Field(default_factory=dict)
    """New records dated back before the file's effective date by a fact of their own, and to when."""

    def summary(self) -> dict[str, int]:
        """added / changed / unchanged counts (for the audit log)."""
        return {"added": len(self.added), "changed": len(self.changed), "unchanged": len(self.unchanged)}


class HistoryEntry(BaseModel):
    """One version of a record as believed now: valid when, recorded when, who, from which file, and what
    changed from the previous version."""

    valid_from: datetime
    valid_to: datetime | None
    recorded_at: datetime
    actor: str
    source: str
    changes: list[FieldChange]


def field_changes(key: str, old: dict[str, Any] | None, new: dict[str, Any]) -> list[FieldChange]:
    """The fields of `new` that differ from `old` (a new record: its non-empty fields)."""
    if old is None:
        return [FieldChange(key=key, field=name, new=value) for name, value in new.items() if value not in (None, {})]
    return [FieldChange(key=key, field=name, old=old.get(name), new=value)
            for name, value in new.items() if old.get(name) != value]


def merged(stored: Mapping[str, Any] | None, incoming: Mapping[str, Any],
           present: Collection[str] | None) -> dict[str, Any]:
    """The record after a file is applied over `stored` (JSON dicts).

    `present` holds the file's columns ('layers.monitoring' for a nested field); a column the file does not
    have leaves the stored value untouched, a present column (even a blank cell) sets it. None: every field.
    """
    if stored is None or present is None:
        return dict(incoming)
    result: dict[str, Any] = {key: (dict(value) if isinstance(value, dict) else value) for key, value in stored.items()}
    for key in present:
        head, _, tail = key.partition(".")
        if tail:
            result.setdefault(head, {})[tail] = incoming.get(head, {}).get(tail)
        else:
            result[key] = incoming.get(key)
    return result


def earliest_fact(data: Mapping[str, Any]) -> date | None:
    """The earliest date one of the record's own facts carries (None when it has none)."""
    dates = [date.fromisoformat(str(data[name])) for name in FACT_DATE_FIELDS if data.get(name)]
    return min(dates) if dates else None
