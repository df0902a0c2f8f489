"""Queries and pages: what a front end asks of the findings, and how it pages through the answer.

A cursor is opaque to callers (URL-safe text): it encodes the sort key of the last item of the page, so
the next page starts right after it even while findings are added (keyset pagination, not offsets).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from soc.core.errors import InputError
from soc.core.models import FindingStatus, Severity

T = TypeVar("T")
MAX_PAGE = 1000


class FindingSort(StrEnum):
    """Orders of a findings listing; every one ends with the fingerprint, so it is total."""

    SEVERITY = "severity"
    """Worst first, then portal, check id."""
    FIRST_SEEN = "first_seen"
    """Newest first."""
    LAST_SEEN = "last_seen"
    """Most recently seen first."""


class FindingQuery(BaseModel):
    """Findings matching every given filter (an empty filter matches all)."""

    model_config = ConfigDict(frozen=True)

    statuses: tuple[FindingStatus, ...] = ()
    severities: tuple[Severity, ...] = ()
    check_ids: tuple[str, ...] = ()
    portal_urls: tuple[str, ...] = ()
    fingerprint_prefix: str | None = None
    first_seen_after: datetime | None = None
    first_seen_before: datetime | None = None
    last_seen_after: datetime | None = None
    last_seen_before: datetime | None = None
    resolved_after: datetime | None = None
    resolved_before: datetime | None = None
    assignees: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    """Agencies: findings assigned to one of them, or unassigned with a subject in `owned_subjects`."""
    owned_subjects: tuple[str, ...] = ()
    sla_states: tuple[str, ...] = ()
    """`soc.findings.sla.SlaState` values, judged at `now` (required with them)."""
    now: datetime | None = None
    sort: FindingSort = FindingSort.SEVERITY
    limit: int | None = Field(default=None, ge=1, le=MAX_PAGE)
    """Page size; None = every match (CLI listings, reports)."""
    cursor: str | None = None
    """From the previous page's `next_cursor`."""


class Page(BaseModel, Generic[T]):
    """One page of results and the cursor of the next one (None: this was the last)."""

    items: list[T]
    next_cursor: str | None = None


class CursorError(InputError):
    """A cursor that this store did not hand out (or of another sort order)."""


def encode_cursor(sort: FindingSort, key: list[Any]) -> str:
    """An opaque cursor for the item whose sort key is `key`."""
    raw = json.dumps({"s": sort.value, "k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(sort: FindingSort, cursor: str) -> list[Any]:
    """The sort key inside a cursor; CursorError if it is not one of ours for this order."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        key = data["k"]
        if data["s"] != sort.value or not isinstance(key, list):
            raise CursorError(f"cursor is for sort {data['s']!r}, not {sort.value!r}")
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        if isinstance(exc, CursorError):
            raise
        raise CursorError(f"not a valid cursor: {cursor[:40]!r}") from None
    return key


class SlaTally(BaseModel):
    """Findings of one subject (and assignee) against their SLA deadline, counted by the store."""

    subject: str
    assignee: str | None
    met: int
    """Resolved in the window, at or before the deadline."""
    missed: int
    """Resolved in the window, after the deadline."""
    breached: int
    """Open or acknowledged, past the deadline at `now`."""
