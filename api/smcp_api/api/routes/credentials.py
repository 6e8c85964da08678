"""SSH credentials: private keys encrypted at rest; the secret is never returned."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import select

from smcp_api.api.deps import Admin, IdempotencyDep, Operator, ServicesDep, SessionDep, Viewer, errors
from smcp_api.api.routing import create_route, delete_route
from smcp_api.api.rows import get_in_project
from smcp_api.api.writes import create_once
from smcp_api.errors import Conflict, Unprocessable
from smcp_api.models import Credential, Host
from smcp_api.schemas import CredentialCreate, CredentialOut
from smcp_api.security import PrivateKeyError, ssh_key_fingerprint

router = APIRouter(prefix="/credentials", tags=["credentials"])


@create_route(
    router,
    CredentialOut,
    "Store an SSH private key",
    "The key is checked (unencrypted OpenSSH or PEM), encrypted with the service key and never "
    "returned; responses carry its SHA256 fingerprint.",
)
def create_credential(
    body: CredentialCreate, token: Operator, services: ServicesDep, session: SessionDep, idem: IdempotencyDep
) -> object:

    def build() -> Credential:
        try:
            fingerprint = ssh_key_fingerprint(body.private_key)
        except PrivateKeyError as exc:
            raise Unprocessable(f"private_key: {exc}") from None
        return Credential(
            name=body.name,
            kind=body.kind,
            username=body.username,
            fingerprint=fingerprint,
            secret=services.vault.encrypt(body.private_key),
            project_id=token.project_id,
        )

    return create_once(
        session, token, idem, what=f"a credential named '{body.name}'", build=build, respond=CredentialOut
    )


@router.get("", response_model=list[CredentialOut], summary="List credentials", responses=errors())
def list_credentials(caller: Viewer, session: SessionDep) -> list[Credential]:
    """The project's credentials: name, kind, username and fingerprint (never the key)."""
    query = select(Credential).where(Credential.project_id == caller.project_id).order_by(Credential.name)
    return list(session.scalars(query))


@router.get(
    "/{credential_id}",
    response_model=CredentialOut,
    summary="Show a credential",
    responses=errors(404),
)
def get_credential(credential_id: str, caller: Viewer, session: SessionDep) -> Credential:
    """One credential: name, kind, username and fingerprint (never the key)."""
    return get_in_project(session, Credential, credential_id, "credential", caller.project_id)


@delete_route(router, "/{credential_id}", "Delete a credential", "Admin only; 409 while a host uses it.")
def delete_credential(credential_id: str, caller: Admin, session: SessionDep) -> Response:
    cred = get_in_project(session, Credential, credential_id, "credential", caller.project_id)
    users = list(session.scalars(select(Host.name).where(Host.credential_id == credential_id).limit(5)))
    if users:
        raise Conflict(
            f"credential '{cred.name}' is used by host(s) {', '.join(users)}; PATCH or delete those hosts first",
        )
    session.delete(cred)
    session.commit()
    return Response(status_code=204)
