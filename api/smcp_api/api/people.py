"""How routes read people: users with their bindings, tokens with their owner and project, projects by name.

Shared by the route modules of users, projects, tokens and auth (no route module imports another).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smcp_api.api.deps import Caller
from smcp_api.errors import NotFound
from smcp_api.models import Project, RoleBinding, Token, User
from smcp_api.schemas import BindingOut, TokenOut, UserOut
from smcp_api.security import ROLE_RANK


def user_out(session: Session, user: User) -> UserOut:
    rows = session.execute(
        select(Project.name, Project.id, RoleBinding.role)
        .join(RoleBinding, RoleBinding.project_id == Project.id)
        .where(RoleBinding.user_id == user.id)
        .order_by(Project.name)
    )
    return UserOut(
        id=user.id,
        username=user.username,
        platform_admin=user.platform_admin,
        disabled=user.disabled,
        source=user.source,
        has_password=user.password_hash is not None,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        bindings=[BindingOut(project=name, project_id=pid, role=role) for name, pid, role in rows],  # type: ignore[arg-type]
    )


def token_out(session: Session, token: Token) -> TokenOut:
    user = session.get(User, token.user_id)
    project = session.get(Project, token.project_id) if token.project_id else None
    return TokenOut(
        id=token.id,
        name=token.name,
        role=token.role,  # type: ignore[arg-type]
        user=user.username if user else None,
        project=project.name if project else None,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
        expires_at=token.expires_at,
    )


def within_reach(caller: Caller, token: Token) -> bool:
    """A token the caller may see and revoke: any for a platform admin; else the caller's own tokens no broader
    than the calling token (a viewer token of a user never revokes that user's admin token)."""
    if caller.platform_admin:
        return True
    return (
        token.user_id == caller.user.id
        and ROLE_RANK.get(token.role, 99) <= ROLE_RANK[caller.token.role]
        and (caller.token.project_id is None or token.project_id == caller.token.project_id)
    )


def project_by_ref(session: Session, ref: str) -> Project:
    """A project by id or name; NotFound otherwise."""
    project = session.get(Project, ref) if len(ref) <= 32 else None
    project = project or session.scalar(select(Project).where(Project.name == ref))
    if project is None:
        raise NotFound("project", ref[:80])
    return project


def platform_admins_with_password(session: Session) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.platform_admin.is_(True), User.disabled.is_(False), User.password_hash.is_not(None))
        )
        or 0
    )
