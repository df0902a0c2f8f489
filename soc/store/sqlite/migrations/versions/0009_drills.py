"""Tabletop drills: sessions (with the scenario snapshot they run from), their append-only event log, and the
corrective actions of their after-action reviews.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the drill tables."""
    op.create_table(
        "drill_sessions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("scenario_id", sa.String(64), nullable=False),
        sa.Column("scenario_version", sa.Integer(), nullable=False),
        sa.Column("title_vi", sa.Text(), nullable=False),
        sa.Column("title_en", sa.Text(), nullable=False),
        sa.Column("scenario_text", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("drill_date", sa.String(10), nullable=False),
        sa.Column("ruleset", sa.String(64), nullable=False),
        sa.Column("facilitator", sa.String(64), nullable=False),
        sa.Column("participants", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
        sa.Column("target_system", sa.String(64), nullable=True),
        sa.Column("target_level", sa.Integer(), nullable=False),
        sa.Column("target_agency", sa.String(64), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("scorecard", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_drill_sessions"),
    )
    op.create_index("ix_drill_sessions_drill_date", "drill_sessions", ["drill_date"])
    op.create_table(
        "drill_events",
        sa.Column("session_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("real_at", sa.String(32), nullable=False),
        sa.Column("exercise_seconds", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["drill_sessions.id"],
                                name="fk_drill_events_session_id_drill_sessions"),
        sa.PrimaryKeyConstraint("session_id", "seq", name="pk_drill_events"),
    )
    op.create_table(
        "drill_actions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("session_id", sa.String(32), nullable=False),
        sa.Column("scenario_id", sa.String(64), nullable=False),
        sa.Column("expectation_id", sa.String(64), nullable=False),
        sa.Column("text_vi", sa.Text(), nullable=False),
        sa.Column("text_en", sa.Text(), nullable=False),
        sa.Column("owner_agency", sa.String(64), nullable=True),
        sa.Column("due", sa.String(10), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("done_at", sa.String(32), nullable=True),
        sa.Column("done_by", sa.String(64), nullable=True),
        sa.Column("done_note", sa.Text(), nullable=True),
        sa.Column("confirmed_at", sa.String(32), nullable=True),
        sa.Column("confirmed_by", sa.Text(), nullable=True),
        sa.Column("confirm_findings", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["drill_sessions.id"],
                                name="fk_drill_actions_session_id_drill_sessions"),
        sa.PrimaryKeyConstraint("id", name="pk_drill_actions"),
    )
    op.create_index("ix_drill_actions_session_id", "drill_actions", ["session_id"])


def downgrade() -> None:
    """Drop the drill tables."""
    op.drop_table("drill_actions")
    op.drop_table("drill_events")
    op.drop_table("drill_sessions")
