"""Users (platform admins manage them); anyone changes their own password."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import func, select

from smcp_api.api.deps import CurrentCaller, IdempotencyDep, PlatformAdmin, SessionDep, errors
from smcp_api.api.people import user_out
from smcp_api.api.routing import create_route, delete_route
from smcp_api.api.rows import get_or_404
from smcp_api.api.writes import create_once
from smcp_api.errors import Conflict, Unprocessable
from smcp_api.identity import hash_password, password_problem, verify_password
from smcp_api.models import Token, User
from smcp_api.schemas import PasswordChange, UserCreate, UserOut, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])


def _checked_hash(username: str, password: str) -> str:
    if problem := password_problem(username, password):
        raise Unprocessable(problem)
    return hash_password(password)


def _other_platform_admins(session: SessionDep, user: User) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.platform_admin.is_(True), User.disabled.is_(False), User.id != user.id)
        )
        or 0
    )


@create_route(
    router,
    UserOut,
    "Create a user",
    "Platform admins. The password (12 to 256 characters, not the username) is stored as an argon2id hash; omit "
    "it for a user who logs in through the directory only. Give the user roles in projects with PUT "
    "/api/v1/projects/{project}/members/{user_id}.",
)
def create_user(body: UserCreate, caller: PlatformAdmin, session: SessionDep, idem: IdempotencyDep) -> object:
    def build() -> User:
        hashed = _checked_hash(body.username, body.password) if body.password is not None else None
        return User(username=body.username, password_hash=hashed, platform_admin=body.platform_admin)

    return create_once(
        session,
        caller,
        idem,
        what=f"a user named '{body.username}'",
        build=build,
        respond=lambda user: user_out(session, user),
    )


@router.get("", response_model=list[UserOut], summary="List users", responses=errors())
def list_users(_: PlatformAdmin, session: SessionDep) -> list[UserOut]:
    """Every user with their project roles (platform admins)."""
    return [user_out(session, u) for u in session.scalars(select(User).order_by(User.username))]


@router.put(
    "/me/password",
    status_code=204,
    summary="Change my password",
    description="The calling user's password: the current one, then the new one (12 to 256 characters, not the "
    "username). Other tokens of the user keep working (revoke them at /api/v1/tokens).",
    responses=errors(422),
)
def change_my_password(body: PasswordChange, caller: CurrentCaller, session: SessionDep) -> Response:
    user = session.get(User, caller.user.id)
    assert user is not None
    if not verify_password(user.password_hash, body.current_password):
        raise Unprocessable("current_password: is not the user's password; give the current password")
    user.password_hash = _checked_hash(user.username, body.password)
    session.commit()
    return Response(status_code=204)


@router.get("/{user_id}", response_model=UserOut, summary="Show a user", responses=errors(404))
def get_user(user_id: str, _: PlatformAdmin, session: SessionDep) -> UserOut:
    """One user with their project roles (platform admins); never the password or its hash."""
    return user_out(session, get_or_404(session, User, user_id, "user"))


@router.patch(
    "/{user_id}",
    response_model=UserOut,
    summary="Change a user",
    description="Platform admins: set a password, make or unmake a platform admin, disable (a disabled user's "
    "tokens stop working) or enable. The last enabled platform admin stays one (409).",
    responses=errors(404, 409, 422),
)
def update_user(user_id: str, body: UserUpdate, _: PlatformAdmin, session: SessionDep) -> UserOut:
    user = get_or_404(session, User, user_id, "user")
    changes = body.model_dump(exclude_unset=True)
    for field in ("platform_admin", "disabled"):
        if field in changes and changes[field] is None:
            raise Unprocessable(f"{field}: null is not allowed; omit the field")
    demoted = changes.get("platform_admin") is False or changes.get("disabled") is True
    if demoted and user.platform_admin and not user.disabled and not _other_platform_admins(session, user):
        raise Conflict(f"user '{user.username}' is the last platform admin; make another user platform admin first")
    if "password" in changes:
        password = changes.pop("password")
        user.password_hash = None if password is None else _checked_hash(user.username, password)
    for field, value in changes.items():
        setattr(user, field, value)
    session.commit()
    return user_out(session, user)


@delete_route(
    router,
    "/{user_id}",
    "Delete a user",
    "Platform admins; the user's tokens and project roles go with it. Not the last platform admin (409).",
)
def delete_user(user_id: str, _: PlatformAdmin, session: SessionDep) -> Response:
    user = get_or_404(session, User, user_id, "user")
    if user.platform_admin and not _other_platform_admins(session, user):
        raise Conflict(f"user '{user.username}' is the last platform admin; make another user platform admin first")
    for token in session.scalars(select(Token).where(Token.user_id == user.id)):
        session.delete(token)
    session.delete(user)
    session.commit()
    return Response(status_code=204)
