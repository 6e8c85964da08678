"""Inventory generation: the store's hosts, groups and cluster settings as an Ansible JSON inventory."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from smcp_api import varpolicy
from smcp_api.models import Cluster, Credential, Host, Job
from smcp_api.security import Vault

GROUPS = ("etcd", "control_plane", "workers")


@dataclass
class JobFiles:
    """What the runner needs, written into the job's private dir (no private key among them)."""

    inventory: dict[str, Any]
    inventory_path: Path
    extravars: dict[str, Any]
    limit: str | None
    host_names: dict[str, str]  # host id -> inventory name
    keys: dict[str, str] = field(default_factory=dict)  # credential id -> private key (for the job's ssh-agent)
    secrets: list[str] = field(default_factory=list)
    pinned: dict[str, str] = field(default_factory=dict)  # inventory name -> pinned known_hosts text
    dropped_vars: dict[str, list[str]] = field(default_factory=dict)  # inventory name -> why a stored var was left out
    roleless: list[str] = field(default_factory=list)  # hosts in no group the playbooks target


class _UnsafeDumper(yaml.SafeDumper):
    """YAML whose every string is tagged !unsafe: Ansible treats it as data and never templates it."""


def _unsafe_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar("!unsafe", value, style='"')


_UnsafeDumper.add_representer(str, _unsafe_str)


def dump_unsafe(data: Any) -> str:
    """`data` as YAML in which no string value can be a template (API values are data, never code)."""
    return yaml.dump(data, Dumper=_UnsafeDumper, sort_keys=True, allow_unicode=True, default_flow_style=False)


def public_key(private_key: str) -> str:
    """The OpenSSH public line of `private_key` (ssh asks the job's agent for the matching private key)."""
    data = private_key.encode()
    key: Any
    if b"BEGIN OPENSSH PRIVATE KEY" in data:
        key = serialization.load_ssh_private_key(data, password=None)
    else:
        key = serialization.load_pem_private_key(data, password=None)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def job_hosts(session: Session, job: Job) -> tuple[Cluster | None, list[Host]]:
    cluster = session.get(Cluster, job.cluster_id) if job.cluster_id else None
    if cluster is not None:
        hosts = list(session.scalars(select(Host).where(Host.cluster_id == cluster.id).order_by(Host.name)))
    else:
        hosts = [h for h in (session.get(Host, i) for i in job.host_ids) if h is not None]
    return cluster, hosts


def cluster_vars(cluster: Cluster) -> dict[str, Any]:
    """The cluster's spec as smcp_* inventory variables (options, validated by the roles' specs, win)."""
    values: dict[str, Any] = {
        "smcp_cluster_name": cluster.name,
        "smcp_pod_cidr": cluster.pod_cidr,
        "smcp_service_cidr": cluster.service_cidr,
        "smcp_kubernetes_version": cluster.kubernetes_version,
        "smcp_cni": cluster.cni,
    }
    if cluster.control_plane_endpoint:
        values["smcp_control_plane_endpoint"] = cluster.control_plane_endpoint
        # An endpoint without a mode is the user's own load balancer (schemas.load_balancer_problem).
        values["smcp_lb_mode"] = "external"
    values.update(cluster.options or {})
    return values


def ssh_args(private_dir: Path) -> str:
    """The job's own SSH options: its known_hosts only, strict checking, only the key the inventory names."""
    return " ".join(
        [
            f"-o UserKnownHostsFile={shlex.quote(str(private_dir / 'known_hosts'))}",
            "-o GlobalKnownHostsFile=/dev/null",
            "-o StrictHostKeyChecking=yes",
            "-o IdentitiesOnly=yes",
            "-o UpdateHostKeys=no",
        ]
    )


def build(session: Session, job: Job, vault: Vault, private_dir: Path, collection_dir: Path) -> JobFiles:
    """The job's inventory (every string !unsafe), public key files and known_hosts under `private_dir`.

    Private keys are returned (for the job's ssh-agent), never written. Stored host variables the variable
    policy refuses (hosts saved before it) are left out and reported in `dropped_vars`.
    """
    cluster, hosts = job_hosts(session, job)
    if not hosts:
        raise RuntimeError("the job has no hosts left in the store (deleted after the job was created)")
    files = JobFiles({}, private_dir / "inventory" / "hosts.yml", {}, None, {})
    pub_files: dict[str, Path] = {}
    hostvars: dict[str, dict[str, Any]] = {}
    groups: dict[str, dict[str, Any]] = {g: {} for g in GROUPS}
    for host in hosts:
        if host.credential_id not in pub_files:
            cred = session.get(Credential, host.credential_id)
            if cred is None:
                raise RuntimeError(f"credential {host.credential_id} of host {host.name} no longer exists")
            key = vault.decrypt(cred.secret)
            files.secrets.append(key)
            files.keys[cred.id] = key if key.endswith("\n") else key + "\n"
            path = private_dir / "keys" / f"{cred.id}.pub"
            path.write_text(public_key(key) + "\n")
            pub_files[cred.id] = path
        stored = dict(host.vars or {})
        values = varpolicy.allowed_host_vars(stored, collection_dir)
        if len(values) != len(stored):
            files.dropped_vars[host.name] = varpolicy.refused_host_vars(stored, collection_dir)
        values.update(
            ansible_host=host.address,
            ansible_user=host.ssh_user,
            ansible_port=host.ssh_port,
            ansible_ssh_private_key_file=str(pub_files[host.credential_id]),
        )
        if host.known_hosts:
            files.pinned[host.name] = host.known_hosts
        hostvars[host.name] = values
        roles = host.cluster_roles if cluster is not None else host.roles
        if not set(roles or []) & set(GROUPS):
            files.roleless.append(host.name)
        for role in roles or []:
            if role in groups:
                groups[role][host.name] = {}
    all_vars: dict[str, Any] = cluster_vars(cluster) if cluster else {}
    all_vars["ansible_ssh_common_args"] = ssh_args(private_dir)
    files.inventory = {
        "all": {
            "vars": all_vars,
            "hosts": hostvars,
            "children": {g: {"hosts": members} for g, members in groups.items()},
        }
    }
    params = job.params or {}
    files.extravars = dict(params.get("extra_vars") or {})
    if params.get("batch_size"):
        files.extravars["smcp_batch_size"] = params["batch_size"]
    files.host_names = {h.id: h.name for h in hosts}
    files.limit = params.get("limit")
    if cluster is not None and job.host_ids:
        files.limit = ",".join(files.host_names[i] for i in job.host_ids if i in files.host_names)
    write_known_hosts(private_dir, files.pinned)
    files.inventory_path.write_text(dump_unsafe(files.inventory))
    return files


def write_known_hosts(private_dir: Path, pinned: dict[str, str]) -> None:
    """The job's only known_hosts: the pinned keys of its hosts."""
    lines = [text.rstrip("\n") for text in pinned.values() if text.strip()]
    (private_dir / "known_hosts").write_text("".join(line + "\n" for line in lines))
