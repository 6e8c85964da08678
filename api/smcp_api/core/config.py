"""Service settings (pydantic-settings; every field can be set as SMCP_<NAME> in the environment)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from smcp_api import paths

DEFAULT_DATA_DIR = Path("/var/lib/smcp/api")


def _seconds(default: float, *, hi: float, doc: str, lo: float | None = None) -> Any:
    """A duration setting in seconds: above 0 (or at least `lo` when given), at most `hi`."""
    if lo is None:
        return Field(default=default, gt=0, le=hi, description=doc)
    return Field(default=default, ge=lo, le=hi, description=doc)


def _bounded(default: int, *, lo: int, hi: int, doc: str) -> Any:
    """A count or size setting: a whole number from `lo` to `hi`."""
    return Field(default=default, ge=lo, le=hi, description=doc)


class LdapGroupRole(BaseModel):
    """One line of the LDAP group -> role mapping: a group grants a role in a project, or platform admin."""

    model_config = ConfigDict(extra="forbid")

    group: str = Field(min_length=1, max_length=1024, description="Group DN, or its cn.")
    project: str | None = Field(default=None, max_length=63, description="Project name the role applies in.")
    role: Literal["viewer", "operator", "admin"] | None = None
    platform_admin: bool = False

    @model_validator(mode="after")
    def _role_or_admin(self) -> LdapGroupRole:
        if not self.platform_admin and (self.project is None or self.role is None):
            raise ValueError(f"group {self.group!r}: give both project and role, or platform_admin: true")
        return self


class Settings(BaseSettings):
    """Everything the API service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="SMCP_", extra="ignore")

    data_dir: Path = Field(default=DEFAULT_DATA_DIR, description="Service state: SQLite file, secret key, admin token.")
    db_url: str | None = Field(default=None, description="SQLAlchemy URL; default sqlite:///<data_dir>/smcp.db.")
    secret_key: str | None = Field(
        default=None, description="Fernet key for credentials; default: <data_dir>/secret.key."
    )
    workers: int = _bounded(
        4,
        lo=0,
        hi=64,
        doc="Jobs run at the same time (thread pool size); 0 = no in-process worker (jobs stay pending).",
    )
    broker_url: str = Field(
        default="",
        max_length=2048,
        pattern=r"^(amqps?://\S+)?$",
        description="AMQP URL of RabbitMQ (amqp://user:password@host:5672/vhost); empty = the embedded default "
        "(jobs run in the API process, no broker). With a broker, smcp-api only publishes job ids and the "
        "smcp-worker processes run the jobs (SMCP_WORKERS slots each).",
    )
    broker_sweep_interval: float = _seconds(
        10.0, hi=3600, doc="Seconds between smcp-worker sweeps that re-publish pending jobs whose message was lost."
    )
    broker_republish_after: float = _seconds(
        30.0,
        hi=86400,
        doc="A job pending longer than this many seconds is published again by the sweep "
        "(a duplicate is harmless: the claim is a guarded state change).",
    )
    collections_path: Path | None = Field(default=None, description="ANSIBLE_COLLECTIONS_PATH for jobs.")
    ansible_config: Path | None = Field(
        default=None, description="ANSIBLE_CONFIG for jobs (default: the repo's ansible.cfg)."
    )
    jobs_dir: Path = Field(
        default=Path("/var/lib/smcp/jobs"),
        description="Parent of the per-job private directories (0711; each job's own is 0700 and its job user's). "
        "Every directory above it must be searchable by other users.",
    )
    host_key_scan_timeout: float = _seconds(
        5.0, hi=60, doc="Seconds a job waits for a host without a pinned key to offer its keys (first contact)."
    )
    job_user_prefix: str = Field(
        default="smcp-job",
        pattern=r"^[a-z_][a-z0-9_-]{0,20}$",
        description="Jobs run as the system users PREFIX1..PREFIXn (n = workers), created when missing as root.",
    )
    poll_interval: float = _seconds(0.5, hi=10, doc="Seconds between worker scans for pending jobs.")
    lease_ttl: float = _seconds(
        30.0,
        lo=1,
        hi=3600,
        doc="Seconds a running job's lease lasts without a heartbeat from its worker (refreshed every "
        "lease_ttl/3); after that any API or worker process marks the job failed (interrupted) and frees its locks.",
    )
    sse_poll_interval: float = _seconds(
        5.0,
        hi=300,
        doc="Seconds between polls of an SSE stream that nothing woke: new events and status changes wake "
        "streams at once (PostgreSQL LISTEN/NOTIFY on every replica; in-process on SQLite), this poll only covers a "
        "lost notification.",
    )
    event_batch: int = _bounded(100, lo=1, hi=10000, doc="Events persisted per database write.")
    event_flush_seconds: float = _seconds(
        0.1, hi=10, doc="Longest delay between a job event and its commit to the store (events are batched within it)."
    )
    max_artifact_bytes: int = _bounded(
        512 * 1024 * 1024,
        lo=1024,
        hi=64 * 1024 * 1024 * 1024,
        doc="Largest artifact a job may leave (an etcd snapshot, a cluster's admin kubeconfig) in bytes; "
        "the store keeps every artifact; a job whose artifact is larger fails and says so.",
    )
    admin_token_file: Path | None = Field(
        default=None, description="Where the bootstrap admin token is written (0600)."
    )
    max_body_bytes: int = _bounded(
        1024 * 1024,
        lo=1024,
        hi=256 * 1024 * 1024,
        doc="Largest request body in bytes (JSON or YAML); larger ones get 413 before any parsing.",
    )
    max_body_depth: int = _bounded(
        32,
        lo=4,
        hi=128,
        doc="Deepest nesting of lists and mappings in a request body; deeper ones get 422, never stored.",
    )
    audit_retention_days: int = _bounded(
        365, lo=1, hi=36500, doc="Days the audit log keeps an entry; older ones are deleted at start and periodically."
    )
    audit_prune_interval: float = _seconds(3600.0, hi=86400, doc="Seconds between deletions of expired audit entries.")
    ldap_url: str = Field(
        default="",
        max_length=2048,
        pattern=r"^(ldaps?://\S+)?$",
        description="LDAP server for logins (ldap://host:389 or ldaps://host:636); empty = LDAP login off.",
    )
    ldap_start_tls: bool = Field(default=False, description="Upgrade an ldap:// connection with StartTLS.")
    ldap_bind_dn: str = Field(
        default="", max_length=1024, description="DN that searches for users and groups; empty = anonymous search."
    )
    ldap_bind_password: SecretStr = Field(default=SecretStr(""), description="Password of ldap_bind_dn.")
    ldap_user_base: str = Field(default="", max_length=1024, description="Search base of users (ou=people,...).")
    ldap_user_attr: str = Field(
        default="uid", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,63}$", description="Attribute holding the login name."
    )
    ldap_group_base: str = Field(default="", max_length=1024, description="Search base of groups (ou=groups,...).")
    ldap_group_roles: list[LdapGroupRole] = Field(
        default_factory=list,
        max_length=1000,
        description='Group -> role mapping, JSON: [{"group": "cn=ops,ou=groups,dc=example,dc=org", "project": '
        '"default", "role": "operator"}, {"group": "admins", "platform_admin": true}]; a group is named by DN or '
        "cn. A user's binding in a project is the highest role of the groups they are in; none = no access.",
    )
    ldap_timeout: float = _seconds(5.0, hi=60, doc="Seconds to connect to and wait for the LDAP server.")

    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{self.data_dir / 'smcp.db'}"

    def token_file(self) -> Path:
        return self.admin_token_file or self.data_dir / "admin.token"

    def resolved_collections_path(self) -> Path:
        if self.collections_path:
            return self.collections_path
        try:
            return paths.repo_root() / ".venv" / "collections"
        except RuntimeError:  # installed outside the working tree: Ansible's own default
            return Path.home() / ".ansible" / "collections"

    def resolved_ansible_config(self) -> Path | None:
        if self.ansible_config:
            return self.ansible_config
        try:
            cfg = paths.repo_root() / "ansible.cfg"
        except RuntimeError:
            return None
        return cfg if cfg.is_file() else None


class SettingsError(ValueError):
    """A setting from the environment or the command line is refused; the message never holds its value."""


def load_settings(**overrides: object) -> Settings:
    """Settings from SMCP_* and `overrides`; a refused value raises SettingsError naming the variable and the rule.

    The value itself is left out: SMCP_DB_URL and SMCP_BROKER_URL may carry a password.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise SettingsError(f"setting {field} (SMCP_{field.upper()}): {first['msg']}") from None


@lru_cache
def get_settings() -> Settings:
    return Settings()
