"""Observations name the checks they could not judge (e.g. a revocation responder down): those resolve nothing.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add `observations.unjudged` (older observations judged everything they covered)."""
    op.add_column("observations", sa.Column("unjudged", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    """Drop `observations.unjudged`."""
    with op.batch_alter_table("observations") as batch:
        batch.drop_column("unjudged")
