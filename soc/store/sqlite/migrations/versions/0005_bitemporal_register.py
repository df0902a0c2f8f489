"""Bitemporal register: record time (recorded_at / superseded_at) beside valid time (valid_from / valid_to).

Until now one import time served as both. Each old version is rebuilt as it was believed: recorded when
it was applied, valid until further notice, superseded when the next version came; plus the bounded copy
[valid_from, valid_to) recorded then. So "as known at T" reproduces what the toolkit held at T.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = (("system_versions", "system_id"), ("coverage_versions", "agency"))


def upgrade() -> None:
    """Add the record-time columns and rebuild each replaced version as it was believed."""
    for table, key in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("recorded_at", sa.String(32), nullable=True))
            batch.add_column(sa.Column("superseded_at", sa.String(32), nullable=True))
        op.execute(f"UPDATE {table} SET recorded_at = valid_from, superseded_at = valid_to")
        op.execute(
            f"INSERT INTO {table} ({key}, valid_from, valid_to, actor, source, data, recorded_at, superseded_at) "
            f"SELECT {key}, valid_from, valid_to, actor, source, data, superseded_at, NULL FROM {table} "
            "WHERE superseded_at IS NOT NULL"
        )
        op.execute(f"UPDATE {table} SET valid_to = NULL WHERE superseded_at IS NOT NULL")
        with op.batch_alter_table(table) as batch:
            batch.alter_column("recorded_at", existing_type=sa.String(32), nullable=False)
        op.create_index(f"ix_{table}_superseded_at", table, ["superseded_at"])


def downgrade() -> None:
    """Keep only what is believed now (the valid-time chain) and drop the record-time columns."""
    for table, _key in _TABLES:
        op.drop_index(f"ix_{table}_superseded_at", table_name=table)
        op.execute(f"DELETE FROM {table} WHERE superseded_at IS NOT NULL")
        with op.batch_alter_table(table) as batch:
            batch.drop_column("superseded_at")
            batch.drop_column("recorded_at")
