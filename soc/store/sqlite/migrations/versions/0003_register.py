"""Register of information systems and anti-malware coverage, versioned (valid_from / valid_to).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.String(32)


def _versions(name: str, key: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(key, sa.String(64), nullable=False),
        sa.Column("valid_from", _TIME, nullable=False),
        sa.Column("valid_to", _TIME, nullable=True),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{name}"),
    )


def upgrade() -> None:
    """Create `system_versions` and `coverage_versions`."""
    _versions("system_versions", "system_id")
    op.create_index("ix_system_versions_system_id_valid_from", "system_versions", ["system_id", "valid_from"])
    op.create_index("ix_system_versions_valid_from_valid_to", "system_versions", ["valid_from", "valid_to"])
    _versions("coverage_versions", "agency")
    op.create_index("ix_coverage_versions_agency_valid_from", "coverage_versions", ["agency", "valid_from"])


def downgrade() -> None:
    """Drop the register tables."""
    op.drop_index("ix_coverage_versions_agency_valid_from", table_name="coverage_versions")
    op.drop_table("coverage_versions")
    op.drop_index("ix_system_versions_valid_from_valid_to", table_name="system_versions")
    op.drop_index("ix_system_versions_system_id_valid_from", table_name="system_versions")
    op.drop_table("system_versions")
