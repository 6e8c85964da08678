"""Job creation: resolve and check every reference, take the per-cluster lock, record the job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.fernet import InvalidToken
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smcp_api import collection, varpolicy, versions
from smcp_api.core.config import Settings
from smcp_api.errors import Conflict, Unprocessable
from smcp_api.models import Cluster, Credential, Host, Job, Lock, Token
from smcp_api.schemas import OPERATIONS, READ_ONLY_OPERATIONS, JobCreate
from smcp_api.security import Vault

COLLECTION = ("ansible_collections", "smcp", "platform")


def collection_dir(settings: Settings) -> Path:
    return settings.resolved_collections_path().joinpath(*COLLECTION)


def playbook_for(operation: str) -> str:
    return f"smcp.platform.{OPERATIONS[operation]}"


def playbook_available(settings: Settings, operation: str) -> bool:
    return (collection_dir(settings) / "playbooks" / f"{OPERATIONS[operation]}.yml").is_file()


def lock_keys(job: Job, hosts: list[Host]) -> list[str]:
    if job.operation in READ_ONLY_OPERATIONS:
        return []
    keys = {f"host:{h.id}" for h in hosts}
    keys |= {f"cluster:{h.cluster_id}" for h in hosts if h.cluster_id}
    if job.cluster_id:
        keys.add(f"cluster:{job.cluster_id}")
    return sorted(keys)


def busy_error(session: Session, keys: list[str]) -> Conflict | None:
    """The conflict naming the job that holds one of `keys`, or None when none is held."""
    lock = session.scalar(select(Lock).where(Lock.key.in_(keys)).limit(1))
    if lock is None:
        return None
    holder = session.get(Job, lock.job_id)
    kind, _, ident = lock.key.partition(":")
    record = session.get(Cluster, ident) if kind == "cluster" else session.get(Host, ident)
    label = f"{kind} '{record.name if record else ident}'"
    what = f"{holder.operation} job {holder.id} ({holder.status})" if holder else f"job {lock.job_id}"
    return Conflict(
        f"{label} is busy with {what}; wait for it to finish or cancel it (POST /api/v1/jobs/{lock.job_id}/cancel)",
    )


def target_hosts(session: Session, body: JobCreate, project_id: str) -> tuple[Cluster | None, list[Host]]:
    """The cluster and the hosts a job targets; Unprocessable naming the field for any unknown or foreign id
    (one of another project is unknown here, the same answer)."""
    cluster = None
    if body.cluster_id:
        cluster = session.get(Cluster, body.cluster_id)
        if cluster is None or cluster.project_id != project_id:
            raise Unprocessable(
                f"cluster_id: cluster '{body.cluster_id}' does not exist; use an id from GET /api/v1/clusters"
            )
    hosts: list[Host] = []
    for i, host_id in enumerate(body.host_ids or []):
        host = session.get(Host, host_id)
        if host is None or host.project_id != project_id:
            raise Unprocessable(f"host_ids[{i}]: host '{host_id}' does not exist; use an id from GET /api/v1/hosts")
        if cluster and host.cluster_id != cluster.id and body.operation != "add_nodes":
            raise Unprocessable(
                f"host_ids[{i}]: host '{host.name}' is not part of cluster '{cluster.name}'; "
                "list only that cluster's hosts, or add it with operation add_nodes"
            )
        if cluster and body.operation == "add_nodes" and host.cluster_id not in (None, cluster.id):
            raise Unprocessable(
                f"host_ids[{i}]: host '{host.name}' belongs to another cluster ({host.cluster_id}); "
                "remove it there first (operation remove_node)"
            )
        hosts.append(host)
    if cluster is not None:
        members = list(session.scalars(select(Host).where(Host.cluster_id == cluster.id).order_by(Host.name)))
        extra = [h for h in hosts if h.cluster_id != cluster.id]
        hosts = members + extra
    if not hosts:
        raise Unprocessable("cluster_id: the cluster has no hosts; add hosts to it (operation add_nodes)")
    return cluster, hosts


def check_credentials(session: Session, vault: Vault, hosts: list[Host]) -> None:
    for cred_id in sorted({h.credential_id for h in hosts}):
        cred = session.get(Credential, cred_id)
        users = ", ".join(sorted(h.name for h in hosts if h.credential_id == cred_id))
        if cred is None:
            raise Unprocessable(
                f"host(s) {users}: credential '{cred_id}' no longer exists; PATCH the hosts with a valid credential_id"
            )
        try:
            vault.decrypt(cred.secret)
        except InvalidToken as exc:
            raise Unprocessable(
                f"credential '{cred.name}' ({cred.id}, used by {users}) cannot be decrypted with the current secret "
                "key; restore the SMCP_SECRET_KEY (or secret.key file) it was stored with, or create the credential "
                "again (POST /api/v1/credentials) and PATCH the hosts to use it"
            ) from exc


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def check_upgrade(cluster: Cluster, hosts: list[Host], extra_vars: dict[str, Any]) -> dict[str, Any]:
    """The upgrade plan from the cluster's version to extra_vars.smcp_kubernetes_version; Unprocessable if refused."""
    field = "params.extra_vars.smcp_kubernetes_version"
    target = extra_vars.get("smcp_kubernetes_version")
    if not isinstance(target, str) or not target:
        raise Unprocessable(f"{field}: give the target version (e.g. {versions.supported_versions()[-1]})")
    try:
        target = versions.exact(target)
    except ValueError as exc:
        raise Unprocessable(f"{field}: {exc}") from None
    if target == cluster.kubernetes_version:
        newer = [v for v in versions.supported_versions() if _release(v) > _release(target)]
        raise Unprocessable(
            f"{field}: cluster '{cluster.name}' already runs Kubernetes {target}; there is nothing to do; "
            + (f"choose a newer release: {', '.join(newer)}" if newer else "it is the newest release in the table")
        )
    up = collection.module_utils("upgrade_plan")
    members = [h for h in hosts if h.cluster_id == cluster.id]
    cps = {h.name: cluster.kubernetes_version for h in members if "control_plane" in (h.cluster_roles or [])}
    kubelets = {h.name: cluster.kubernetes_version for h in members}
    try:
        plan: dict[str, Any] = up.plan(
            target=target,
            control_planes=cps,
            kubelets=kubelets,
            table=up.default_table(),
            allow_multi_hop=bool(extra_vars.get("upgrade_allow_multi_hop", False)),
        )
    except up.PlanRefused as exc:
        raise Unprocessable(f"{field}: upgrade refused ({exc.rule}): {exc.message}") from None
    size = extra_vars.get("upgrade_batch_size")
    if size is not None:
        try:
            up.batch_size(max(1, len(kubelets) - len(cps)), size)
        except ValueError as exc:
            raise Unprocessable(f"params.extra_vars.upgrade_batch_size: {exc}") from None
    return plan


def check_remove(cluster: Cluster, hosts: list[Host], host_ids: list[str]) -> None:
    """Refuse a removal that would leave the cluster without a control plane or an etcd member."""
    leaving = {h.id for h in hosts if h.id in host_ids}
    staying = [h for h in hosts if h.cluster_id == cluster.id and h.id not in leaving]
    for role, what in (("control_plane", "control plane"), ("etcd", "etcd member")):
        had = [h for h in hosts if h.cluster_id == cluster.id and role in (h.cluster_roles or [])]
        if had and not any(role in (h.cluster_roles or []) for h in staying):
            names = ", ".join(sorted(h.name for h in had))
            raise Unprocessable(
                f"host_ids: removing them leaves cluster '{cluster.name}' without a {what} ({names}); "
                f"add another {what} first (operation add_nodes), or wipe the whole cluster (operation reset)"
            )


def check_operation(body: JobCreate, cluster: Cluster | None, hosts: list[Host]) -> None:
    """Operation-specific refusals (before any job is recorded)."""
    extra = body.params.extra_vars
    if body.operation == "upgrade" and cluster is not None:
        check_upgrade(cluster, hosts, extra)
    elif body.operation == "remove_node" and cluster is not None:
        check_remove(cluster, hosts, list(body.host_ids or []))
    elif body.operation == "reset" and extra.get("reset_confirm") is not True:
        raise Unprocessable(
            "params.extra_vars.reset_confirm: a reset wipes Kubernetes from every targeted host; "
            "set reset_confirm: true to confirm"
        )


def record_outcome(session: Session, job: Job) -> None:
    """What a successful job changed in the store: the cluster's version after an upgrade, removed nodes."""
    cluster = session.get(Cluster, job.cluster_id) if job.cluster_id else None
    if cluster is None:
        return
    extra = (job.params or {}).get("extra_vars") or {}
    if job.operation == "upgrade" and extra.get("smcp_kubernetes_version"):
        cluster.kubernetes_version = versions.exact(str(extra["smcp_kubernetes_version"]))
    elif job.operation == "remove_node":
        for host_id in job.host_ids or []:
            host = session.get(Host, host_id)
            if host is not None and host.cluster_id == cluster.id:
                host.cluster_id = None
                host.cluster_roles = []


def create_job(
    session: Session, settings: Settings, vault: Vault, token: Token, body: JobCreate, *, project_id: str
) -> Job:
    """Validate and record a pending job of project `project_id` (caller commits); its targets must be of that
    project. Raises Conflict or Unprocessable."""
    if not playbook_available(settings, body.operation):
        raise Unprocessable(
            f"operation: operation {body.operation} is not available in this build (playbook "
            f"{playbook_for(body.operation)} is not in the collection at {collection_dir(settings)}; set "
            "SMCP_COLLECTIONS_PATH if it lives elsewhere); available: "
            + ", ".join(op for op in OPERATIONS if playbook_available(settings, op))
        )
    if body.params.limit and body.host_ids:
        raise Unprocessable("params.limit: give either host_ids or params.limit, not both")
    problems = varpolicy.problems("params.extra_vars", body.params.extra_vars, "job", collection_dir(settings))
    if problems:
        raise Unprocessable("; ".join(problems))
    cluster, hosts = target_hosts(session, body, project_id)
    check_operation(body, cluster, hosts)
    check_credentials(session, vault, hosts)
    job = Job(
        operation=body.operation,
        cluster_id=cluster.id if cluster else None,
        host_ids=list(body.host_ids or []),
        params=body.params.model_dump(exclude_none=True),
        created_by=token.id,
        project_id=project_id,
    )
    keys = lock_keys(job, hosts)
    if keys and (err := busy_error(session, keys)):
        raise err
    if cluster is not None and body.operation == "add_nodes":
        for host in hosts:
            if host.cluster_id is None:
                host.cluster_id = cluster.id
                host.cluster_roles = list(host.roles) or ["workers"]
    session.add(job)
    session.flush()
    if keys:
        try:
            with session.begin_nested():
                session.add_all(Lock(key=k, job_id=job.id) for k in keys)
        except IntegrityError:
            err = busy_error(session, keys)
            raise err or Conflict("target is busy; retry shortly") from None
    return job
