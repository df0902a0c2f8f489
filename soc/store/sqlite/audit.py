"""The audit log on SQLite: append-only rows of who changed what, when, before → after."""

from __future__ import annotations

from sqlalchemy import Engine, insert, select

from soc.core.models import AuditEntry
from soc.store.sqlite.schema import BEGIN_OPTION, audit_log


class SqliteAuditLog:
    """The `AuditLog` protocol on the backend's SQLite database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})

    def append(self, entry: AuditEntry) -> AuditEntry:
        """Keep one entry; return it with its id."""
        row = entry.model_dump(mode="python", exclude={"id"})
        row["before"] = entry.model_dump(mode="json")["before"]
        row["after"] = entry.model_dump(mode="json")["after"]
        with self._writer.begin() as conn:
            new_id = conn.execute(insert(audit_log).values(row)).inserted_primary_key
        return entry.model_copy(update={"id": new_id[0] if new_id else None})

    def entries(self, action_prefix: str | None = None, subject: str | None = None,
                limit: int = 100) -> list[AuditEntry]:
        """The newest entries first, optionally only of actions starting with a prefix or of one subject."""
        stmt = select(audit_log)
        if action_prefix:
            stmt = stmt.where(audit_log.c.action.startswith(action_prefix, autoescape=True))
        if subject is not None:
            stmt = stmt.where(audit_log.c.subject == subject)
        stmt = stmt.order_by(audit_log.c.id.desc()).limit(limit)
        with self._engine.connect() as conn:
            return [AuditEntry.model_validate(dict(row)) for row in conn.execute(stmt).mappings()]
