"""live events and shared artifacts: NOTIFY triggers on job events and job status (PostgreSQL), artifacts tables

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CHANNEL = "smcp_job_events"  # smcp_api.events.CHANNEL (listened to by every replica)

NOTIFY = (
    f"""CREATE OR REPLACE FUNCTION smcp_notify_job_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('{CHANNEL}', job_id || ':' || max(counter)) FROM new_rows GROUP BY job_id;
  RETURN NULL;
END $$""",
    """CREATE TRIGGER job_events_notify AFTER INSERT ON job_events
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION smcp_notify_job_events()""",
    f"""CREATE OR REPLACE FUNCTION smcp_notify_job_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('{CHANNEL}', NEW.id || ':status');
  RETURN NULL;
END $$""",
    """CREATE TRIGGER jobs_status_notify AFTER UPDATE OF status ON jobs
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION smcp_notify_job_status()""",
)
DROP_NOTIFY = (
    "DROP TRIGGER IF EXISTS jobs_status_notify ON jobs",
    "DROP FUNCTION IF EXISTS smcp_notify_job_status()",
    "DROP TRIGGER IF EXISTS job_events_notify ON job_events",
    "DROP FUNCTION IF EXISTS smcp_notify_job_events()",
)


def upgrade() -> None:
    op.create_table(
        "artifacts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=True),
        sa.Column("cluster", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("encrypted", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("cluster", "kind", "name", name="uq_artifacts_cluster_kind_name"),
    )
    with op.batch_alter_table("artifacts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_artifacts_cluster"), ["cluster"], unique=False)
        batch_op.create_index(batch_op.f("ix_artifacts_job_id"), ["job_id"], unique=False)
    op.create_table(
        "artifact_chunks",
        sa.Column("artifact_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["artifact_id"], ["artifacts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("artifact_id", "seq"),
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in NOTIFY:  # as written (no bind parameters: ':status' is text)
            op.get_bind().exec_driver_sql(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in DROP_NOTIFY:
            op.get_bind().exec_driver_sql(statement)
    op.drop_table("artifact_chunks")
    with op.batch_alter_table("artifacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_artifacts_job_id"))
        batch_op.drop_index(batch_op.f("ix_artifacts_cluster"))
    op.drop_table("artifacts")
