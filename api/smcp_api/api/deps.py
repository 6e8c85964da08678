"""Shared dependencies: `SessionDep`, `CurrentToken`, the caller (user, project, role) and its guards,
Idempotency-Key handling.

A request acts in one project: the header `X-SMCP-Project` (name or id), else the token's project when it is
scoped, else the user's only project, else `default`. A project the caller may not see answers 404.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from smcp_api import audit
from smcp_api.errors import NotFound, Unprocessable
from smcp_api.identity import lower_role, role_in
from smcp_api.models import DEFAULT_PROJECT_ID, IdempotencyRecord, Project, RoleBinding, Token, User, utcnow
from smcp_api.schemas import Error
from smcp_api.security import hash_token, role_allows
from smcp_api.services import Services

UNAUTHENTICATED = frozenset({"/api/v1/auth/login"})
bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <token>` (see POST /api/v1/tokens).")
LAST_USED_GRANULARITY = timedelta(seconds=60)


def get_services(request: Request) -> Services:
    return request.app.state.smcp  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    with services.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_current_token(
    services: ServicesDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Token:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token: send 'Authorization: Bearer <token>' (the bootstrap admin token is in the "
            "service's admin.token file)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    digest = hash_token(credentials.credentials)
    with services.sessions() as session:
        token = session.scalar(select(Token).where(Token.token_hash == digest))
        if token is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "invalid or revoked bearer token: ask an admin for a token (POST /api/v1/tokens)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        now = utcnow()
        if token.expires_at is not None and token.expires_at <= now:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                f"bearer token '{token.name}' expired at {token.expires_at.isoformat(timespec='seconds')}; log in "
                "again (POST /api/v1/auth/login) or create a new token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_GRANULARITY:
            token.last_used_at = now
            session.commit()
        session.expunge(token)
    return token


CurrentToken = Annotated[Token, Depends(get_current_token)]


async def authenticate(scope: Scope) -> None:
    """The routes' own token check (raises their 401) for BodyGuardMiddleware, before a body is read."""
    if scope["path"] in UNAUTHENTICATED:  # a body that carries the credentials itself (log in)
        return
    request = Request(scope)
    credentials = await bearer(request)
    await run_in_threadpool(get_current_token, request.app.state.smcp, credentials)


@dataclass(frozen=True)
class Caller:
    """Who calls and where: the token's user, the project the request acts in and the role there.

    `role` is the lower of the token's role and the user's role in `project` (admin everywhere for a platform
    admin). `platform_admin` holds only for a platform admin's unscoped admin token.
    """

    user: User
    token: Token
    project: Project
    role: str
    platform_admin: bool

    @property
    def project_id(self) -> str:
        return self.project.id


PROJECT_HEADER = "X-SMCP-Project"


def _project_not_found(ref: str) -> NotFound:
    return NotFound("project", ref[:80])


def resolve_project(session: Session, user: User, token: Token, ref: str | None) -> Project:
    """The project a request acts in (see the module doc); NotFound when the caller may not see it."""
    if ref is None:
        if token.project_id is not None:
            ref = token.project_id
        elif not user.platform_admin:
            mine = list(session.scalars(select(RoleBinding.project_id).where(RoleBinding.user_id == user.id).limit(2)))
            if not mine:
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN,
                    f"user '{user.username}' has no role in any project; ask a project admin to add them "
                    "(PUT /api/v1/projects/{project}/members/{user_id})",
                )
            ref = mine[0] if len(mine) == 1 else DEFAULT_PROJECT_ID
        else:
            ref = DEFAULT_PROJECT_ID
    if len(ref) > 63:
        raise _project_not_found(ref)
    project = session.get(Project, ref) or session.scalar(select(Project).where(Project.name == ref))
    if project is None:
        raise _project_not_found(ref)
    if token.project_id is not None and token.project_id != project.id:
        raise _project_not_found(ref)
    if role_in(session, user, project.id) is None:
        raise _project_not_found(ref)
    return project


def get_caller(
    request: Request,
    services: ServicesDep,
    token: CurrentToken,
    x_smcp_project: Annotated[
        str | None,
        Header(
            description="The project (name or id) the request acts in; default: the token's project, else the "
            "user's only project, else `default`."
        ),
    ] = None,
) -> Caller:
    with services.sessions() as session:
        user = session.get(User, token.user_id)
        if user is None or user.disabled:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                f"the user of token '{token.name}' is disabled or deleted; ask a platform admin",
                headers={"WWW-Authenticate": "Bearer"},
            )
        project = resolve_project(session, user, token, x_smcp_project)
        member_role = role_in(session, user, project.id) or "viewer"
        session.expunge_all()
    audit.note(request, actor=user.username, user_id=user.id, token_id=token.id, project=project.name)
    return Caller(
        user=user,
        token=token,
        project=project,
        role=lower_role(token.role, member_role),
        platform_admin=user.platform_admin and token.project_id is None and token.role == "admin",
    )


CurrentCaller = Annotated[Caller, Depends(get_caller)]


def require(role: str) -> Callable[[Caller], Caller]:
    def _guard(caller: CurrentCaller) -> Caller:
        if not role_allows(caller.role, role):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"token '{caller.token.name}' has role {caller.role} in project '{caller.project.name}'; this "
                f"needs role {role} or higher there (ask a project admin)",
            )
        return caller

    return _guard


def require_platform_admin(caller: CurrentCaller) -> Caller:
    if not caller.platform_admin:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"this needs a platform admin's unscoped admin token; token '{caller.token.name}' of user "
            f"'{caller.user.username}' is not one",
        )
    return caller


Viewer = Annotated[Caller, Depends(require("viewer"))]
Operator = Annotated[Caller, Depends(require("operator"))]
Admin = Annotated[Caller, Depends(require("admin"))]
PlatformAdmin = Annotated[Caller, Depends(require_platform_admin)]


class Idempotency:
    """Replays the first answer to a POST carrying the same Idempotency-Key from the same token."""

    def __init__(self, key: str, request_hash: str) -> None:
        self.key = key
        self.request_hash = request_hash

    def replay(self, session: Session, caller: Caller) -> JSONResponse | None:
        record = session.get(IdempotencyRecord, (caller.token.id, self.key))
        if record is None:
            return None
        if record.request_hash != self.request_hash:
            raise Unprocessable(
                f"Idempotency-Key '{self.key}' was already used with a different request; "
                "use a new key for a new request",
            )
        return JSONResponse(record.response, status_code=record.status_code, headers={"Idempotent-Replay": "true"})

    def save(self, session: Session, caller: Caller, status_code: int, payload: Any) -> None:
        session.add(
            IdempotencyRecord(
                token_id=caller.token.id,
                key=self.key,
                request_hash=self.request_hash,
                status_code=status_code,
                response=jsonable_encoder(payload),
            )
        )


async def get_idempotency(request: Request) -> Idempotency | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise Unprocessable(
            "header Idempotency-Key must be 1-255 printable characters; use e.g. a UUID",
        )
    body = await request.body()
    project = request.headers.get(PROJECT_HEADER)  # the same body in another project is another request
    scope = b"" if project is None else project.encode() + b"\n"
    digest = hashlib.sha256(
        request.method.encode() + b" " + request.url.path.encode() + b"\n" + scope + body
    ).hexdigest()
    return Idempotency(key, digest)


IdempotencyDep = Annotated[Idempotency | None, Depends(get_idempotency)]


ERROR_DESCRIPTIONS = {
    401: "Missing, invalid, expired or revoked bearer token.",
    403: "The caller's role in the project is too low for this route.",
    404: "Unknown id, or a record (or project) the caller may not see.",
    409: "Conflict: busy cluster or host (names the running job), name taken, or resource in use.",
    422: "Invalid request: `detail` names the field, the value and the fix.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error codes a route can answer (401 and 403 always)."""
    return {code: {"model": Error, "description": ERROR_DESCRIPTIONS[code]} for code in (401, 403, *codes)}
