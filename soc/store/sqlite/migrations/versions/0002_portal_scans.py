"""Per-portal assessment of each run: collectors' completeness, TLS grade and overall score.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create `portal_scans`."""
    op.create_table(
        "portal_scans",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("portal_url", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.String(32), nullable=False),
        sa.Column("collectors", sa.JSON(), nullable=False),
        sa.Column("tls_grade", sa.String(4), nullable=True),
        sa.Column("grade_without_trust", sa.String(4), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("category_scores", sa.JSON(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("label_valid", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["scan_runs.id"], name="fk_portal_scans_run_id_scan_runs"),
        sa.PrimaryKeyConstraint("run_id", "portal_url", name="pk_portal_scans"),
    )
    op.create_index("ix_portal_scans_portal_url", "portal_scans", ["portal_url"])
    op.create_index("ix_portal_scans_recorded_at", "portal_scans", ["recorded_at"])


def downgrade() -> None:
    """Drop `portal_scans`."""
    op.drop_index("ix_portal_scans_recorded_at", table_name="portal_scans")
    op.drop_index("ix_portal_scans_portal_url", table_name="portal_scans")
    op.drop_table("portal_scans")
