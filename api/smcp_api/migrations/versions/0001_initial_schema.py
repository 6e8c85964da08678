"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 12:38:22.073281
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _col(name: str, type_: Any, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, type_, nullable=nullable)


def _str(name: str, length: int, nullable: bool = False) -> sa.Column[Any]:
    return _col(name, sa.String(length=length), nullable)


def _time(name: str, nullable: bool = False) -> sa.Column[Any]:
    return _col(name, sa.DateTime(timezone=True), nullable)


def _named_table(table: str, name_length: int, *items: Any, unique: tuple[str, ...] = ()) -> None:
    """A table keyed by a 32-character `id` with a unique `name`: id, name, the items, then the keys."""
    op.create_table(
        table,
        _str("id", 32),
        _str("name", name_length),
        *items,
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        *(sa.UniqueConstraint(column) for column in unique),
    )


def _indexes(table: str, *columns: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        for column in columns:
            batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column], unique=False)


def _drop_indexes(table: str, *columns: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        for column in reversed(columns):
            batch_op.drop_index(batch_op.f(f"ix_{table}_{column}"))


def upgrade() -> None:
    _named_table(
        "clusters",
        63,
        _str("kubernetes_version", 32),
        _str("cni", 32),
        _str("pod_cidr", 64),
        _str("service_cidr", 64),
        _str("control_plane_endpoint", 255, nullable=True),
        _col("options", sa.JSON()),
        _time("created_at"),
    )
    _named_table(
        "credentials",
        100,
        _str("kind", 32),
        _str("username", 64, nullable=True),
        _str("fingerprint", 128),
        _col("secret", sa.LargeBinary()),
        _time("created_at"),
    )
    op.create_table(
        "idempotency_keys",
        _str("token_id", 32),
        _str("key", 255),
        _str("request_hash", 64),
        _col("status_code", sa.Integer()),
        _col("response", sa.JSON()),
        _time("created_at"),
        sa.PrimaryKeyConstraint("token_id", "key"),
    )
    op.create_table(
        "jobs",
        _str("id", 32),
        _str("operation", 32),
        _str("status", 16),
        _col("status_reason", sa.Text(), nullable=True),
        _str("cluster_id", 32, nullable=True),
        _col("host_ids", sa.JSON()),
        _col("params", sa.JSON()),
        _str("created_by", 32, nullable=True),
        _col("cancel_requested", sa.Boolean()),
        _time("created_at"),
        _time("started_at", nullable=True),
        _time("finished_at", nullable=True),
        _col("rc", sa.Integer(), nullable=True),
        _col("host_summary", sa.JSON()),
        _col("event_count", sa.Integer()),
        _col("task_count", sa.Integer()),
        sa.PrimaryKeyConstraint("id"),
    )
    _indexes("jobs", "cluster_id", "created_at", "status")
    _named_table(
        "tokens",
        100,
        _str("role", 16),
        _str("token_hash", 64),
        _time("created_at"),
        _time("last_used_at", nullable=True),
        unique=("token_hash",),
    )
    _named_table(
        "hosts",
        63,
        _str("address", 255),
        _str("ssh_user", 64),
        _col("ssh_port", sa.Integer()),
        _col("labels", sa.JSON()),
        _str("credential_id", 32),
        _col("roles", sa.JSON()),
        _col("vars", sa.JSON()),
        _col("known_hosts", sa.Text(), nullable=True),
        _str("cluster_id", 32, nullable=True),
        _col("cluster_roles", sa.JSON()),
        _col("last_preflight", sa.JSON(), nullable=True),
        _time("created_at"),
        sa.ForeignKeyConstraint(["cluster_id"], ["clusters.id"]),
        sa.ForeignKeyConstraint(["credential_id"], ["credentials.id"]),
    )
    _indexes("hosts", "cluster_id", "credential_id")
    op.create_table(
        "job_events",
        _col("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite")),
        _str("job_id", 32),
        _col("counter", sa.Integer()),
        _str("event", 64),
        _str("host", 255, nullable=True),
        _col("task", sa.Text(), nullable=True),
        _col("play", sa.Text(), nullable=True),
        _col("stdout", sa.Text()),
        _col("data", sa.JSON()),
        _time("created_at"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id", "counter", name="uq_job_events_job_counter"),
    )
    op.create_table(
        "locks",
        _str("key", 80),
        _str("job_id", 32),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key"),
    )
    _indexes("locks", "job_id")


def downgrade() -> None:
    _drop_indexes("locks", "job_id")
    op.drop_table("locks")
    op.drop_table("job_events")
    _drop_indexes("hosts", "cluster_id", "credential_id")
    op.drop_table("hosts")
    op.drop_table("tokens")
    _drop_indexes("jobs", "cluster_id", "created_at", "status")
    for table in ("jobs", "idempotency_keys", "credentials", "clusters"):
        op.drop_table(table)
