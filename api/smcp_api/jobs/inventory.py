"""Inventory generation: the store's hosts, groups and cluster settings as an Ansible JSON inventory."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from smcp_api.models import Cluster, Credential, Host, Job
from smcp_api.security import Vault, write_private_file

GROUPS = ("etcd", "control_plane", "workers")


@dataclass
class JobFiles:
    """What the runner needs, written into the job's private data dir."""

    inventory: dict[str, Any]
    inventory_path: Path
    extravars: dict[str, Any]
    limit: str | None
    host_names: dict[str, str]  # host id -> inventory name
    secrets: list[str] = field(default_factory=list)


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


def build(session: Session, job: Job, vault: Vault, private_dir: Path) -> JobFiles:
    """Write keys (0600), known_hosts and inventory/hosts.json for `job` under `private_dir`."""
    cluster, hosts = job_hosts(session, job)
    if not hosts:
        raise RuntimeError("the job has no hosts left in the store (deleted after the job was created)")
    secrets: list[str] = []
    key_files: dict[str, Path] = {}
    hostvars: dict[str, dict[str, Any]] = {}
    groups: dict[str, dict[str, Any]] = {g: {} for g in GROUPS}
    for host in hosts:
        if host.credential_id not in key_files:
            cred = session.get(Credential, host.credential_id)
            if cred is None:
                raise RuntimeError(f"credential {host.credential_id} of host {host.name} no longer exists")
            key = vault.decrypt(cred.secret)
            secrets.append(key)
            path = private_dir / "keys" / cred.id
            write_private_file(path, key if key.endswith("\n") else key + "\n")
            key_files[cred.id] = path
        values: dict[str, Any] = dict(host.vars or {})
        values.update(
            ansible_host=host.address,
            ansible_user=host.ssh_user,
            ansible_port=host.ssh_port,
            ansible_ssh_private_key_file=str(key_files[host.credential_id]),
        )
        if host.known_hosts:
            kh = private_dir / "known_hosts" / host.name
            write_private_file(kh, host.known_hosts if host.known_hosts.endswith("\n") else host.known_hosts + "\n")
            extra = f"-o UserKnownHostsFile={shlex.quote(str(kh))} -o StrictHostKeyChecking=yes"
            values["ansible_ssh_common_args"] = " ".join(
                filter(None, [str(values.get("ansible_ssh_common_args", "")), extra])
            )
        hostvars[host.name] = values
        roles = host.cluster_roles if cluster is not None else host.roles
        for role in roles or []:
            if role in groups:
                groups[role][host.name] = {}
    all_vars: dict[str, Any] = cluster_vars(cluster) if cluster else {}
    inventory = {
        "all": {
            "vars": all_vars,
            "hosts": hostvars,
            "children": {g: {"hosts": members} for g, members in groups.items()},
        }
    }
    params = job.params or {}
    extravars = dict(params.get("extra_vars") or {})
    if params.get("batch_size"):
        extravars["smcp_batch_size"] = params["batch_size"]
    names = {h.id: h.name for h in hosts}
    limit = params.get("limit")
    if cluster is not None and job.host_ids:
        limit = ",".join(names[i] for i in job.host_ids if i in names)
    inv_path = private_dir / "inventory" / "hosts.json"
    write_private_file(inv_path, json.dumps(inventory, indent=1, sort_keys=True))
    return JobFiles(inventory, inv_path, extravars, limit, names, secrets)
