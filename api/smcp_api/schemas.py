"""Request and response models (pydantic v2). Requests forbid unknown fields."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, computed_field, field_validator, model_validator

from smcp_api import hostkeys, varpolicy, versions
from smcp_api.bodies import StoredList, StoredMap
from smcp_api.jobstates import JobStatus
from smcp_api.netrules import address as _rule_address
from smcp_api.netrules import cluster_networks, network
from smcp_api.netrules import hostname as _rule_hostname
from smcp_api.operations import OPERATIONS as OPERATIONS

Role = Literal["etcd", "control_plane", "workers"]
RoleName = Literal["viewer", "operator", "admin"]
Operation = Literal[
    "preflight",
    "prepare_hosts",
    "etcd_backup",
    "create_cluster",
    "add_nodes",
    "remove_node",
    "upgrade",
    "reset",
    "certs",
]
READ_ONLY_OPERATIONS = frozenset({"preflight"})

Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$"),
    Field(description="Lower-case letters, digits, '.', '-', '_'; starts and ends with a letter or digit."),
]
Id = Annotated[str, StringConstraints(min_length=1, max_length=32), Field(description="Resource id.")]
VAR_NAME_RE = varpolicy.VAR_NAME_RE
MANAGED_HOST_VARS = varpolicy.MANAGED_HOST_VARS


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Error(BaseModel):
    """Every error: `detail` names the field or resource, the value and the fix."""

    detail: Any = Field(description="A message, or for 422 a list of {loc, msg, type}.")


# ---------------------------------------------------------------- tokens
ExpiresIn = Annotated[
    int,
    Field(ge=60, le=31_536_000, description="Seconds until the token expires (60 s to 365 days); omit: never."),
]


class TokenCreate(Request):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._@-]*$")]
    role: RoleName = Field(description="admin > operator > viewer; at most the caller's role in the project.")
    project: Name | None = Field(
        default=None,
        description="Scope the token to this project (name); omit: any project of the user (a scoped calling "
        "token only makes tokens of its own project).",
    )
    expires_in: ExpiresIn | None = None


class TokenOut(BaseModel):
    id: str
    name: str
    role: RoleName
    user: str | None = Field(default=None, description="The owner's username.")
    project: str | None = Field(default=None, description="The project it is scoped to (name); null: not scoped.")
    created_at: datetime
    last_used_at: datetime | None = None
    expires_at: datetime | None = None


class TokenCreated(TokenOut):
    token: str | None = Field(
        description="The bearer token. Shown once; an idempotent replay returns null here (keep the first answer)."
    )


# ---------------------------------------------------------------- users, projects, login
Username = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$"),
    Field(description="Lower-case letters, digits, '.', '_', '-'; starts with a letter or digit."),
]
# bounded: argon2 over a huge body is work an attacker chooses; the policy (identity.py) says the rest
Password = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class LoginRequest(Request):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Password
    project: Name | None = Field(default=None, description="Scope the session's token to this project.")
    expires_in: Annotated[int, Field(ge=60, le=2_592_000)] = Field(
        default=43_200, description="Seconds the token lives (60 s to 30 days; default 12 h)."
    )


class BindingOut(BaseModel):
    project: str
    project_id: str
    role: RoleName


class UserOut(BaseModel):
    id: str
    username: str
    platform_admin: bool
    disabled: bool
    source: str = Field(description="`local` (password here) or `ldap`.")
    has_password: bool
    created_at: datetime
    last_login_at: datetime | None = None
    bindings: list[BindingOut] = Field(default_factory=list)


class LoginOut(BaseModel):
    token: str = Field(description="A bearer token of the user, shown once.")
    token_id: str
    expires_at: datetime
    user: UserOut


class MeOut(BaseModel):
    user: UserOut
    project: str = Field(description="The project this request acted in.")
    role: RoleName = Field(description="The caller's role there.")
    platform_admin: bool = Field(description="True for a platform admin's unscoped admin token.")
    token: TokenOut


class UserCreate(Request):
    username: Username
    password: Password | None = Field(default=None, description="Omit for a user who logs in through LDAP only.")
    platform_admin: bool = False


class UserUpdate(Request):
    password: Password | None = None
    platform_admin: bool | None = None
    disabled: bool | None = None


class PasswordChange(Request):
    current_password: Password
    password: Password


class ProjectCreate(Request):
    name: Name
    description: Annotated[str, StringConstraints(max_length=255)] | None = None


class ProjectOut(BaseModel):
    id: str
    name: str
    description: str | None
    created_at: datetime


class MemberSet(Request):
    role: RoleName


class MemberOut(BaseModel):
    user_id: str
    username: str
    role: RoleName


# ---------------------------------------------------------------- credentials
class CredentialCreate(Request):
    name: Name
    kind: Literal["ssh_private_key"] = "ssh_private_key"
    username: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z_][a-z0-9_-]*$")] | None = (
        None
    )
    private_key: str = Field(
        min_length=1, max_length=32768, repr=False, description="Unencrypted OpenSSH or PEM private key."
    )


class CredentialOut(BaseModel):
    id: str
    name: str
    kind: str
    username: str | None
    fingerprint: str = Field(description="SHA256 fingerprint of the public key (the secret is never returned).")
    created_at: datetime


# ---------------------------------------------------------------- hosts
def _check_address(value: str) -> str:
    """An IP literal of one machine or a DNS name: the collection's rule (plugins/module_utils/netrules.py)."""
    return _rule_address(value)


def _check_hostname(value: str) -> str:
    """A lower-case RFC 1123 name the playbooks can make the node name (plugins/module_utils/netrules.py)."""
    return _rule_hostname(value)


def _check_vars(value: dict[str, Any]) -> dict[str, Any]:
    """Host vars: names, `ansible_*` and SSH options in values (varpolicy); the routes check role specs."""
    if problems := varpolicy.static_problems("vars", value, "host"):
        raise ValueError("; ".join(problems))
    return value


def _unique_roles(value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise ValueError(f"roles {value} repeat an entry; list each of etcd, control_plane, workers at most once")
    return value


Labels = dict[
    Annotated[str, StringConstraints(min_length=1, max_length=63)], Annotated[str, StringConstraints(max_length=255)]
]


class HostCreate(Request):
    name: Annotated[str, StringConstraints(min_length=1, max_length=253)] = Field(
        description="Inventory hostname and Kubernetes node name: lower-case RFC 1123 (a-z, 0-9, '-', '.'), "
        "at most 64 characters."
    )
    address: Annotated[str, StringConstraints(min_length=1, max_length=253)] = Field(
        description="IP address or DNS name; unique together with ssh_port."
    )
    ssh_user: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z_][a-z0-9_-]*$")] = "smcp"
    ssh_port: int = Field(default=22, ge=1, le=65535)
    labels: Labels = Field(default_factory=dict)
    credential_id: Id
    roles: list[Role] = Field(default_factory=list, description="Subset of etcd, control_plane, workers.")
    vars: dict[str, Any] = Field(default_factory=dict, description="Extra inventory variables of this host.")
    known_hosts: Annotated[str, StringConstraints(max_length=65536)] | None = Field(
        default=None, description="known_hosts lines for this host; when set, host keys are checked against them."
    )

    _name = field_validator("name")(_check_hostname)
    _address = field_validator("address")(_check_address)
    _vars = field_validator("vars")(_check_vars)
    _roles = field_validator("roles")(_unique_roles)


class HostUpdate(Request):
    address: Annotated[str, StringConstraints(min_length=1, max_length=253)] | None = None
    ssh_user: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z_][a-z0-9_-]*$")] | None = (
        None
    )
    ssh_port: int | None = Field(default=None, ge=1, le=65535)
    labels: Labels | None = None
    credential_id: Id | None = None
    roles: list[Role] | None = None
    vars: dict[str, Any] | None = None
    known_hosts: Annotated[str, StringConstraints(max_length=65536)] | None = None

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else _check_address(value)

    @field_validator("vars")
    @classmethod
    def _vars(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else _check_vars(value)

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _unique_roles(value)


class PreflightResult(BaseModel):
    status: Literal["passed", "failed", "unreachable"]
    at: datetime
    job_id: str | None = None
    failures: StoredList = Field(default_factory=list)
    warnings: StoredList = Field(default_factory=list)


class HostOut(BaseModel):
    id: str
    name: str
    address: str
    ssh_user: str
    ssh_port: int
    labels: dict[str, str]
    credential_id: str
    roles: list[str]
    vars: StoredMap
    known_hosts: str | None = Field(
        default=None, description="The pinned host keys (known_hosts lines); null until the first job records them."
    )
    cluster_id: str | None
    last_preflight: PreflightResult | None
    created_at: datetime

    @computed_field(description="SHA256 fingerprints of the pinned host keys, as `ssh-keygen -l` prints them.")
    def host_key_fingerprints(self) -> list[str]:
        return hostkeys.fingerprints(self.known_hosts)


class HostKeyAccept(Request):
    fingerprint: Annotated[str, StringConstraints(max_length=60)] = Field(
        description="SHA256 fingerprint of the key to pin, e.g. `SHA256:` and 43 base64 characters "
        "(`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the host prints it)."
    )

    @field_validator("fingerprint")
    @classmethod
    def _fingerprint(cls, value: str) -> str:
        try:
            return hostkeys.check_fingerprint(value)
        except hostkeys.HostKeyError as exc:
            raise ValueError(str(exc)) from exc


# ---------------------------------------------------------------- clusters
class ClusterHost(Request):
    host_id: Id
    roles: list[Role] = Field(min_length=1, description="Subset of etcd, control_plane, workers.")

    _roles = field_validator("roles")(_unique_roles)


def load_balancer_problem(endpoint: str | None, options: dict[str, Any]) -> str | None:
    """What is wrong with the API endpoint settings (smcp_lb_mode and friends), or None.

    Without options.smcp_lb_mode the mode is external when control_plane_endpoint is set, else local
    (see jobs/inventory.cluster_vars). Values of the wrong type are left to the argument-spec check.
    """
    mode = options.get("smcp_lb_mode")
    endpoint = endpoint or options.get("smcp_control_plane_endpoint")
    if mode == "vip":
        vip = options.get("smcp_lb_vip")
        try:
            ipaddress.ip_address(vip if isinstance(vip, str) else "")
        except ValueError:
            return (
                f"options.smcp_lb_vip: {vip!r} is not an IP address; smcp_lb_mode vip needs an unused address "
                "in the control planes' network (e.g. 192.0.2.250)"
            )
    elif mode == "external" and not endpoint:
        return (
            "control_plane_endpoint: smcp_lb_mode external needs the host:port of your load balancer; set "
            "control_plane_endpoint (e.g. api.example.org:6443)"
        )
    elif mode == "local" and endpoint:
        return (
            f"control_plane_endpoint: {endpoint} is set but options.smcp_lb_mode is local (haproxy on every node at "
            "127.0.0.1); drop control_plane_endpoint, or set smcp_lb_mode to external (your load balancer)"
        )
    return None


class ClusterCreate(Request):
    name: Annotated[
        str, StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
    ]
    kubernetes_version: str = Field(
        description="MAJOR.MINOR.PATCH of a release in the versions table; any other gets a 422 listing them.",
    )
    cni: Literal["calico", "flannel"] = "calico"
    pod_cidr: str = "10.244.0.0/16"
    service_cidr: str = "10.96.0.0/12"
    control_plane_endpoint: str | None = Field(default=None, description="host:port of the API server load balancer.")
    hosts: list[ClusterHost] = Field(min_length=1, max_length=1000)
    options: dict[str, Any] = Field(default_factory=dict, description="smcp_* role options (validated by spec).")

    @field_validator("kubernetes_version")
    @classmethod
    def _version(cls, value: str) -> str:
        return versions.exact(value)

    @field_validator("pod_cidr", "service_cidr")
    @classmethod
    def _cidr(cls, value: str, info: Any) -> str:
        return network(info.field_name, value)

    @field_validator("control_plane_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, sep, port = value.rpartition(":")
        host = host.strip("[]")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"'{value}' is not host:port; write it like 192.0.2.10:6443 or api.example.org:6443")
        _check_address(host)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ClusterCreate:
        cluster_networks(self.pod_cidr, self.service_cidr, len(self.hosts), self.options)
        ids = [h.host_id for h in self.hosts]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"hosts lists host_id {dupes[0]} more than once; list each host once with all its roles")
        if problem := load_balancer_problem(self.control_plane_endpoint, self.options):
            raise ValueError(problem)
        etcd = sum("etcd" in h.roles for h in self.hosts)
        if not any("control_plane" in h.roles for h in self.hosts):
            raise ValueError("hosts has no control_plane host; give at least one host the role control_plane")
        if etcd == 0 or etcd % 2 == 0:
            raise ValueError(f"hosts has {etcd} etcd members; give the role etcd to an odd number of hosts (1, 3, 5)")
        return self


class ClusterOut(BaseModel):
    id: str
    name: str
    kubernetes_version: str
    cni: str
    pod_cidr: str
    service_cidr: str
    control_plane_endpoint: str | None
    hosts: list[ClusterHost]
    options: StoredMap
    created_at: datetime


# ---------------------------------------------------------------- jobs
class JobParams(Request):
    forks: int = Field(default=20, ge=1, le=200, description="Parallel hosts (ansible forks).")
    limit: (
        Annotated[str, StringConstraints(min_length=1, max_length=1000, pattern=r"^[A-Za-z0-9_.:,&!*\[\]-]+$")] | None
    ) = Field(default=None, description="Ansible --limit pattern (host names, groups, ':' '&' '!').")
    batch_size: int | None = Field(
        default=None, ge=1, le=100, description="Hosts changed at a time by rolling operations."
    )
    extra_vars: dict[str, Any] = Field(default_factory=dict, description="Role options (smcp_*, validated by spec).")


class JobCreate(Request):
    operation: Operation
    cluster_id: Id | None = None
    host_ids: list[Id] | None = Field(default=None, max_length=1000)
    params: JobParams = Field(default_factory=lambda: JobParams())

    @model_validator(mode="after")
    def _target(self) -> JobCreate:
        if not self.cluster_id and not self.host_ids:
            raise ValueError("a job needs a target: set cluster_id, or host_ids with at least one host id")
        if self.host_ids and len(set(self.host_ids)) != len(self.host_ids):
            raise ValueError("host_ids repeats an id; list each host once")
        if (
            self.operation in {"create_cluster", "add_nodes", "upgrade", "etcd_backup", "reset", "certs"}
            and not self.cluster_id
        ):
            raise ValueError(f"operation {self.operation} works on a cluster; set cluster_id")
        if self.operation == "add_nodes" and not self.host_ids:
            raise ValueError("operation add_nodes needs host_ids (the new workers to join)")
        if self.operation == "remove_node" and not (self.cluster_id and self.host_ids):
            raise ValueError("operation remove_node needs cluster_id and host_ids (the nodes to remove)")
        return self


class Counters(BaseModel):
    events: int
    tasks: int


class HostStats(BaseModel):
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0


class JobOut(BaseModel):
    id: str
    operation: str
    status: JobStatus
    status_reason: str | None
    cluster_id: str | None
    host_ids: list[str]
    params: StoredMap
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    rc: int | None
    host_summary: dict[str, HostStats]
    counters: Counters
    owner: str | None = Field(
        default=None, description="The worker running (or that ran) the job: host:pid:id of its process."
    )
    heartbeat_at: datetime | None = Field(
        default=None, description="When that worker last renewed its lease on the job (while it runs)."
    )


class EventOut(BaseModel):
    counter: int
    event: str
    host: str | None
    task: str | None
    play: str | None
    created_at: datetime
    stdout: str = Field(default="", description="The lines ansible-playbook printed for this event (redacted).")
    data: StoredMap


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    db: str
