"""The running service: users, API tokens, the service's secrets, our job-run history, the scheduler's lease and
APScheduler's job table; triage and SLA
columns on findings (open period, deadline, pre-breach start, assignee, risk acceptance expiry and approver).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINDING_COLUMNS = ("opened_at", "due_at", "warn_at", "assignee", "risk_expires", "risk_approver")
FINDING_INDEXES = {"ix_findings_due_at": ["due_at"], "ix_findings_severity_portal_url": ["severity", "portal_url"],
                   "ix_findings_first_seen": ["first_seen"], "ix_findings_last_seen": ["last_seen"]}


def upgrade() -> None:
    """Create the service tables; add the finding columns (the open period of a finding so far starts at
    its last reopening, else its first sighting; no deadline is set for older findings until the service
    sets them from the SLA matrix)."""
    op.create_table(
        "users",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("last_login", sa.String(32), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_users"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("user", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.String(32), nullable=True),
        sa.Column("revoked_at", sa.String(32), nullable=True),
        sa.Column("last_used", sa.String(32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["user"], ["users.name"], name="fk_api_tokens_user_users"),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
    )
    op.create_index("ix_api_tokens_user", "api_tokens", ["user"])
    op.create_table(
        "service_secrets",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_service_secrets"),
    )
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job", sa.String(64), nullable=False),
        sa.Column("slot", sa.String(32), nullable=False),
        sa.Column("started_at", sa.String(32), nullable=False),
        sa.Column("finished_at", sa.String(32), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("scan_run_id", sa.String(32), nullable=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("host", sa.Text(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_job_runs"),
    )
    op.create_index("ix_job_runs_job_slot", "job_runs", ["job", "slot"])
    op.create_index("ix_job_runs_started_at", "job_runs", ["started_at"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started", sa.Text(), nullable=True),
        sa.Column("acquired_at", sa.String(32), nullable=False),
        sa.Column("heartbeat_at", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )
    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(191), nullable=False),
        sa.Column("next_run_time", sa.Float(25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_apscheduler_jobs"),
    )
    op.create_index("ix_apscheduler_jobs_next_run_time", "apscheduler_jobs", ["next_run_time"])
    for column in FINDING_COLUMNS:
        kind = sa.Text() if column in ("assignee", "risk_approver") else sa.String(32)
        op.add_column("findings", sa.Column(column, kind, nullable=True))
    for name, columns in FINDING_INDEXES.items():
        op.create_index(name, "findings", columns)
    op.execute("""
        UPDATE findings SET opened_at = COALESCE(
            (SELECT MAX(e.at) FROM finding_events e
              WHERE e.fingerprint = findings.fingerprint AND e.new_status = 'open'), first_seen)
    """)


def downgrade() -> None:
    """Drop the service tables and the finding columns."""
    for name in FINDING_INDEXES:
        op.drop_index(name, table_name="findings")
    with op.batch_alter_table("findings") as batch:
        for column in reversed(FINDING_COLUMNS):
            batch.drop_column(column)
    op.drop_index("ix_apscheduler_jobs_next_run_time", table_name="apscheduler_jobs")
    op.drop_table("apscheduler_jobs")
    op.drop_table("leases")
    op.drop_index("ix_job_runs_started_at", table_name="job_runs")
    op.drop_index("ix_job_runs_job_slot", table_name="job_runs")
    op.drop_table("job_runs")
    op.drop_table("service_secrets")
    op.drop_index("ix_api_tokens_user", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("users")
