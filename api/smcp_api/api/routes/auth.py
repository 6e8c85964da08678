"""Log in (username and password -> a token of the user), log out, and who am I."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from sqlalchemy import select

from smcp_api import audit
from smcp_api.api.deps import CurrentCaller, ServicesDep, SessionDep, errors
from smcp_api.api.people import token_out, user_out
from smcp_api.errors import NotFound
from smcp_api.identity import LoginFailed, Throttled, check_login, issue_token, role_in
from smcp_api.models import Project, Token, User, new_id, utcnow
from smcp_api.schemas import Error, LoginOut, LoginRequest, MeOut

router = APIRouter(prefix="/auth", tags=["auth"])
LOGIN_PATH = "/api/v1/auth/login"  # answered without a token (deps.authenticate lets its body through)

LOGIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Error, "description": "Wrong username or password, or a disabled user (one answer for all)."},
    404: {"model": Error, "description": "`project` names no project of the user."},
    422: {"model": Error, "description": "Invalid request."},
    429: {"model": Error, "description": "Too many failed logins for this user from this address: `Retry-After`."},
}


def source_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post(
    "/login",
    status_code=201,
    response_model=LoginOut,
    summary="Log in",
    description="Checks the password (argon2id) and returns a new bearer token of the user, shown once, expiring "
    "after `expires_in` seconds (default 12 h), scoped to `project` when given. After 5 failed logins for a "
    "username from one address, logins from there wait (429 with `Retry-After`: 30 s, doubling per further "
    "failure, at most 1 h); the count is kept in the store, shared by every replica.",
    responses=LOGIN_ERRORS,
)
def login(body: LoginRequest, request: Request, session: SessionDep, services: ServicesDep) -> LoginOut:
    audit.note(request, actor=body.username)  # the name tried, also when the login fails (never the password)
    try:
        user = check_login(session, body.username, body.password, source_of(request), services.settings)
    except Throttled as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
    except LoginFailed as exc:
        session.commit()  # the failure counts
        raise HTTPException(401, str(exc)) from None
    project_id = None
    if body.project is not None:
        project = session.scalar(select(Project).where(Project.name == body.project))
        if project is None or role_in(session, user, project.id) is None:
            session.commit()  # the successful login (throttle cleared) stands
            raise NotFound("project", body.project)
        project_id = project.id
    expires = utcnow() + timedelta(seconds=body.expires_in)
    token, secret = issue_token(
        session,
        user,
        name=f"login-{user.username}-{new_id()[:12]}",
        role="admin",  # capped by the user's role in each project (deps.get_caller)
        project_id=project_id,
        expires_at=expires,
    )
    audit.note(request, actor=user.username, user_id=user.id, token_id=token.id)
    out = LoginOut(token=secret, token_id=token.id, expires_at=expires, user=user_out(session, user))
    session.commit()
    return out


@router.post(
    "/logout",
    status_code=204,
    summary="Log out",
    description="Revokes the calling token.",
    responses=errors(),
)
def logout(caller: CurrentCaller, session: SessionDep) -> Response:
    token = session.get(Token, caller.token.id)
    if token is not None:
        session.delete(token)
        session.commit()
    return Response(status_code=204)


@router.get(
    "/me",
    response_model=MeOut,
    summary="Who am I",
    description="The calling user with their project roles, the project this request acts in (header "
    "`X-SMCP-Project`, else the token's project, else the user's only project, else `default`) and the role there.",
    responses=errors(404),
)
def me(caller: CurrentCaller, session: SessionDep) -> MeOut:
    user = session.get(User, caller.user.id)
    token = session.get(Token, caller.token.id)
    assert user is not None and token is not None
    return MeOut(
        user=user_out(session, user),
        project=caller.project.name,
        role=caller.role,  # type: ignore[arg-type]
        platform_admin=caller.platform_admin,
        token=token_out(session, token),
    )
