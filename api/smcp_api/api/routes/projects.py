"""Projects (tenancy) and their members: every record belongs to one project; roles are per user per project."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response
from sqlalchemy import func, select

from smcp_api.api.deps import Caller, CurrentCaller, IdempotencyDep, PlatformAdmin, SessionDep, errors
from smcp_api.api.people import project_by_ref
from smcp_api.api.routing import create_route, delete_route
from smcp_api.api.rows import from_row, get_or_404
from smcp_api.api.writes import create_once
from smcp_api.errors import Conflict, NotFound
from smcp_api.identity import lower_role, role_in
from smcp_api.models import (
    DEFAULT_PROJECT_ID,
    Artifact,
    Cluster,
    Credential,
    Host,
    Job,
    Project,
    RoleBinding,
    Token,
    User,
)
from smcp_api.schemas import MemberOut, MemberSet, ProjectCreate, ProjectOut
from smcp_api.security import role_allows

router = APIRouter(prefix="/projects", tags=["projects"])


def _visible(session: SessionDep, caller: Caller, ref: str, needed: str = "viewer") -> Project:
    """The project `ref` (id or name) when the caller has at least `needed` there; 404 when they may not see it,
    403 when they see it with a lower role. A scoped token sees its own project only."""
    project = project_by_ref(session, ref)
    user = session.get(User, caller.user.id)
    member = role_in(session, user, project.id) if user is not None else None
    if member is None or (caller.token.project_id is not None and caller.token.project_id != project.id):
        raise NotFound("project", ref[:80])
    role = lower_role(member, caller.token.role)
    if not role_allows(role, needed):
        raise HTTPException(
            403,
            f"token '{caller.token.name}' has role {role} in project '{project.name}'; this needs role {needed} or "
            "higher there (ask a project admin)",
        )
    return project


def _member(caller: CurrentCaller, session: SessionDep, project: str) -> Project:
    return _visible(session, caller, project)


def _admin(caller: CurrentCaller, session: SessionDep, project: str) -> Project:
    return _visible(session, caller, project, "admin")


# checked before the body (a viewer gets 403, not a 422 about the body)
ProjectMember = Annotated[Project, Depends(_member)]
ProjectAdmin = Annotated[Project, Depends(_admin)]


@create_route(router, ProjectOut, "Create a project", "Platform admins. Add members with PUT .../members/{user_id}.")
def create_project(body: ProjectCreate, caller: PlatformAdmin, session: SessionDep, idem: IdempotencyDep) -> object:
    return create_once(
        session,
        caller,
        idem,
        what=f"a project named '{body.name}'",
        build=lambda: Project(name=body.name, description=body.description),
        respond=ProjectOut,
    )


@router.get("", response_model=list[ProjectOut], summary="List projects", responses=errors())
def list_projects(caller: CurrentCaller, session: SessionDep) -> list[Project]:
    """Platform admins: every project; others: the projects they are members of (a scoped token: its own)."""
    query = select(Project).order_by(Project.name)
    if not caller.user.platform_admin:
        query = query.join(RoleBinding, RoleBinding.project_id == Project.id).where(
            RoleBinding.user_id == caller.user.id
        )
    if caller.token.project_id is not None:
        query = query.where(Project.id == caller.token.project_id)
    return list(session.scalars(query))


@router.get("/{project}", response_model=ProjectOut, summary="Show a project", responses=errors(404))
def get_project(project: str, row: ProjectMember) -> Project:
    """One project the caller is a member of (by id or name); others answer 404."""
    return row


@delete_route(
    router,
    "/{project}",
    "Delete a project",
    "Platform admins; only an empty project (no credential, host, cluster, job or artifact: 409 naming what is "
    "left), never `default`. Its members' roles and the tokens scoped to it go with it.",
)
def delete_project(project: str, _: PlatformAdmin, session: SessionDep) -> Response:
    row = project_by_ref(session, project)
    if row.id == DEFAULT_PROJECT_ID:
        raise Conflict("project 'default' holds the records from before projects; it cannot be deleted")
    for model, what in ((Credential, "credentials"), (Host, "hosts"), (Cluster, "clusters"), (Job, "jobs"),
                        (Artifact, "artifacts")):  # fmt: skip
        count = session.scalar(select(func.count()).select_from(model).where(model.project_id == row.id))
        if count:
            raise Conflict(f"project '{row.name}' still has {count} {what}; delete them first")
    for token in session.scalars(select(Token).where(Token.project_id == row.id)):
        session.delete(token)
    session.delete(row)
    session.commit()
    return Response(status_code=204)


def _members(session: SessionDep, project: Project) -> list[MemberOut]:
    rows = session.execute(
        select(User.id, User.username, RoleBinding.role)
        .join(RoleBinding, RoleBinding.user_id == User.id)
        .where(RoleBinding.project_id == project.id)
        .order_by(User.username)
    )
    return [MemberOut(user_id=uid, username=name, role=role) for uid, name, role in rows]  # type: ignore[arg-type]


@router.get(
    "/{project}/members",
    response_model=list[MemberOut],
    summary="List a project's members",
    responses=errors(404),
)
def list_members(project: str, row: ProjectMember, session: SessionDep) -> list[MemberOut]:
    """The users with a role in the project (platform admins have admin everywhere without a binding)."""
    return _members(session, row)


@router.put(
    "/{project}/members/{user_id}",
    response_model=MemberOut,
    summary="Give a user a role in a project",
    description="Project admins. Sets the role (viewer, operator, admin), replacing any other: the same request "
    "twice changes nothing.",
    responses=errors(404, 422),
)
def set_member(project: str, user_id: str, body: MemberSet, row: ProjectAdmin, session: SessionDep) -> MemberOut:
    user = get_or_404(session, User, user_id, "user")
    binding = session.get(RoleBinding, (user.id, row.id))
    if binding is None:
        session.add(RoleBinding(user_id=user.id, project_id=row.id, role=body.role))
    else:
        binding.role = body.role
    session.commit()
    return from_row(MemberOut, user, user_id=user.id, role=body.role)


@delete_route(
    router, "/{project}/members/{user_id}", "Remove a user from a project", "Project admins; 404 for a non-member."
)
def remove_member(project: str, user_id: str, row: ProjectAdmin, session: SessionDep) -> Response:
    binding = session.get(RoleBinding, (user_id, row.id))
    if binding is None:
        raise NotFound("member", user_id)
    session.delete(binding)
    for token in session.scalars(select(Token).where(Token.user_id == user_id, Token.project_id == row.id)):
        session.delete(token)
    session.commit()
    return Response(status_code=204)
