"""The audit log (read only; written by smcp_api.audit.AuditMiddleware): admins only, newest first, paged."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import or_, select

from smcp_api.api.deps import Admin, SessionDep, errors
from smcp_api.audit import AuditEntry
from smcp_api.errors import Unprocessable

router = APIRouter(prefix="/audit", tags=["audit"])


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str | None = Field(description="User name (or the name tried, for a failed login), else token name.")
    user_id: str | None
    token_id: str | None = Field(description="Id of the bearer token used (never the token).")
    project: str | None
    method: str
    route: str = Field(description="Route template, e.g. /api/v1/hosts/{host_id}.")
    action: str = Field(description="Method and route template.")
    target: str | None = Field(description="Id of the record acted on (path parameter or the created record).")
    status: int = Field(description="HTTP status of the answer.")
    source: str | None = Field(description="Client address.")


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page; null on the last page.")


def visible_project(caller: Any) -> str | None:
    """The project whose entries the caller may read; None = every entry (a platform admin)."""
    if getattr(caller, "platform_admin", False) is True:
        return None
    project = getattr(caller, "project", None)
    if project is None:  # a token of the store before identity (admin of everything)
        return None
    return str(getattr(project, "name", project))


@router.get("", response_model=AuditPage, summary="Read the audit log", responses=errors(422))
def list_audit(
    caller: Admin,
    session: SessionDep,
    user: Annotated[str | None, Query(min_length=1, max_length=255, description="User name or user id.")] = None,
    project: Annotated[str | None, Query(min_length=1, max_length=255, description="Project name.")] = None,
    target: Annotated[str | None, Query(min_length=1, max_length=255, description="Record id.")] = None,
    since: Annotated[datetime | None, Query(description="Entries at or after this time (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Entries before this time (ISO 8601).")] = None,
    before: Annotated[int | None, Query(ge=1, description="Entries with an id below this (paging).")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """Every mutating request and every login, newest first. A platform admin reads every entry; a project admin
    reads their project's (other filters apply within it)."""
    if since is not None and until is not None and since >= until:
        raise Unprocessable(
            f"since ({since.isoformat()}) must be before until ({until.isoformat()}); swap them or widen the window"
        )
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
    own = visible_project(caller)
    if own is not None:
        query = query.where(AuditEntry.project == own)
    if project is not None:
        query = query.where(AuditEntry.project == project)
    if user is not None:
        query = query.where(or_(AuditEntry.actor == user, AuditEntry.user_id == user))
    if target is not None:
        query = query.where(AuditEntry.target == target)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    items = [AuditOut(**_fields(row)) for row in rows]
    return AuditPage(items=items, next_before=rows[-1].id if more else None)


def _fields(row: AuditEntry) -> dict[str, Any]:
    names = ("id", "at", "actor", "user_id", "token_id", "project", "method", "route", "target", "status", "source")
    return {**{name: getattr(row, name) for name in names}, "action": f"{row.method} {row.route}"}
