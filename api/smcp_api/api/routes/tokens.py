"""API tokens of users: create (secret shown once, scoped to a project, expiring), list, revoke.

A token never makes a broader one: its role at most the calling token's and the user's role in the project, and a
token scoped to a project makes tokens of that project only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.encoders import jsonable_encoder
from sqlalchemy import func, select

from smcp_api.api.deps import CurrentCaller, IdempotencyDep, SessionDep, errors
from smcp_api.api.people import platform_admins_with_password, project_by_ref, token_out, within_reach
from smcp_api.api.routing import create_route, delete_route
from smcp_api.api.writes import create_once
from smcp_api.errors import Conflict, NotFound, Unprocessable
from smcp_api.identity import lower_role, role_in
from smcp_api.models import Token, User, utcnow
from smcp_api.schemas import TokenCreate, TokenCreated, TokenOut
from smcp_api.security import ROLE_RANK, hash_token, new_token

router = APIRouter(prefix="/tokens", tags=["tokens"])


@create_route(
    router,
    TokenCreated,
    "Create a token",
    "A token of the calling user, returned once (only its sha256 is stored). `role` at most the caller's: the "
    "calling token's role and, for a token scoped to `project`, the user's role there; a token scoped to a "
    "project creates tokens of that project only. `expires_in` seconds, or never.",
)
def create_token(body: TokenCreate, caller: CurrentCaller, session: SessionDep, idem: IdempotencyDep) -> object:
    secret = new_token()

    def build() -> Token:
        user = session.get(User, caller.user.id)
        assert user is not None
        project_id = caller.token.project_id
        ceiling = caller.token.role
        if body.project is not None:
            project = project_by_ref(session, body.project)
            member = role_in(session, user, project.id)
            if member is None:
                raise NotFound("project", body.project)
            if project_id is not None and project.id != project_id:
                raise Unprocessable(
                    f"project: '{body.project}': the calling token is scoped to another project and makes tokens "
                    "of that project only; omit project or use a token of the user that is not scoped"
                )
            project_id = project.id
            ceiling = lower_role(ceiling, member)
        elif project_id is not None:
            member = role_in(session, user, project_id)
            ceiling = lower_role(ceiling, member or "viewer")
        if ROLE_RANK[body.role] > ROLE_RANK[ceiling]:
            raise Unprocessable(
                f"role: '{body.role}' is above what the caller may give ({ceiling}: the lower of the calling "
                f"token's role and the user's role in the project); ask for {ceiling} or lower"
            )
        expires = utcnow() + timedelta(seconds=body.expires_in) if body.expires_in else None
        return Token(
            name=body.name,
            role=body.role,
            token_hash=hash_token(secret),
            user_id=user.id,
            project_id=project_id,
            expires_at=expires,
        )

    return create_once(
        session,
        caller,
        idem,
        what=f"a token named '{body.name}'",
        build=build,
        respond=lambda token: TokenCreated(**token_out(session, token).model_dump(), token=secret),
        replayed=lambda out: {**jsonable_encoder(out), "token": None},  # the secret is shown once
    )


@router.get("", response_model=list[TokenOut], summary="List tokens", responses=errors())
def list_tokens(
    caller: CurrentCaller,
    session: SessionDep,
    all_users: Annotated[bool, Query(alias="all", description="Every user's tokens (platform admins).")] = False,
) -> list[TokenOut]:
    """The caller's own tokens no broader than the calling token (never the secret or its hash); `?all=true`:
    every user's (platform admins only)."""
    query = select(Token).order_by(Token.created_at)
    if not (all_users and caller.platform_admin):
        query = query.where(Token.user_id == caller.user.id)
    return [token_out(session, t) for t in session.scalars(query) if within_reach(caller, t)]


@delete_route(
    router,
    "/{token_id}",
    "Revoke a token",
    "Own tokens no broader than the calling token (any for a platform admin); others answer 404. The last "
    "platform admin token cannot be revoked while no platform admin can log in with a password (409).",
)
def delete_token(token_id: str, caller: CurrentCaller, session: SessionDep) -> Response:
    token = session.get(Token, token_id)
    if token is None or not within_reach(caller, token):
        raise NotFound("token", token_id)
    owner = session.get(User, token.user_id)
    if owner is not None and owner.platform_admin and token.role == "admin" and token.project_id is None:
        others = session.scalar(
            select(func.count())
            .select_from(Token)
            .join(User, User.id == Token.user_id)
            .where(
                User.platform_admin.is_(True),
                Token.role == "admin",
                Token.project_id.is_(None),
                Token.id != token.id,
            )
        )
        if not others and not platform_admins_with_password(session):
            raise Conflict(
                f"token '{token.name}' is the last admin token and no platform admin has a password; create "
                "another admin token or set a password (PATCH /api/v1/users/{id}) first"
            )
    session.delete(token)
    session.commit()
    return Response(status_code=204)
