"""Claims (workers sharing a store split a scan slot's portals) and the daily KPI figures.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the claims and the KPI history."""
    op.create_table(
        "claims",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_claims"),
    )
    op.create_table(
        "kpi_snapshots",
        sa.Column("as_of", sa.String(10), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("kpi_id", sa.String(64), nullable=False),
        sa.Column("title_vi", sa.Text(), nullable=False),
        sa.Column("title_en", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(32), nullable=False),
        sa.Column("target_percent", sa.Float(), nullable=True),
        sa.Column("numerator", sa.Integer(), nullable=False),
        sa.Column("denominator", sa.Integer(), nullable=False),
        sa.Column("percent", sa.Float(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("ruleset", sa.String(64), nullable=False),
        sa.Column("recorded_at", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("as_of", "scope", "kpi_id", name="pk_kpi_snapshots"),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("kpi_snapshots")
    op.drop_table("claims")
