"""users, projects, role bindings, login throttling; tokens owned by users; every record in a project

Existing data moves into project `default` (id `default`); existing tokens belong to the platform admin `admin`
(no password until one is set): `bootstrap-admin` stays unscoped, every other token is scoped to `default` with
its old role, so each keeps exactly the reach it had.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 19:20:00
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

DEFAULT_PROJECT = "default"
BOOTSTRAP_TOKEN = "bootstrap-admin"  # noqa: S105 (a token's name)
ADMIN_USER = "admin"
OWNED = ("credentials", "clusters", "hosts", "jobs", "artifacts")


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(tzinfo=None) if op.get_bind().dialect.name == "sqlite" else now


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", name="uq_projects_name"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("platform_admin", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_table(
        "role_bindings",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("project_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_role_bindings_user_id", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_role_bindings_project_id", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "project_id"),
    )
    op.create_index("ix_role_bindings_project_id", "role_bindings", ["project_id"])
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    now = _now()
    admin_id = uuid.uuid4().hex
    projects = sa.table("projects", sa.column("id"), sa.column("name"), sa.column("created_at", sa.DateTime()))
    users = sa.table(
        "users",
        sa.column("id"),
        sa.column("username"),
        sa.column("platform_admin", sa.Boolean()),
        sa.column("disabled", sa.Boolean()),
        sa.column("source"),
        sa.column("created_at", sa.DateTime()),
    )
    op.bulk_insert(projects, [{"id": DEFAULT_PROJECT, "name": DEFAULT_PROJECT, "created_at": now}])
    op.bulk_insert(
        users,
        [
            {
                "id": admin_id,
                "username": ADMIN_USER,
                "platform_admin": True,
                "disabled": False,
                "source": "local",
                "created_at": now,
            }
        ],
    )

    for table in OWNED:  # nullable first, filled, then NOT NULL
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("project_id", sa.String(length=32), nullable=True))
            batch_op.create_foreign_key(f"fk_{table}_project_id", "projects", ["project_id"], ["id"])
            batch_op.create_index(f"ix_{table}_project_id", ["project_id"], unique=False)
        op.execute(sa.text(f"UPDATE {table} SET project_id = :p").bindparams(p=DEFAULT_PROJECT))  # noqa: S608
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("project_id", existing_type=sa.String(length=32), nullable=False)

    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("project_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key("fk_tokens_user_id", "users", ["user_id"], ["id"], ondelete="CASCADE")
        batch_op.create_foreign_key("fk_tokens_project_id", "projects", ["project_id"], ["id"], ondelete="CASCADE")
        batch_op.create_index("ix_tokens_user_id", ["user_id"], unique=False)
        batch_op.create_index("ix_tokens_project_id", ["project_id"], unique=False)
    op.execute(sa.text("UPDATE tokens SET user_id = :u").bindparams(u=admin_id))
    op.execute(
        sa.text("UPDATE tokens SET project_id = :p WHERE name <> :b").bindparams(p=DEFAULT_PROJECT, b=BOOTSTRAP_TOKEN)
    )
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.alter_column("user_id", existing_type=sa.String(length=32), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_tokens_project_id")
        batch_op.drop_index("ix_tokens_user_id")
        batch_op.drop_constraint("fk_tokens_project_id", type_="foreignkey")
        batch_op.drop_constraint("fk_tokens_user_id", type_="foreignkey")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("project_id")
        batch_op.drop_column("user_id")
    for table in reversed(OWNED):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_project_id")
            batch_op.drop_constraint(f"fk_{table}_project_id", type_="foreignkey")
            batch_op.drop_column("project_id")
    op.drop_table("login_throttle")
    op.drop_index("ix_role_bindings_project_id", table_name="role_bindings")
    op.drop_table("role_bindings")
    op.drop_table("users")
    op.drop_table("projects")
