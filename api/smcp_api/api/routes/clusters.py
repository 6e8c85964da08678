"""Clusters: the desired spec (version, CNI, networks, endpoint, hosts with roles, options)."""

from __future__ import annotations

import ipaddress

from fastapi import APIRouter, Response
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from smcp_api import varpolicy
from smcp_api.api.deps import IdempotencyDep, Operator, ServicesDep, SessionDep, Viewer, errors
from smcp_api.api.routing import create_route, delete_route
from smcp_api.api.rows import from_row, get_in_project
from smcp_api.api.writes import create_once
from smcp_api.errors import Conflict, Unprocessable
from smcp_api.jobs.service import collection_dir
from smcp_api.jobstates import FINISHED
from smcp_api.models import Cluster, Host, Job
from smcp_api.schemas import ClusterCreate, ClusterHost, ClusterOut

router = APIRouter(prefix="/clusters", tags=["clusters"])


def cluster_out(session: SessionDep, cluster: Cluster) -> ClusterOut:
    hosts = session.scalars(select(Host).where(Host.cluster_id == cluster.id).order_by(Host.name))
    return from_row(ClusterOut, cluster, hosts=[ClusterHost(host_id=h.id, roles=h.cluster_roles) for h in hosts])


def _free_hosts(session: Session, body: ClusterCreate, project_id: str) -> list[Host]:
    """The hosts of a new cluster: each known in the project, free, and outside the pod and service networks."""
    nets = {"pod_cidr": ipaddress.ip_network(body.pod_cidr), "service_cidr": ipaddress.ip_network(body.service_cidr)}
    hosts: list[Host] = []
    for i, spec in enumerate(body.hosts):
        host = session.get(Host, spec.host_id)
        if host is None or host.project_id != project_id:
            raise Unprocessable(
                f"hosts[{i}].host_id: host '{spec.host_id}' does not exist; register it (POST /api/v1/hosts) first"
            )
        if host.cluster_id is not None:
            raise Conflict(
                f"hosts[{i}].host_id: host '{host.name}' already belongs to cluster {host.cluster_id}; "
                "pick a free host or remove it from that cluster",
            )
        try:
            addr = ipaddress.ip_address(host.address)
        except ValueError:
            addr = None
        for field, net in nets.items():
            if addr is not None and addr.version == net.version and addr in net:
                raise Unprocessable(
                    f"{field}: {net} contains the address {addr} of host '{host.name}'; choose a network that "
                    "does not overlap the node network"
                )
        hosts.append(host)
    return hosts


@create_route(
    router,
    ClusterOut,
    "Define a cluster",
    "Records the spec only (run operation create_cluster to build it). Checks: supported "
    "Kubernetes version, valid non-overlapping CIDRs that hold no host address, known and free hosts, an odd "
    "number of etcd members, options known to the roles' argument specs.",
)
def create_cluster(
    body: ClusterCreate, token: Operator, services: ServicesDep, session: SessionDep, idem: IdempotencyDep
) -> object:
    hosts: list[Host] = []

    def build() -> Cluster:
        problems = varpolicy.problems("options", body.options, "cluster", collection_dir(services.settings))
        if problems:
            raise Unprocessable("; ".join(problems))
        hosts.extend(_free_hosts(session, body, token.project_id))
        return Cluster(**body.model_dump(exclude={"hosts"}), project_id=token.project_id)

    def respond(cluster: Cluster) -> ClusterOut:
        for host, spec in zip(hosts, body.hosts, strict=True):
            host.cluster_id = cluster.id
            host.cluster_roles = list(spec.roles)
        session.flush()
        return cluster_out(session, cluster)

    return create_once(session, token, idem, what=f"a cluster named '{body.name}'", build=build, respond=respond)


@router.get("", response_model=list[ClusterOut], summary="List clusters", responses=errors())
def list_clusters(caller: Viewer, session: SessionDep) -> list[ClusterOut]:
    """The project's cluster specs with their hosts and roles."""
    query = select(Cluster).where(Cluster.project_id == caller.project_id).order_by(Cluster.name)
    return [cluster_out(session, c) for c in session.scalars(query)]


@router.get("/{cluster_id}", response_model=ClusterOut, summary="Show a cluster", responses=errors(404))
def get_cluster(cluster_id: str, caller: Viewer, session: SessionDep) -> ClusterOut:
    """One cluster spec with its hosts and their roles."""
    return cluster_out(session, get_in_project(session, Cluster, cluster_id, "cluster", caller.project_id))


@delete_route(
    router,
    "/{cluster_id}",
    "Forget a cluster",
    "Deletes the record only (hosts are released; run operation reset first to wipe them). "
    "409 while a job is pending or running on the cluster.",
)
def delete_cluster(cluster_id: str, caller: Operator, session: SessionDep) -> Response:
    cluster = get_in_project(session, Cluster, cluster_id, "cluster", caller.project_id)
    job = session.scalar(select(Job).where(Job.cluster_id == cluster_id, Job.status.not_in(FINISHED)).limit(1))
    if job is not None:
        raise Conflict(
            f"cluster '{cluster.name}' has {job.operation} job {job.id} ({job.status}); wait for it or cancel it "
            f"(POST /api/v1/jobs/{job.id}/cancel)",
        )
    session.execute(update(Host).where(Host.cluster_id == cluster_id).values(cluster_id=None, cluster_roles=[]))
    session.delete(cluster)
    session.commit()
    return Response(status_code=204)
