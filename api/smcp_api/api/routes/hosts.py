"""Hosts: address, SSH user and port, labels, credential, roles, extra inventory vars, last preflight."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy import select

from smcp_api import varpolicy
from smcp_api.api.deps import Caller, IdempotencyDep, Operator, ServicesDep, SessionDep, Viewer, errors
from smcp_api.api.routing import create_route, delete_route, job_route
from smcp_api.api.rows import get_in_project
from smcp_api.api.writes import create_once, submit_job
from smcp_api.errors import Conflict, Unprocessable
from smcp_api.hostkey_service import accept_key
from smcp_api.hostkeys import HostKeyError, normalise
from smcp_api.jobs.service import collection_dir
from smcp_api.jobstates import FINISHED
from smcp_api.models import Credential, Host, Job, Lock
from smcp_api.netrules import address_key
from smcp_api.schemas import Error, HostCreate, HostKeyAccept, HostOut, HostUpdate, JobCreate

router = APIRouter(prefix="/hosts", tags=["hosts"])


def _credential_exists(session: SessionDep, credential_id: str, project_id: str) -> None:
    cred = session.get(Credential, credential_id)
    if cred is None or cred.project_id != project_id:  # another project's: unknown here
        raise Unprocessable(
            f"credential_id: credential '{credential_id}' does not exist; create one (POST /api/v1/credentials) "
            "or use an id from GET /api/v1/credentials",
        )


def _pin(known_hosts: str | None, address: str, port: int) -> str | None:
    """User-given known_hosts, validated and naming the host as ssh looks it up; 422 naming the line otherwise."""
    if known_hosts is None:
        return None
    try:
        return normalise(known_hosts, address, port)
    except HostKeyError as exc:
        raise Unprocessable(f"known_hosts: {exc}") from exc


def _check_vars(services: ServicesDep, values: dict[str, Any]) -> None:
    """The variable policy (smcp_api.varpolicy) against the roles' argument specs, before anything is stored."""
    if problems := varpolicy.problems("vars", values, "host", collection_dir(services.settings)):
        raise Unprocessable("; ".join(problems))


def _get(session: SessionDep, host_id: str, caller: Caller) -> Host:
    return get_in_project(session, Host, host_id, "host", caller.project_id)


def _address_free(session: SessionDep, address: str, port: int, project_id: str, host_id: str | None = None) -> None:
    """409 when another host has this address (IP or DNS name) and SSH port: naming it when it is of this project
    (one machine is managed by one project; another project's host is not named)."""
    key = address_key(address)
    for other in session.scalars(select(Host).where(Host.ssh_port == port, Host.id != (host_id or ""))):
        if address_key(other.address) == key and other.project_id != project_id:
            raise Conflict(
                f"address: {address} (SSH port {port}) is already registered in another project; one machine "
                "belongs to one project: ask a platform admin, or give this host another address or ssh_port",
            )
        if address_key(other.address) == key:
            raise Conflict(
                f"address: {address} (SSH port {port}) is already host '{other.name}' ({other.id}); give each host "
                f"its own address (or its own ssh_port, behind one NAT or tunnel), or change or delete host "
                f"'{other.name}' first",
            )


@create_route(
    router,
    HostOut,
    "Register a host",
    "`vars` become host variables of the generated inventory: options of the smcp.platform roles "
    "(e.g. `smcp_sandbox`, `smcp_node_ip`) and `ansible_python_interpreter`; connection variables come from the "
    "host's own fields, anything else is a 422 naming the variable (docs/variables.md).",
)
def create_host(
    body: HostCreate, token: Operator, services: ServicesDep, session: SessionDep, idem: IdempotencyDep
) -> object:

    def build() -> Host:
        _check_vars(services, body.vars)
        _credential_exists(session, body.credential_id, token.project_id)
        _address_free(session, body.address, body.ssh_port, token.project_id)
        pin = _pin(body.known_hosts, body.address, body.ssh_port)
        return Host(**{**body.model_dump(), "known_hosts": pin, "project_id": token.project_id})

    return create_once(session, token, idem, what=f"a host named '{body.name}'", build=build, respond=HostOut)


@router.get("", response_model=list[HostOut], summary="List hosts", responses=errors())
def list_hosts(caller: Viewer, session: SessionDep, cluster_id: str | None = None) -> list[Host]:
    """The project's hosts, by name; `?cluster_id=` keeps one cluster's hosts."""
    query = select(Host).where(Host.project_id == caller.project_id).order_by(Host.name)
    if cluster_id:
        query = query.where(Host.cluster_id == cluster_id)
    return list(session.scalars(query))


@router.get("/{host_id}", response_model=HostOut, summary="Show a host", responses=errors(404))
def get_host(host_id: str, caller: Viewer, session: SessionDep) -> Host:
    """One host with its cluster and the result of its last preflight."""
    return _get(session, host_id, caller)


@router.patch(
    "/{host_id}",
    response_model=HostOut,
    summary="Change a host",
    description="Only the fields sent change. 409 while a mutating job holds the host.",
    responses=errors(404, 409, 422),
)
def update_host(host_id: str, body: HostUpdate, caller: Operator, services: ServicesDep, session: SessionDep) -> Host:
    host = _get(session, host_id, caller)
    changes = body.model_dump(exclude_unset=True)
    for field in ("address", "ssh_user", "ssh_port", "labels", "credential_id", "roles", "vars"):
        if field in changes and changes[field] is None:
            raise Unprocessable(f"{field}: null is not allowed; omit the field")
    if "vars" in changes:
        _check_vars(services, changes["vars"])
    if "credential_id" in changes:
        _credential_exists(session, changes["credential_id"], caller.project_id)
    if "address" in changes or "ssh_port" in changes:
        address, port = changes.get("address", host.address), changes.get("ssh_port", host.ssh_port)
        _address_free(session, address, port, caller.project_id, host.id)
    lock = session.scalar(select(Lock).where(Lock.key == f"host:{host.id}"))
    if lock is not None:
        raise Conflict(f"host '{host.name}' is busy with job {lock.job_id}; wait for it or cancel it")
    if changes.keys() & {"known_hosts", "address", "ssh_port"}:  # the pin names the host by address and port
        changes["known_hosts"] = _pin(
            changes.get("known_hosts", host.known_hosts),
            changes.get("address", host.address),
            changes.get("ssh_port", host.ssh_port),
        )
    for field, value in changes.items():
        setattr(host, field, value)
    session.commit()
    return host


@delete_route(
    router,
    "/{host_id}",
    "Delete a host",
    "409 while the host belongs to a cluster or a job is pending or running on it.",
)
def delete_host(host_id: str, caller: Operator, session: SessionDep) -> Response:
    host = _get(session, host_id, caller)
    if host.cluster_id:
        raise Conflict(
            f"host '{host.name}' belongs to cluster {host.cluster_id}; remove it there first (operation remove_node)",
        )
    active = [
        j
        for j in session.scalars(select(Job).where(Job.status.not_in(FINISHED), Job.cluster_id.is_(None)))
        if host.id in (j.host_ids or [])
    ]
    if active:
        raise Conflict(
            f"host '{host.name}' is used by job {active[0].id} ({active[0].status}); wait for it or cancel it",
        )
    session.delete(host)
    session.commit()
    return Response(status_code=204)


@job_route(
    router,
    "/{host_id}/check",
    "Preflight one host",
    "Shortcut for POST /api/v1/jobs {operation: preflight, host_ids: [id]}; the result lands in "
    "the host's `last_preflight`.",
    (404, 409, 422),
)
def check_host(
    host_id: str, token: Operator, services: ServicesDep, session: SessionDep, idem: IdempotencyDep
) -> object:
    _get(session, host_id, token)
    return submit_job(JobCreate(operation="preflight", host_ids=[host_id]), token, services, session, idem)


@router.post(
    "/{host_id}/host-key",
    response_model=HostOut,
    summary="Pin the SSH host key the host offers now",
    description="Scans the host now (ssh-keyscan) and pins exactly its key(s) with `fingerprint`, replacing the "
    "old pin: how to accept a host's new key after a job failed with 'host key changed'. 409 naming the offered "
    "fingerprints when none matches (the pin is kept); 502 when the host refuses or gives no key, 504 when it "
    "does not answer.",
    responses={
        **errors(404, 409, 422),
        502: {"model": Error, "description": "The host refused the connection or offered no SSH host key."},
        504: {"model": Error, "description": "The host did not answer in time."},
    },
)
def accept_host_key(host_id: str, body: HostKeyAccept, caller: Operator, session: SessionDep) -> Host:
    return accept_key(session, _get(session, host_id, caller), body.fingerprint)
