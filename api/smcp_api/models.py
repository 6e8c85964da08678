"""SQLAlchemy 2 ORM models: the store behind every API resource."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: sa.JSON, list[Any]: sa.JSON, datetime: UTCDateTime}


DEFAULT_PROJECT_ID = "default"  # the project existing data moved into (migration 0004); also its name


def project_fk() -> Mapped[str]:
    """The project a record belongs to. Routes always give it (the caller's project; tests/api/routes/
    test_tenancy.py checks each kind lands in the project it was made in); the default serves code that makes
    rows without a request (tests, benches, tools), as in the store from before projects."""
    return mapped_column(sa.ForeignKey("projects.id"), index=True, default=DEFAULT_PROJECT_ID)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(sa.String(63), unique=True)
    description: Mapped[str | None] = mapped_column(sa.String(255), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # argon2id (identity.py); None: no password login (the migrated admin until one is set, directory users)
    password_hash: Mapped[str | None] = mapped_column(sa.String(255), default=None)
    platform_admin: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    source: Mapped[str] = mapped_column(sa.String(16), default="local")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)


class RoleBinding(Base):
    """A user's role (viewer, operator, admin) in one project."""

    __tablename__ = "role_bindings"

    user_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[str] = mapped_column(
        sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoginThrottle(Base):
    """Failed logins per (username, source address), shared by every replica (identity.py)."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(sa.Integer, default=0)
    blocked_until: Mapped[datetime | None] = mapped_column(default=None)
    last_failure_at: Mapped[datetime] = mapped_column(default=utcnow)


class Token(Base):
    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    role: Mapped[str] = mapped_column(sa.String(16))  # the token's ceiling in any project
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # None: any project the user is a member of; else only this one
    project_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("projects.id", ondelete="CASCADE"), index=True, default=None
    )
    expires_at: Mapped[datetime | None] = mapped_column(default=None)


class Credential(Base):
    __tablename__ = "credentials"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = project_fk()
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    username: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    fingerprint: Mapped[str] = mapped_column(sa.String(128))
    secret: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Cluster(Base):
    __tablename__ = "clusters"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = project_fk()
    name: Mapped[str] = mapped_column(sa.String(63), unique=True)
    kubernetes_version: Mapped[str] = mapped_column(sa.String(32))
    cni: Mapped[str] = mapped_column(sa.String(32))
    pod_cidr: Mapped[str] = mapped_column(sa.String(64))
    service_cidr: Mapped[str] = mapped_column(sa.String(64))
    control_plane_endpoint: Mapped[str | None] = mapped_column(sa.String(255), default=None)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Host(Base):
    __tablename__ = "hosts"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = project_fk()
    name: Mapped[str] = mapped_column(sa.String(63), unique=True)
    address: Mapped[str] = mapped_column(sa.String(255))
    ssh_user: Mapped[str] = mapped_column(sa.String(64))
    ssh_port: Mapped[int] = mapped_column(sa.Integer)
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    credential_id: Mapped[str] = mapped_column(sa.ForeignKey("credentials.id"), index=True)
    roles: Mapped[list[Any]] = mapped_column(default=list)
    vars: Mapped[dict[str, Any]] = mapped_column(default=dict)
    known_hosts: Mapped[str | None] = mapped_column(sa.Text, default=None)
    cluster_id: Mapped[str | None] = mapped_column(sa.ForeignKey("clusters.id"), index=True, default=None)
    cluster_roles: Mapped[list[Any]] = mapped_column(default=list)
    last_preflight: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = project_fk()
    operation: Mapped[str] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(16), index=True, default="pending")
    status_reason: Mapped[str | None] = mapped_column(sa.Text, default=None)
    cluster_id: Mapped[str | None] = mapped_column(sa.String(32), index=True, default=None)
    host_ids: Mapped[list[Any]] = mapped_column(default=list)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str | None] = mapped_column(sa.String(32), default=None)
    cancel_requested: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    rc: Mapped[int | None] = mapped_column(sa.Integer, default=None)
    host_summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    event_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    task_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    # The lease (jobs/leases.py): the worker running the job and when it last said it still does.
    owner: Mapped[str | None] = mapped_column(sa.String(100), index=True, default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)


class Worker(Base):
    """A process that runs jobs (or only watches leases: slots 0), refreshed with its heartbeat."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    host: Mapped[str] = mapped_column(sa.String(255))
    pid: Mapped[int] = mapped_column(sa.Integer)
    # boot id and PID namespace: a process with the same `local` can tell whether `pid` still lives
    local: Mapped[str] = mapped_column(sa.String(100))
    slots: Mapped[int] = mapped_column(sa.Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobEvent(Base):
    __tablename__ = "job_events"
    __table_args__ = (sa.UniqueConstraint("job_id", "counter", name="uq_job_events_job_counter"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    job_id: Mapped[str] = mapped_column(sa.ForeignKey("jobs.id", ondelete="CASCADE"))
    counter: Mapped[int] = mapped_column(sa.Integer)
    event: Mapped[str] = mapped_column(sa.String(64))
    host: Mapped[str | None] = mapped_column(sa.String(255), default=None)
    task: Mapped[str | None] = mapped_column(sa.Text, default=None)
    play: Mapped[str | None] = mapped_column(sa.Text, default=None)
    stdout: Mapped[str] = mapped_column(sa.Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Lock(Base):
    """One row per busy cluster or host: the primary key makes 'one mutating job at a time' hold in the DB."""

    __tablename__ = "locks"

    key: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    job_id: Mapped[str] = mapped_column(sa.ForeignKey("jobs.id", ondelete="CASCADE"), index=True)


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"

    token_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int] = mapped_column(sa.Integer)
    response: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Artifact(Base):
    """What a job leaves for later (etcd snapshots, a cluster's admin kubeconfig and CA), kept in the store so that
    every replica serves it (artifacts.py). The content is in ArtifactChunk rows; sha256 is of the plaintext."""

    __tablename__ = "artifacts"
    __table_args__ = (sa.UniqueConstraint("cluster", "kind", "name", name="uq_artifacts_cluster_kind_name"),)

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = project_fk()  # its job's project
    job_id: Mapped[str | None] = mapped_column(sa.ForeignKey("jobs.id", ondelete="SET NULL"), index=True, default=None)
    cluster: Mapped[str] = mapped_column(sa.String(63), index=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    name: Mapped[str] = mapped_column(sa.String(255))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    encrypted: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ArtifactChunk(Base):
    """One piece of an artifact's content (at most artifacts.CHUNK_BYTES): read and written piece by piece."""

    __tablename__ = "artifact_chunks"

    artifact_id: Mapped[str] = mapped_column(sa.ForeignKey("artifacts.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)
