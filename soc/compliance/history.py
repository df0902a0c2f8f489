"""The register's history as data: what an import changed, and each version of a record. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from soc.core.errors import InputError


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

    def summary(self) -> dict[str, int]:
        """added / changed / unchanged counts (for the audit log)."""
        return {"added": len(self.added), "changed": len(self.changed), "unchanged": len(self.unchanged)}


class HistoryEntry(BaseModel):
    """One version of a record: when, who, from which file, and what changed from the previous one."""

    valid_from: datetime
    valid_to: datetime | None
    actor: str
    source: str
    changes: list[FieldChange]


class HistoryError(InputError):
    """An import would rewrite history (its effective time is before a record's latest version)."""


def field_changes(key: str, old: dict[str, Any] | None, new: dict[str, Any]) -> list[FieldChange]:
    """The fields of `new` that differ from `old` (a new record: its non-empty fields)."""
    if old is None:
        return [FieldChange(key=key, field=name, new=value) for name, value in new.items() if value not in (None, {})]
    return [FieldChange(key=key, field=name, old=old.get(name), new=value)
            for name, value in new.items() if old.get(name) != value]
