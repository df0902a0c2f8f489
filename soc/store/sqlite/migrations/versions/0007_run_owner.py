"""Runs record the process that runs them and its heartbeat: a run left by a killed process is known at once.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("owner_host", "owner_pid", "owner_started", "heartbeat_at")


def upgrade() -> None:
    """Add the owner (host, pid, start token) and heartbeat of `scan_runs` (NULL for older runs)."""
    op.add_column("scan_runs", sa.Column("owner_host", sa.Text(), nullable=True))
    op.add_column("scan_runs", sa.Column("owner_pid", sa.Integer(), nullable=True))
    op.add_column("scan_runs", sa.Column("owner_started", sa.Text(), nullable=True))
    op.add_column("scan_runs", sa.Column("heartbeat_at", sa.String(32), nullable=True))


def downgrade() -> None:
    """Drop the owner and heartbeat columns."""
    with op.batch_alter_table("scan_runs") as batch:
        for column in reversed(COLUMNS):
            batch.drop_column(column)
