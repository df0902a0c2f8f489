"""Initial schema: scan runs, observations, findings, run/finding links and status history.

Revision ID: 0001
Revises:
Create Date: 2025-11-27

Datetimes are ISO-8601 UTC text (String(32)); `data` is JSON text.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.String(32)
_ID = sa.String(32)
_STATUS = sa.String(16)


def upgrade() -> None:
    """Create every table and index of the store."""
    op.create_table(
        "scan_runs",
        sa.Column("id", _ID, nullable=False),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("finished_at", _TIME, nullable=True),
        sa.Column("status", _STATUS, nullable=False),
        sa.Column("inventory", sa.Text(), nullable=False),
        sa.Column("portal_count", sa.Integer(), nullable=False),
        sa.Column("portals_done", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scan_runs"),
    )
    op.create_table(
        "observations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", _ID, nullable=False),
        sa.Column("portal_url", sa.Text(), nullable=False),
        sa.Column("collector", sa.Text(), nullable=False),
        sa.Column("observed_at", _TIME, nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["scan_runs.id"], name="fk_observations_run_id_scan_runs"),
        sa.PrimaryKeyConstraint("id", name="pk_observations"),
    )
    op.create_index("ix_observations_run_id_portal_url", "observations", ["run_id", "portal_url"])
    op.create_table(
        "findings",
        sa.Column("fingerprint", _ID, nullable=False),
        sa.Column("portal_url", sa.Text(), nullable=False),
        sa.Column("check_id", sa.Text(), nullable=False),
        sa.Column("severity", _STATUS, nullable=False),
        sa.Column("title_vi", sa.Text(), nullable=False),
        sa.Column("title_en", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("remediation_vi", sa.Text(), nullable=False),
        sa.Column("remediation_en", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("status", _STATUS, nullable=False),
        sa.Column("first_seen", _TIME, nullable=False),
        sa.Column("last_seen", _TIME, nullable=False),
        sa.Column("resolved_at", _TIME, nullable=True),
        sa.Column("last_run_id", _ID, nullable=False),
        sa.Column("status_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["last_run_id"], ["scan_runs.id"], name="fk_findings_last_run_id_scan_runs"),
        sa.PrimaryKeyConstraint("fingerprint", name="pk_findings"),
    )
    op.create_index("ix_findings_portal_url", "findings", ["portal_url"])
    op.create_index("ix_findings_status", "findings", ["status"])
    op.create_index("ix_findings_check_id", "findings", ["check_id"])
    op.create_table(
        "run_findings",
        sa.Column("run_id", _ID, nullable=False),
        sa.Column("fingerprint", _ID, nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["scan_runs.id"], name="fk_run_findings_run_id_scan_runs"),
        sa.ForeignKeyConstraint(
            ["fingerprint"], ["findings.fingerprint"], name="fk_run_findings_fingerprint_findings"
        ),
        sa.PrimaryKeyConstraint("run_id", "fingerprint", name="pk_run_findings"),
    )
    op.create_table(
        "finding_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("fingerprint", _ID, nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("run_id", _ID, nullable=True),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("old_status", _STATUS, nullable=True),
        sa.Column("new_status", _STATUS, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["fingerprint"], ["findings.fingerprint"], name="fk_finding_events_fingerprint_findings"
        ),
        sa.ForeignKeyConstraint(["run_id"], ["scan_runs.id"], name="fk_finding_events_run_id_scan_runs"),
        sa.PrimaryKeyConstraint("id", name="pk_finding_events"),
    )
    op.create_index("ix_finding_events_fingerprint", "finding_events", ["fingerprint"])


def downgrade() -> None:
    """Drop everything, dependents first."""
    op.drop_table("finding_events")
    op.drop_table("run_findings")
    op.drop_table("findings")
    op.drop_table("observations")
    op.drop_table("scan_runs")
